/// Usage read from a response: what the metrics record for one completed request.
///
/// Absent fields are nil rather than 0 because Ollama omits zero-valued fields (`omitempty`), and a
/// count the response did not carry must not be confused with a count of zero.
public struct Usage: Sendable, Equatable {
    /// The model named in the response, if any (the request's model is the caller's fallback).
    public var model: String?
    public var promptTokens: Int?
    public var completionTokens: Int?
    /// Ollama native endpoints only: nanoseconds, as sent.
    public var totalDurationNanos: Int64?
    public var loadDurationNanos: Int64?
    public var promptEvalDurationNanos: Int64?
    public var evalDurationNanos: Int64?
    /// Why generation stopped; filled in from `ResponseInspector.finishReason` when the usage is taken.
    public var finishReason: FinishReason?

    public init(
        model: String? = nil,
        promptTokens: Int? = nil,
        completionTokens: Int? = nil,
        totalDurationNanos: Int64? = nil,
        loadDurationNanos: Int64? = nil,
        promptEvalDurationNanos: Int64? = nil,
        evalDurationNanos: Int64? = nil,
        finishReason: FinishReason? = nil
    ) {
        self.model = model
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.totalDurationNanos = totalDurationNanos
        self.loadDurationNanos = loadDurationNanos
        self.promptEvalDurationNanos = promptEvalDurationNanos
        self.evalDurationNanos = evalDurationNanos
        self.finishReason = finishReason
    }
}
