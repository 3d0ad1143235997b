import NIOHTTP1

/// Request heads the proxy refuses before anything reaches Ollama, because it could not forward them as it
/// read them, or could not tell how Ollama would route them:
/// - a `Transfer-Encoding` other than `chunked` alone: 501 for codings the proxy does not implement
///   (`gzip, chunked`), 400 when the body's length cannot be determined (`chunked` not last, or twice). NIO's
///   decoder reads `gzip, chunked` as chunked and would let the proxy forward the decoded body under a
///   header that still names `gzip`; Go's server itself answers 501 to any coding but `chunked`.
/// - a path with an invalid percent-escape (`/api/%zz`): 400, as Go's server answers before any handler
///   (`RequestPath`).
enum RequestHeadValidation {
    static func refusal(for head: HTTPRequestHead) -> ClientRefusal? {
        let path = UpstreamRequestHead.routedPath(of: head.uri)
        guard RequestPath.decoded(path.utf8) != nil else { return .invalidRequestTarget }
        switch TransferCoding.ofRequest(head.headers) {
        case .absent, .chunked:
            return nil
        case .unsupported:
            return .unsupportedTransferCoding(endpoint: Self.endpoint(head, path))
        case .invalid:
            return .invalidTransferEncoding(endpoint: Self.endpoint(head, path))
        }
    }

    /// The endpoint whose dialect the refusal speaks.
    private static func endpoint(_ head: HTTPRequestHead, _ path: Substring) -> InferenceEndpoint? {
        InferenceEndpoint(path: path)
    }
}
