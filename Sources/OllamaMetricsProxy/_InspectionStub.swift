import NIOCore
// TEMPORARY stub until Inspection/ lands.
public enum RequestInspector {
    public static func inspect(endpoint: InferenceEndpoint, body: ByteBuffer) -> (request: InferenceRequest, rewrittenBody: ByteBuffer?) {
        (InferenceRequest(model: nil, isStreaming: false, withholdUsageChunks: false), nil)
    }
}
public struct ResponseInspector {
    public init(endpoint: InferenceEndpoint, request: InferenceRequest, contentType: String?) {}
    public mutating func inspect(_ chunk: ByteBuffer) -> ByteBuffer { chunk }
    public mutating func finish() -> ByteBuffer? { nil }
    public mutating func takeCompletedUsage() -> Usage? { nil }
    public private(set) var streamErrorMessage: String?
}
