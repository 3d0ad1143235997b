import NIOHTTP1

/// Headers that describe one connection rather than the message (RFC 9110 §7.6.1), so a proxy must not
/// pass them on: the fixed list plus every header the `Connection` header names.
enum HopByHopHeaders {
    static let fixed: [String] = [
        "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization",
        "te", "trailer", "upgrade",
    ]

    static func remove(from headers: inout HTTPHeaders) {
        // Most messages carry none: one pass without allocating, instead of a removal pass per name.
        guard headers.contains(where: { Self.isFixed($0.name) }) else { return }
        for token in headers[canonicalForm: "connection"] {
            headers.remove(name: String(token))
        }
        for name in self.fixed {
            headers.remove(name: name)
        }
    }

    /// Whether `name` is one of the fixed hop-by-hop header names, in any letter case.
    static func isFixed(_ name: String) -> Bool {
        let count = name.utf8.count
        for candidate in self.fixed where candidate.utf8.count == count {
            if name.equalsLowercaseASCII(candidate) { return true }
        }
        return false
    }
}
