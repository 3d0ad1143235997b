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
        // The framing is the proxy's own decision, never what survived the edits above: the body it sends
        // (edited, or as NIO's decoder delimited the client's) must reach Ollama as exactly one request.
        if let bodyLength {
            if headers.contains(name: "transfer-encoding") {
                headers.remove(name: "transfer-encoding")
            }
            let length = String(bodyLength)
            if headers.first(name: "content-length") != length {
                headers.replaceOrAdd(name: "content-length", value: length)
            }
        } else if TransferCoding.isChunked(clientHead.headers) != nil {
            // Decoded as chunked (`RequestHeadValidation` let only `chunked` alone through), sent chunked.
            Self.frameChunked(&headers)
        } else if let length = clientHead.headers.first(name: "content-length"), headers.first(name: "content-length") != length {
            headers.replaceOrAdd(name: "Content-Length", value: length)
        }

        let target = self.originForm(of: clientHead.uri)
        return HTTPRequestHead(
            version: .http1_1,
            method: clientHead.method,
            uri: upstream.basePath.isEmpty ? target : upstream.basePath + target,
            headers: headers
        )
    }

    /// One `Transfer-Encoding: chunked`, spelt so: NIO's encoder chunks the body only for that exact value,
    /// and would otherwise write the decoded bytes raw under a header that tells Ollama they are chunks (a
    /// client's `Transfer-Encoding: Chunked` made Ollama parse the body's content as chunk framing).
    private static func frameChunked(_ headers: inout HTTPHeaders) {
        var fields = 0
        var exact = true
        for (name, value) in headers where name.equalsLowercaseASCII("transfer-encoding") {
            fields += 1
            exact = exact && value == "chunked"
        }
        if fields != 1 || !exact {
            headers.replaceOrAdd(name: "Transfer-Encoding", value: "chunked")
        }
        if headers.contains(name: "content-length") {
            headers.remove(name: "content-length")
        }
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

    /// The path of a request target without its query string, as Go splits it (at the first `?`; a `#` is
    /// part of the path). Still percent-encoded: `InferenceEndpoint(path:)` decodes it as Ollama does.
    static func path(of uri: String) -> Substring {
        RequestPath.rawPath(of: Substring(uri))
    }

    /// The path Ollama routes on, before decoding: that of the target the proxy sends (absolute form made
    /// origin form, as `make` does), without the upstream's base path.
    static func routedPath(of uri: String) -> Substring {
        guard uri.hasPrefix("/") else { return self.path(of: self.originForm(of: uri)) }
        return self.path(of: uri)
    }
}
