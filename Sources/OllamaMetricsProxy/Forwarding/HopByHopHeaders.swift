import NIOHTTP1

/// Headers that describe one connection rather than the message (RFC 9110 §7.6.1), so a proxy must not
/// pass them on: the fixed list plus every header the `Connection` header names — except those in
/// `neverNominated`.
enum HopByHopHeaders {
    static let fixed: [String] = [
        "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization",
        "te", "trailer", "upgrade",
    ]

    /// Names a `Connection` option cannot take away: the framing (`Content-Length`, `Transfer-Encoding`),
    /// which must reach the other side exactly as the proxy read it, and `Host`, which the proxy rewrites.
    /// A client's `Connection: Content-Length` once stripped a request's length while its body still went
    /// upstream, where Ollama read that body as a second request. RFC 9110 §7.6.1 lets a proxy ignore such an
    /// option or refuse the message; the proxy ignores it (and still drops `Connection` itself), as Go's
    /// `ReverseProxy` in effect does (its framing comes from the parsed length, not from the header map) and as
    /// nginx does: a request that nominates them is odd, not hostile when it is not forwarded so.
    /// The same holds for Ollama's responses.
    static let neverNominated: [String] = ["content-length", "transfer-encoding", "host"]

    static func remove(from headers: inout HTTPHeaders) {
        // Most messages carry none: one pass without allocating, instead of a removal pass per name.
        guard headers.contains(where: { Self.isFixed($0.name) }) else { return }
        for token in headers[canonicalForm: "connection"] where !Self.neverNominated.contains(where: { token.equalsLowercaseASCII($0) }) {
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
