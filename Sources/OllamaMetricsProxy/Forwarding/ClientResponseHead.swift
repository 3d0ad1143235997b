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
        var upstreamKeepAlive = upstreamHead.isKeepAlive
        let code = head.status.code
        let mayHaveBody = request.method != .HEAD && code >= 200 && code != 204 && code != 304
        // nil: no Transfer-Encoding. The parser framed the body by it, if present (RFC 9112 §6.3).
        let chunked = TransferCoding.isChunked(head.headers)
        if chunked != nil, head.headers.contains(name: "content-length") {
            // Both: Transfer-Encoding wins, and an intermediary must drop the Content-Length before forwarding
            // (RFC 9112 §6.3), or the client could frame the body otherwise than the proxy did. Such a response
            // may be an attempt at response splitting: the connection it came on is not used again.
            head.headers.remove(name: "content-length")
            upstreamKeepAlive = false
        } else if mayHaveBody && bodyMayShrink && head.headers.contains(name: "content-length") {
            head.headers.remove(name: "content-length")
        }
        if chunked == false && mayHaveBody {
            // A coding without a final chunked (`gzip`): the body runs to Ollama's close, and to the client's.
            closeClient = true
        }
        let unframed = chunked == nil && !head.headers.contains(name: "content-length")
        if request.version == .http1_0 {
            // An HTTP/1.0 client cannot read chunked framing: it gets the bytes delimited by the close.
            if head.version != .http1_0 { head.version = .http1_0 }
            if mayHaveBody && (unframed || chunked == true) {
                head.headers.remove(name: "transfer-encoding")
                closeClient = true
            }
            // A Transfer-Encoding on an HTTP/1.0 request means faulty framing: close after (RFC 9112 §6.1).
            if TransferCoding.isChunked(request.headers) != nil { closeClient = true }
        } else {
            // Set only when it differs: setting it copies the whole head.
            if head.version != .http1_1 { head.version = .http1_1 }
            // A body whose length is unknown (delimited by Ollama's close, or shortened by the proxy) is
            // chunked for the client, whose connection stays open.
            if mayHaveBody && unframed {
                head.headers.add(name: "Transfer-Encoding", value: "chunked")
            }
        }
        if closeClient && (keepAliveOnly || request.version != .http1_0) {
            // Said to an HTTP/1.1 client, which would otherwise expect to send its next request (RFC 9112 §9.6).
            head.headers.replaceOrAdd(name: "Connection", value: "close")
        }
        return Forwarded(head: head, upstreamKeepAlive: upstreamKeepAlive, closeClientAfterResponse: closeClient)
    }

    /// Makes a response the proxy writes itself (a 502) follow the client's connection semantics, as
    /// forwarded ones do: `Connection: close` when the client asked for it, spoke HTTP/1.0 without
    /// keep-alive, or `mustClose`; `Connection: keep-alive` to an HTTP/1.0 client that keeps its connection,
    /// which would close it otherwise. The version is the client's, as for forwarded responses. Returns
    /// whether the client connection closes after it.
    static func ownResponse(_ head: inout HTTPResponseHead, for request: HTTPRequestHead, mustClose: Bool) -> Bool {
        let close = mustClose || !request.isKeepAlive
        if request.version == .http1_0 {
            head.version = .http1_0
            if !close { head.headers.replaceOrAdd(name: "Connection", value: "keep-alive") }
        }
        if close { head.headers.replaceOrAdd(name: "Connection", value: "close") }
        return close
    }
}
