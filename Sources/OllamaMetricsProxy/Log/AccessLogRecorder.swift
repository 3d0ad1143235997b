import Logging
import NIOCore

/// The access log: one line per proxied request, inference or not, when it ends, at `info` on its own
/// logger (`ollama-metrics-proxy.access`).
///
/// Keys (absent when unknown): `method`, `path` (no query string), `status` (what the client got; none
/// when it hung up first), `outcome` (`completed` or a `FailureReason`), and for inference requests
/// `endpoint`, `model` (as the client named it; past 200 bytes cut, marked `…[N bytes]`), `stream`, `prompt_tokens`,
/// `completion_tokens`, `ttft_s` (request received to first content forwarded); then `duration_s`
/// (request received to its end), `bytes_in` (request body bytes sent to Ollama), `bytes_out` (response
/// body bytes forwarded to the client) and `client` (the peer's IP address).
///
/// Never a prompt, a completion, a query string or a header: nothing that can carry a secret.
struct AccessLogRecorder: RequestLifecycleObserver {
    static let label = "ollama-metrics-proxy.access"
    static let maxModelBytes = 200

    /// A client's model name as a log value: whole when short, else its first `maxModelBytes` bytes (not
    /// in the middle of a character) and `…[N bytes]`, so that a client's megabyte name cannot make
    /// megabyte log lines. Bytes, not characters: one character can hold any number of combining marks.
    static func loggable(model: String) -> String {
        let utf8 = model.utf8
        let count = utf8.count
        guard count > Self.maxModelBytes else { return model }
        var end = utf8.index(utf8.startIndex, offsetBy: Self.maxModelBytes)
        // Back off continuation bytes (10xxxxxx): the cut falls before a character's first byte.
        while end > utf8.startIndex, utf8[end] & 0xC0 == 0x80 { end = utf8.index(before: end) }
        return String(decoding: utf8[..<end], as: UTF8.self) + "…[\(count) bytes]"
    }

    let logger: Logger

    func requestReceived(_ request: RequestStart) -> any RequestLifecycleListener {
        AccessLogListener(logger: self.logger, request: request)
    }
}

final class AccessLogListener: RequestLifecycleListener {
    private let logger: Logger
    private let request: RequestStart
    private let received = NIODeadline.now()
    private var inference: InferenceRequestStart?
    private var firstContent: NIODeadline?
    private var usage: Usage?

    init(logger: Logger, request: RequestStart) {
        self.logger = logger
        self.request = request
    }

    func inferenceBegan(_ request: InferenceRequestStart) { self.inference = request }
    func upstreamConnected(reused: Bool) {}
    func responseHeadReceived(status: Int) {}
    func firstContentForwarded() { self.firstContent = .now() }
    func usageSeen(_ usage: Usage) { self.usage = usage }
    func ended(_ ending: InferenceEnding) {}

    func requestEnded(_ ending: RequestEnding) {
        let now = NIODeadline.now()
        var metadata: Logger.Metadata = [
            "method": .string(self.request.method.rawValue),
            "path": .string(self.request.path),
            "duration_s": .stringConvertible(Self.seconds(now - self.received)),
            "bytes_in": .stringConvertible(ending.requestBodyBytes),
            "bytes_out": .stringConvertible(ending.responseBodyBytes),
        ]
        if let status = ending.status { metadata["status"] = .stringConvertible(status) }
        switch ending.outcome {
        case .completed: metadata["outcome"] = "completed"
        case .failed(let reason): metadata["outcome"] = .string(reason.rawValue)
        }
        if let client = self.request.clientAddress { metadata["client"] = .string(client) }
        if let inference = self.inference {
            metadata["endpoint"] = .string(inference.endpoint.rawValue)
            if let model = inference.model { metadata["model"] = .string(AccessLogRecorder.loggable(model: model)) }
            metadata["stream"] = .stringConvertible(inference.isStreaming)
            if let firstContent = self.firstContent {
                metadata["ttft_s"] = .stringConvertible(Self.seconds(firstContent - self.received))
            }
            if let tokens = self.usage?.promptTokens { metadata["prompt_tokens"] = .stringConvertible(tokens) }
            if let tokens = self.usage?.completionTokens { metadata["completion_tokens"] = .stringConvertible(tokens) }
        }
        self.logger.info("request", metadata: metadata)
    }

    /// Seconds with millisecond precision: `0.123`.
    static func seconds(_ time: TimeAmount) -> Double {
        (Double(time.nanoseconds) / 1e6).rounded() / 1e3
    }
}
