import NIOCore
import Prometheus

/// The lifecycle observer behind `ServingMetrics`' per-request families: time to first token, time per
/// output token, tokens per request, native prompt and generation speeds, finish reasons.
///
/// Nothing is recorded for a request Ollama did not answer with 2xx, so it labels a request's series with
/// the `model` label the metrics recorder gave it at that answer (`ModelLabelPolicy.labelAfterSuccess`): it
/// must be listed after `MetricsRecorder` in a `CompositeLifecycleObserver`.
struct ServingRecorder: InferenceLifecycleObserver {
    /// Told each time to first token the histogram records, with its `model` label: the status page's
    /// percentiles then come from the very values the histogram has.
    typealias TimeToFirstTokenSink = @Sendable (_ model: String, _ seconds: Double) -> Void

    let metrics: ProxyMetrics
    var timeToFirstToken: TimeToFirstTokenSink? = nil

    func requestBegan(_ request: InferenceRequestStart) -> InferenceLifecycleListener {
        ServingRecord(
            metrics: self.metrics.serving,
            modelLabels: self.metrics.modelLabels,
            requestedModel: request.model,
            endpoint: request.endpoint,
            isStreaming: request.isStreaming,
            timeToFirstToken: self.timeToFirstToken
        )
    }
}

/// One request's timestamps, turned into observations when its first content and its usage pass.
final class ServingRecord: InferenceLifecycleListener {
    private let metrics: ServingMetrics
    private let modelLabels: ModelLabelPolicy
    private let requestedModel: String?
    /// The request's `model` label, known once Ollama answered 2xx.
    private var model = ModelLabelPolicy.unconfirmed
    private let endpoint: InferenceEndpoint
    private let isStreaming: Bool
    private let timeToFirstToken: ServingRecorder.TimeToFirstTokenSink?
    private let began: NIODeadline
    private var isSuccess = false
    private var firstContent: NIODeadline?

    init(
        metrics: ServingMetrics, modelLabels: ModelLabelPolicy, requestedModel: String?, endpoint: InferenceEndpoint,
        isStreaming: Bool, timeToFirstToken: ServingRecorder.TimeToFirstTokenSink? = nil
    ) {
        self.metrics = metrics
        self.modelLabels = modelLabels
        self.requestedModel = requestedModel
        self.endpoint = endpoint
        self.isStreaming = isStreaming
        self.timeToFirstToken = timeToFirstToken
        self.began = .now()
    }

    func upstreamConnected(reused: Bool) {}

    func responseHeadReceived(status: Int) {
        self.isSuccess = (200..<300).contains(status)
        if self.isSuccess { self.model = self.modelLabels.labelAfterSuccess(for: self.requestedModel) }
    }

    func firstContentForwarded() {
        guard self.isSuccess, self.firstContent == nil else { return }
        let now = NIODeadline.now()
        self.firstContent = now
        guard self.isStreaming else { return }
        let seconds = Self.seconds(now - self.began)
        self.histogram(.timeToFirstToken).record(seconds)
        self.timeToFirstToken?(self.model, seconds)
    }

    func usageSeen(_ usage: Usage) {
        guard self.isSuccess else { return }
        let now = NIODeadline.now()
        if let prompt = usage.promptTokens { self.histogram(.promptTokens).record(Double(prompt)) }
        if let completion = usage.completionTokens { self.histogram(.completionTokens).record(Double(completion)) }
        if let perToken = self.timePerOutputToken(usage, now: now) { self.histogram(.timePerOutputToken).record(perToken) }
        if let reason = usage.finishReason {
            self.metrics.finishReasons(model: self.model, endpoint: self.endpoint, reason: reason).increment()
        }
        self.recordSpeeds(usage)
    }

    func ended(_ ending: InferenceEnding) {}

    private func histogram(_ histogram: ServingMetrics.RequestHistogram) -> ValueHistogram {
        self.metrics.histogram(histogram, model: self.model, endpoint: self.endpoint)
    }

    /// Native: `eval_duration / eval_count`. Compatibility streams: the time from the first content chunk to
    /// the usage (which Ollama sends right after the last token) over the tokens after the first. Requests
    /// with fewer than two tokens have no time between tokens.
    private func timePerOutputToken(_ usage: Usage, now: NIODeadline) -> Double? {
        guard let tokens = usage.completionTokens, tokens >= 2 else { return nil }
        if self.endpoint.dialect == .ollamaNative {
            guard let nanos = usage.evalDurationNanos, nanos > 0 else { return nil }
            return Double(nanos) / 1e9 / Double(tokens)
        }
        guard self.isStreaming, let firstContent = self.firstContent else { return nil }
        return Self.seconds(now - firstContent) / Double(tokens - 1)
    }

    private func recordSpeeds(_ usage: Usage) {
        let promptSpeed = Self.speed(tokens: usage.promptTokens, nanos: usage.promptEvalDurationNanos)
        let generationSpeed = Self.speed(tokens: usage.completionTokens, nanos: usage.evalDurationNanos)
        guard promptSpeed != nil || generationSpeed != nil else { return }
        let speeds = self.metrics.speedSeries(model: self.model)
        if let promptSpeed {
            speeds.promptSpeed.set(to: promptSpeed)
            speeds.promptSpeedHistogram.record(promptSpeed)
        }
        if let generationSpeed {
            speeds.generationSpeedHistogram.record(generationSpeed)
        }
    }

    private static func speed(tokens: Int?, nanos: Int64?) -> Double? {
        guard let tokens, tokens > 0, let nanos, nanos > 0 else { return nil }
        return Double(tokens) / (Double(nanos) / 1e9)
    }

    private static func seconds(_ amount: TimeAmount) -> Double {
        Double(amount.nanoseconds) / 1e9
    }
}
