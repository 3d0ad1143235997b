/// Why an inference request did not complete: the `reason` label of `ollama_request_failures_total`.
/// A closed set, so the label stays bounded.
enum FailureReason: String, Sendable, CaseIterable {
    /// Ollama answered 4xx (unknown model, bad request, 499 canceled by the scheduler…).
    case http4xx = "http_4xx"
    /// Ollama answered 5xx (out of memory, queue full…).
    case http5xx = "http_5xx"
    /// Ollama answered something neither 2xx, 4xx nor 5xx.
    case httpOther = "http_other"
    /// No connection to Ollama, or it closed the connection before answering.
    case upstreamUnreachable = "upstream_unreachable"
    /// The connection to Ollama was lost in the middle of the response.
    case upstreamDisconnected = "upstream_disconnected"
    /// The client hung up before the response's usage went by.
    case clientDisconnected = "client_disconnected"
    /// Ollama reported an error inside a 2xx response (`{"error":…}` line, Anthropic `error` event,
    /// `response.failed`).
    case streamError = "stream_error"
    /// A 2xx response ended normally but carried no usage the proxy could read.
    case noUsage = "no_usage"

    init(status: Int) {
        switch status {
        case 400..<500: self = .http4xx
        case 500..<600: self = .http5xx
        default: self = .httpOther
        }
    }
}
