import NIOCore
import NIOHTTP1

/// Why the proxy answered a client itself, without asking Ollama, and closed the connection: input that
/// is not HTTP, a request head over a limit or that the proxy cannot forward as it read it, a malformed
/// request body (which may have been on its way to Ollama: that connection is closed too), or a connection
/// over `--max-connections`.
///
/// Each is counted in `ollama_metrics_proxy_refusals_total{reason}` and logged once per burst
/// (`RefusalReporter`).
enum ClientRefusal: Equatable, Sendable {
    /// Bytes NIO's HTTP decoder rejects (400).
    case malformedRequest
    /// A request head larger than the limit, in bytes (431). `endpoint`: the request's, when its path is
    /// known, for the dialect of the answer.
    case requestHeadTooLarge(limit: Int, endpoint: InferenceEndpoint?)
    /// A request with more header fields than the limit (431).
    case tooManyHeaders(limit: Int, endpoint: InferenceEndpoint?)
    /// A connection beyond `--max-connections` open ones (503).
    case tooManyConnections(limit: Int)
    /// A path with a `%` not followed by two hex digits (400, as Go's server answers; see `RequestPath`).
    case invalidRequestTarget
    /// A `Transfer-Encoding` whose last coding is not `chunked`, or with `chunked` twice, or empty (400).
    case invalidTransferEncoding(endpoint: InferenceEndpoint?)
    /// A `Transfer-Encoding` with codings before `chunked` that the proxy does not implement (501).
    case unsupportedTransferCoding(endpoint: InferenceEndpoint?)
    /// A chunked request body NIO's decoder rejects (a bad chunk size, data not followed by CRLF) (400).
    case malformedRequestBody(endpoint: InferenceEndpoint?)

    /// The values of the `reason` label, one per case.
    enum Reason: String, CaseIterable, Sendable {
        case malformedRequest = "malformed_request"
        case requestHeadTooLarge = "request_head_too_large"
        case tooManyHeaders = "too_many_headers"
        case tooManyConnections = "too_many_connections"
        case invalidRequestTarget = "invalid_request_target"
        case invalidTransferEncoding = "invalid_transfer_encoding"
        case unsupportedTransferCoding = "unsupported_transfer_coding"
        case malformedRequestBody = "malformed_request_body"
    }

    var reason: Reason {
        switch self {
        case .malformedRequest: .malformedRequest
        case .requestHeadTooLarge: .requestHeadTooLarge
        case .tooManyHeaders: .tooManyHeaders
        case .tooManyConnections: .tooManyConnections
        case .invalidRequestTarget: .invalidRequestTarget
        case .invalidTransferEncoding: .invalidTransferEncoding
        case .unsupportedTransferCoding: .unsupportedTransferCoding
        case .malformedRequestBody: .malformedRequestBody
        }
    }

    var status: HTTPResponseStatus {
        switch self {
        case .malformedRequest, .invalidRequestTarget, .invalidTransferEncoding, .malformedRequestBody: .badRequest
        case .unsupportedTransferCoding: .notImplemented
        case .requestHeadTooLarge, .tooManyHeaders: .requestHeaderFieldsTooLarge
        case .tooManyConnections: .serviceUnavailable
        }
    }

    /// What the client is told, and what the log says: the limit and the setting that changes it.
    var message: String {
        switch self {
        case .malformedRequest:
            "malformed HTTP request"
        case .requestHeadTooLarge(let limit, _):
            "request head larger than \(limit) bytes (ollama-metrics-proxy --max-request-head-size)"
        case .tooManyHeaders(let limit, _):
            "request with more than \(limit) header fields (ollama-metrics-proxy --max-request-headers)"
        case .tooManyConnections(let limit):
            "too many connections: \(limit) are open (ollama-metrics-proxy --max-connections)"
        case .invalidRequestTarget:
            "invalid percent-escape in the request path"
        case .invalidTransferEncoding:
            "invalid Transfer-Encoding: chunked must be the last coding, applied once"
        case .unsupportedTransferCoding:
            "unsupported Transfer-Encoding: only chunked is implemented"
        case .malformedRequestBody:
            "malformed chunked request body"
        }
    }

    /// The response, in the dialect of the request's endpoint when it is known; it always closes the
    /// connection. A malformed request gets NIO's empty 400, as before: there is no request to speak to.
    var response: (HTTPResponseHead, ByteBuffer?) {
        var extra = [("Connection", "close")]
        let endpoint: InferenceEndpoint?
        switch self {
        case .malformedRequest:
            let headers = HTTPHeaders([("Connection", "close"), ("Content-Length", "0")])
            return (HTTPResponseHead(version: .http1_1, status: .badRequest, headers: headers), nil)
        case .requestHeadTooLarge(_, let requested), .tooManyHeaders(_, let requested),
            .invalidTransferEncoding(let requested), .unsupportedTransferCoding(let requested),
            .malformedRequestBody(let requested):
            endpoint = requested
        case .invalidRequestTarget:
            endpoint = nil
        case .tooManyConnections:
            endpoint = nil
            extra.append(("Retry-After", "1"))
        }
        let (head, body) = ProxyErrorResponse.make(self.status, message: self.message, endpoint: endpoint, extraHeaders: extra)
        return (head, body)
    }
}
