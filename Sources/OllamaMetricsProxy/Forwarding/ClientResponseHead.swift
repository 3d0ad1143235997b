import NIOHTTP1

/// Turns Ollama's response head into the one sent to the client: unchanged but for hop-by-hop headers, and
/// for framing where the client's connection needs another one than Ollama's. Every framing decision of
/// the proxy is made here.
enum ClientResponseHead {
    struct Forwarded {
        var head: HTTPResponseHead
        /// Whether the upstream connection may be reused after this response.
        var upstreamKeepAlive: Bool
        /// Whether the client connection must close after this response (the client asked for it, or the
        /// body is delimited by the close).
        var closeClientAfterResponse: Bool
    }

    /// - Parameters:
    ///   - upstreamHead: the head as Ollama sent it.
    ///   - request: the client's request head (method, HTTP version, keep-alive).
    ///   - bodyMayShrink: the proxy removes bytes from the body (a withheld usage chunk), so a declared
    ///     length would be wrong.
    static func make(from upstreamHead: HTTPResponseHead, for request: HTTPRequestHead, bodyMayShrink: Bool = false)
        -> Forwarded
    {
        var head = upstreamHead
        // `Connection: keep-alive` (Ollama sends it on Anthropic streams) stays true of the client's
        // connection, so it is kept as Ollama sent it; anything else about the upstream connection is not.
        // One pass, without allocating: most responses have no hop-by-hop header, or only that one.
        var connectionHeaders = 0
        var keepAliveOnly = false
        var otherHopByHop = false
        for (name, value) in head.headers where HopByHopHeaders.isFixed(name) {
            if name.equalsLowercaseASCII("connection") {
                connectionHeaders += 1
                keepAliveOnly = connectionHeaders == 1 && value.trimmingSpaces.equalsLowercaseASCII("keep-alive")
            } else {
                otherHopByHop = true
            }
        }
        if otherHopByHop || (connectionHeaders > 0 && !keepAliveOnly) {
            let original = head.headers.first(name: "connection")
            HopByHopHeaders.remove(from: &head.headers)
            if keepAliveOnly, let original {
                head.headers.add(name: "Connection", value: original)
            }
        }

        var closeClient = !request.isKeepAlive
        let code = head.status.code
        let mayHaveBody = request.method != .HEAD && code >= 200 && code != 204 && code != 304
        if mayHaveBody && bodyMayShrink && head.headers.contains(name: "content-length") {
            head.headers.remove(name: "content-length")
        }
        let unframed = !head.headers.contains(name: "content-length") && !head.headers.contains(name: "transfer-encoding")
        if request.version == .http1_0 {
            // An HTTP/1.0 client cannot read chunked framing: it gets the bytes delimited by the close.
            if head.version != .http1_0 { head.version = .http1_0 }
            if mayHaveBody && (unframed || TransferCoding.isChunked(head.headers) == true) {
                head.headers.remove(name: "transfer-encoding")
                closeClient = true
            }
        } else {
            // Set only when it differs: setting it copies the whole head.
            if head.version != .http1_1 { head.version = .http1_1 }
            // A body whose length is unknown (delimited by Ollama's close, or shortened by the proxy) is
            // chunked for the client, whose connection stays open.
            if mayHaveBody && unframed {
                head.headers.add(name: "Transfer-Encoding", value: "chunked")
            }
        }
        if closeClient && keepAliveOnly {
            head.headers.replaceOrAdd(name: "Connection", value: "close")
        }
        return Forwarded(head: head, upstreamKeepAlive: upstreamHead.isKeepAlive, closeClientAfterResponse: closeClient)
    }
}
