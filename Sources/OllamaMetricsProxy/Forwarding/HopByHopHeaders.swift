import NIOHTTP1

/// Headers that describe one connection rather than the message (RFC 9110 §7.6.1), so a proxy must not
/// pass them on: the fixed list plus every header the `Connection` header names.
enum HopByHopHeaders {
    static let fixed: [String] = [
        "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization",
        "te", "trailer", "upgrade",
    ]

    static func remove(from headers: inout HTTPHeaders) {
        for token in headers[canonicalForm: "connection"] {
            headers.remove(name: String(token))
        }
        for name in self.fixed {
            headers.remove(name: name)
        }
    }
}
