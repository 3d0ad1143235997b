import Logging
import NIOConcurrencyHelpers
import Prometheus

/// The proxy's Prometheus registry: the nine metric families of the Go tool's contract, with their exact
/// names, types, label names (in this fixed order), HELP texts and buckets, and the two the proxy adds
/// (failures by reason, model-label overflows).
public final class ProxyMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    let modelLabels: ModelLabelPolicy
    /// The serving-insight families (latency, request sizes, speeds, finish reasons, clients).
    let serving: ServingMetrics

    /// `ollama_request_duration_seconds` buckets, in seconds.
    public static let durationBuckets: [Double] = [0.1, 0.5, 1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600]

    /// The contract's metric families: name and HELP text, exactly as the Go tool exposed them.
    enum Family {
        case requests, promptTokens, completionTokens, duration, active
        case tokensPerSecond, promptEvalSeconds, generationSeconds, loadSeconds
        case failures, labelOverflows

        var name: String {
            switch self {
            case .requests: "ollama_requests_total"
            case .promptTokens: "ollama_prompt_tokens_total"
            case .completionTokens: "ollama_completion_tokens_total"
            case .duration: "ollama_request_duration_seconds"
            case .active: "ollama_active_requests"
            case .tokensPerSecond: "ollama_tokens_per_second"
            case .promptEvalSeconds: "ollama_prompt_eval_seconds_total"
            case .generationSeconds: "ollama_token_generation_seconds_total"
            case .loadSeconds: "ollama_model_load_seconds_total"
            case .failures: "ollama_request_failures_total"
            case .labelOverflows: "ollama_model_label_overflows_total"
            }
        }

        var help: String {
            switch self {
            case .requests: "Total completed inference requests."
            case .promptTokens: "Total prompt tokens processed."
            case .completionTokens: "Total completion tokens generated."
            case .duration: "End-to-end request duration in seconds."
            case .active: "Currently in-flight inference requests."
            case .tokensPerSecond: "Most recent token generation speed (Ollama native only)."
            case .promptEvalSeconds: "Total time evaluating prompts in seconds (Ollama native only)."
            case .generationSeconds: "Total time generating tokens in seconds (Ollama native only)."
            case .loadSeconds: "Total time loading models in seconds (Ollama native only)."
            case .failures: "Inference requests that did not complete, by reason."
            case .labelOverflows: "Inference requests recorded under model=\"__overflow__\" because --max-models names were in use."
            }
        }

        /// The whole name goes in `metricName`: the contract's names already carry their unit suffixes.
        var descriptor: MetricNameDescriptor {
            MetricNameDescriptor(metricName: self.name, unitName: "", helpText: self.help)
        }
    }

    func counter(_ family: Family, _ labels: [(String, String)]) -> Counter {
        self.registry.makeCounter(descriptor: family.descriptor, labels: labels)
    }

    func gauge(_ family: Family, _ labels: [(String, String)]) -> Gauge {
        self.registry.makeGauge(descriptor: family.descriptor, labels: labels)
    }

    private let logger: Logger
    /// Handles already looked up. The registry's own lookup validates names and labels under its lock on
    /// every call; this is one dictionary hit instead, once per request. Bounded like the model label.
    private let handles = NIOLockedValueBox(HandleCache())

    private struct HandleCache {
        var requestSeries: [RequestKey: RequestSeries] = [:]
        var activeGauges: [RequestKey: Gauge] = [:]
        var counters: [CounterKey: Counter] = [:]
        var tokensPerSecond: [String: Gauge] = [:]
    }

    private struct RequestKey: Hashable {
        let model: String
        let endpoint: InferenceEndpoint
    }

    /// A per-model counter, or a failure counter when `endpoint` and `reason` are set.
    private struct CounterKey: Hashable {
        let family: Family
        let model: String
        var endpoint: InferenceEndpoint? = nil
        var reason: FailureReason? = nil
    }

    public init(
        maxModelLabels: Int = 100,
        registry: PrometheusCollectorRegistry = .init(),
        logger: Logger = Logger(label: "ollama-metrics-proxy")
    ) {
        self.registry = registry
        self.modelLabels = ModelLabelPolicy(limit: maxModelLabels)
        self.serving = ServingMetrics(registry: registry)
        self.logger = logger
    }

    /// The label of a request naming `model` as it begins; see `ModelLabelPolicy`.
    func admit(_ model: String?) -> ModelLabelPolicy.Admission {
        self.counted(self.modelLabels.admit(model))
    }

    /// The label of a request admitted as awaiting Ollama's answer, now that Ollama answered it 2xx.
    func confirm(_ model: String) -> ModelLabelPolicy.Admission {
        self.counted(self.modelLabels.confirm(model))
    }

    /// Counts an overflow, and logs the first.
    private func counted(_ result: (admission: ModelLabelPolicy.Admission, firstOverflow: Bool)) -> ModelLabelPolicy.Admission {
        if result.admission.overflowed {
            self.counter(.labelOverflows, []).increment()
            if result.firstOverflow {
                self.logger.warning(
                    "more than --max-models=\(self.modelLabels.limit) distinct model names: new names are recorded as model=\"\(ModelLabelPolicy.overflow)\""
                )
            }
        }
        return result.admission
    }

    func failures(model: String, endpoint: InferenceEndpoint, reason: FailureReason) -> Counter {
        let key = CounterKey(family: .failures, model: model, endpoint: endpoint, reason: reason)
        if let counter = self.handles.withLockedValue({ $0.counters[key] }) { return counter }
        let counter = self.counter(
            .failures, [("model", model), ("endpoint", endpoint.rawValue), ("reason", reason.rawValue)]
        )
        self.handles.withLockedValue { $0.counters[key] = counter }
        return counter
    }

    /// The series every inference request touches from its start: looked up once per request.
    struct RequestSeries {
        let model: String
        let requests: Counter
        let duration: ValueHistogram
        let active: Gauge
    }

    func requestSeries(model: String, endpoint: InferenceEndpoint) -> RequestSeries {
        let key = RequestKey(model: model, endpoint: endpoint)
        if let series = self.handles.withLockedValue({ $0.requestSeries[key] }) { return series }
        let series = self.makeRequestSeries(model: model, endpoint: endpoint)
        self.handles.withLockedValue { $0.requestSeries[key] = series }
        return series
    }

    /// The in-flight gauge of `model` alone, for a request awaiting Ollama's answer under a placeholder: the
    /// placeholder's other series appear only when a request is recorded under it.
    func activeGauge(model: String, endpoint: InferenceEndpoint) -> Gauge {
        let key = RequestKey(model: model, endpoint: endpoint)
        if let gauge = self.handles.withLockedValue({ $0.activeGauges[key] }) { return gauge }
        let gauge = self.gauge(.active, [("model", model), ("endpoint", endpoint.rawValue)])
        self.handles.withLockedValue { $0.activeGauges[key] = gauge }
        return gauge
    }

    private func makeRequestSeries(model: String, endpoint: InferenceEndpoint) -> RequestSeries {
        let labels = [("model", model), ("endpoint", endpoint.rawValue)]
        return RequestSeries(
            model: model,
            requests: self.counter(.requests, labels),
            duration: self.registry.makeValueHistogram(
                descriptor: Family.duration.descriptor, labels: labels, buckets: Self.durationBuckets
            ),
            active: self.gauge(.active, labels)
        )
    }

    /// A per-model counter of `family`, looked up once.
    private func modelCounter(_ family: Family, _ model: String) -> Counter {
        let key = CounterKey(family: family, model: model)
        if let counter = self.handles.withLockedValue({ $0.counters[key] }) { return counter }
        let counter = self.counter(family, [("model", model)])
        self.handles.withLockedValue { $0.counters[key] = counter }
        return counter
    }

    private func tokensPerSecondGauge(_ model: String) -> Gauge {
        if let gauge = self.handles.withLockedValue({ $0.tokensPerSecond[model] }) { return gauge }
        let gauge = self.gauge(.tokensPerSecond, [("model", model)])
        self.handles.withLockedValue { $0.tokensPerSecond[model] = gauge }
        return gauge
    }

    /// Adds a completed request's usage to the per-model token and timing series.
    func recordUsage(_ usage: Usage, model: String) {
        if let prompt = usage.promptTokens, prompt > 0 {
            self.modelCounter(.promptTokens, model)
                .increment(by: Int64(prompt))
        }
        if let completion = usage.completionTokens, completion > 0 {
            self.modelCounter(.completionTokens, model)
                .increment(by: Int64(completion))
        }
        if let nanos = usage.promptEvalDurationNanos, nanos > 0 {
            self.modelCounter(.promptEvalSeconds, model)
                .increment(by: Double(nanos) / 1e9)
        }
        if let nanos = usage.evalDurationNanos, nanos > 0 {
            self.modelCounter(.generationSeconds, model)
                .increment(by: Double(nanos) / 1e9)
            if let tokens = usage.completionTokens, tokens > 0 {
                self.tokensPerSecondGauge(model).set(to: Double(tokens) / (Double(nanos) / 1e9))
            }
        }
        if let nanos = usage.loadDurationNanos, nanos > 0 {
            self.modelCounter(.loadSeconds, model)
                .increment(by: Double(nanos) / 1e9)
        }
    }

    /// The Prometheus text exposition (format 0.0.4) of every series.
    public func exposition() -> [UInt8] {
        var buffer: [UInt8] = []
        buffer.reserveCapacity(8 * 1024)
        self.registry.emit(into: &buffer)
        return buffer
    }
}
