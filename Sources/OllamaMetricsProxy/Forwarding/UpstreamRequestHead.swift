import NIOCore
import NIOHTTP1

/// Turns the client's request head into the one sent to Ollama.
enum UpstreamRequestHead {
    /// - Parameters:
    ///   - clientHead: the head as the client sent it.
    ///   - upstream: where the request goes; its base path is put before the client's path.
    ///   - clientAddress: the client's IP, appended to `X-Forwarded-For`.
    ///   - bodyLength: the exact body length when the proxy sends a buffered (possibly edited) body.
    static func make(
        from clientHead: HTTPRequestHead,
        upstream: UpstreamURL,
        clientAddress: String?,
        bodyLength: Int? = nil
    ) -> HTTPRequestHead {
        var headers = clientHead.headers
        HopByHopHeaders.remove(from: &headers)
        // The proxy answers `Expect: 100-continue` itself and then streams the body; Ollama need not.
        if headers.contains(name: "expect") {
            headers.remove(name: "expect")
        }

        let originalHost = headers.first(name: "host")
        headers.replaceOrAdd(name: "host", value: upstream.hostHeader)
        if let clientAddress {
            if let existing = headers.first(name: "x-forwarded-for") {
                headers.replaceOrAdd(name: "X-Forwarded-For", value: "\(existing), \(clientAddress)")
            } else {
                headers.add(name: "X-Forwarded-For", value: clientAddress)
            }
        }
        if !headers.contains(name: "x-forwarded-proto") {
            headers.add(name: "X-Forwarded-Proto", value: "http")
        }
        if let originalHost, !headers.contains(name: "x-forwarded-host") {
            headers.add(name: "X-Forwarded-Host", value: originalHost)
        }
        if let bodyLength {
            if headers.contains(name: "transfer-encoding") {
                headers.remove(name: "transfer-encoding")
            }
            let length = String(bodyLength)
            if headers.first(name: "content-length") != length {
                headers.replaceOrAdd(name: "content-length", value: length)
            }
        }

        let target = self.originForm(of: clientHead.uri)
        return HTTPRequestHead(
            version: .http1_1,
            method: clientHead.method,
            uri: upstream.basePath.isEmpty ? target : upstream.basePath + target,
            headers: headers
        )
    }

    /// The path and query of a request target, also when a client sent the absolute form
    /// (`http://host/path?q`) as it may to a proxy.
    static func originForm(of uri: String) -> String {
        guard !uri.hasPrefix("/") else { return uri }
        let lowered = uri.lowercased()
        for scheme in ["http://", "https://"] where lowered.hasPrefix(scheme) {
            let rest = uri.dropFirst(scheme.count)
            guard let slash = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) else { return "/" }
            let target = String(rest[slash...])
            return target.hasPrefix("?") ? "/" + target : target
        }
        return uri == "*" ? "*" : "/" + uri
    }

    /// The path of a request target without its query string, for routing.
    static func path(of uri: String) -> Substring {
        let target = Substring(uri)
        if let query = target.firstIndex(where: { $0 == "?" || $0 == "#" }) {
            return target[..<query]
        }
        return target
    }
}
