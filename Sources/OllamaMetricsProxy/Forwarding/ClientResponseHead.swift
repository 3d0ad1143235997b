import NIOHTTP1

/// Turns Ollama's response head into the one sent to the client: unchanged but for hop-by-hop headers.
enum ClientResponseHead {
    /// - Returns: the head for the client, and whether the upstream connection may be reused afterwards.
    static func make(from upstreamHead: HTTPResponseHead, requestMethod: HTTPMethod = .GET)
        -> (head: HTTPResponseHead, upstreamKeepAlive: Bool)
    {
        let upstreamKeepAlive = upstreamHead.isKeepAlive
        var head = upstreamHead
        // `Connection: keep-alive` (Ollama sends it on Anthropic streams) stays true of the client's
        // connection, so it is kept as Ollama sent it; anything else about the upstream connection is not.
        let connection = head.headers[canonicalForm: "connection"]
        let keepAliveOnly = connection.count == 1 && connection[0].lowercased() == "keep-alive"
        if head.headers.contains(name: "connection") && !keepAliveOnly
            || head.headers.contains(name: "keep-alive")
            || head.headers.contains(name: "proxy-connection")
        {
            let original = head.headers.first(name: "connection")
            HopByHopHeaders.remove(from: &head.headers)
            if keepAliveOnly, let original {
                head.headers.add(name: "Connection", value: original)
            }
        }
        head.version = .http1_1
        // A body Ollama delimited by closing its connection is re-framed as chunked for the client, whose
        // connection stays open. (Ollama's Go server always frames its bodies; this is for anything else.)
        let code = head.status.code
        let mayHaveBody = requestMethod != .HEAD && code >= 200 && code != 204 && code != 304
        if mayHaveBody && !head.headers.contains(name: "content-length")
            && !head.headers.contains(name: "transfer-encoding")
        {
            head.headers.add(name: "Transfer-Encoding", value: "chunked")
        }
        return (head, upstreamKeepAlive)
    }
}
