/// What the proxy read from an inference request body: enough to label the request before the response
/// arrives and to tell the response inspector how to treat the stream.
public struct InferenceRequest: Sendable, Equatable {
    /// The top-level `"model"` string, unescaped; nil if absent, not a string, or the body is not JSON.
    public var model: String?
    /// The top-level `"stream"` boolean if present, else the endpoint's default.
    public var isStreaming: Bool
    /// True when the proxy added or forced `stream_options.include_usage`: the usage-only chunks
    /// (`"choices":[]`) were not asked for by the client and must not reach it.
    public var withholdUsageChunks: Bool

    public init(model: String?, isStreaming: Bool, withholdUsageChunks: Bool) {
        self.model = model
        self.isStreaming = isStreaming
        self.withholdUsageChunks = withholdUsageChunks
    }
}
