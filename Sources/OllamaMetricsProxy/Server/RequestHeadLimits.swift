import NIOHTTP1

/// The largest request head the proxy forwards (`--max-request-head-size`, `--max-request-headers`).
/// Larger ones are answered 431 and the connection closed, before anything reaches Ollama.
///
/// NIO's decoder already refuses a head over 80 KiB (and the proxy answers that with 431 too); these
/// limits are the configurable ones below it. The size is counted as the head is written on the wire:
/// request line and every `name: value` line with their CRLFs.
struct RequestHeadLimits: Sendable, Equatable {
    var maxBytes: Int
    var maxHeaderCount: Int

    /// NIO's own ceiling on a request head (`HTTPDecoder`'s header list size).
    static let decoderCeiling = 80 * 1024

    func refusal(for head: HTTPRequestHead) -> ClientRefusal? {
        if head.headers.count > self.maxHeaderCount {
            return .tooManyHeaders(limit: self.maxHeaderCount, endpoint: Self.endpoint(of: head))
        }
        // "METHOD URI HTTP/1.1\r\n" + "name: value\r\n"… + "\r\n"
        var size = head.method.rawValue.utf8.count + 1 + head.uri.utf8.count + 11 + 2
        for (name, value) in head.headers {
            size += name.utf8.count + 2 + value.utf8.count + 2
        }
        return size > self.maxBytes ? .requestHeadTooLarge(limit: self.maxBytes, endpoint: Self.endpoint(of: head)) : nil
    }

    private static func endpoint(of head: HTTPRequestHead) -> InferenceEndpoint? {
        InferenceEndpoint(path: UpstreamRequestHead.routedPath(of: head.uri))
    }
}
