import NIOConcurrencyHelpers
import Prometheus

/// The serving-insight families beside the contract's: how fast requests feel (time to first token, time
/// per output token), how large they are (tokens per request), how fast Ollama processes prompts and
/// generates, why generation stopped, and, when asked for, who used the tokens.
///
/// Names follow Prometheus conventions and, where one exists, vLLM's metric of the same meaning (the README
/// maps each to vLLM's and OpenTelemetry GenAI's names). Series are looked up once and cached like
/// `ProxyMetrics`' own; every one carries a `model` label from `ModelLabelPolicy`, only ever a name Ollama
/// accepted or a placeholder.
final class ServingMetrics: Sendable {
    /// `ollama_time_to_first_token_seconds`: 10 ms (a warm model) to 10 minutes (a cold load of a large one).
    static let timeToFirstTokenBuckets: [Double] = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600]
    /// `ollama_time_per_output_token_seconds`: 1,000 down to 0.4 tokens per second.
    static let timePerOutputTokenBuckets: [Double] = [0.001, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1, 2.5]
    /// `ollama_request_prompt_tokens`, `ollama_request_completion_tokens`: 1 to 256 K tokens (a full context).
    static let tokenCountBuckets: [Double] = [1, 8, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072, 262144]
    /// Prompt and generation speed histograms, tokens per second.
    static let speedBuckets: [Double] = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000]

    enum Family: CaseIterable {
        case timeToFirstToken, timePerOutputToken, promptTokens, completionTokens
        case promptSpeed, promptSpeedHistogram, generationSpeedHistogram, finishReasons
        case clientRequests, clientPromptTokens, clientCompletionTokens

        var name: String {
            switch self {
            case .timeToFirstToken: "ollama_time_to_first_token_seconds"
            case .timePerOutputToken: "ollama_time_per_output_token_seconds"
            case .promptTokens: "ollama_request_prompt_tokens"
            case .completionTokens: "ollama_request_completion_tokens"
            case .promptSpeed: "ollama_prompt_tokens_per_second"
            case .promptSpeedHistogram: "ollama_request_prompt_tokens_per_second"
            case .generationSpeedHistogram: "ollama_request_generation_tokens_per_second"
            case .finishReasons: "ollama_request_finish_reasons_total"
            case .clientRequests: "ollama_client_requests_total"
            case .clientPromptTokens: "ollama_client_prompt_tokens_total"
            case .clientCompletionTokens: "ollama_client_completion_tokens_total"
            }
        }

        var help: String {
            switch self {
            case .timeToFirstToken: "Time from the request body being read to the first generated content forwarded, streaming requests, in seconds."
            case .timePerOutputToken: "Time per generated token after the first, in seconds (native: eval_duration / eval_count)."
            case .promptTokens: "Prompt tokens per completed request."
            case .completionTokens: "Completion tokens per completed request."
            case .promptSpeed: "Most recent prompt processing speed, tokens per second (Ollama native only)."
            case .promptSpeedHistogram: "Prompt processing speed per request, tokens per second (Ollama native only)."
            case .generationSpeedHistogram: "Token generation speed per request, tokens per second (Ollama native only)."
            case .finishReasons: "Completed requests by why generation stopped."
            case .clientRequests: "Completed inference requests per client (--client-header)."
            case .clientPromptTokens: "Prompt tokens processed per client (--client-header)."
            case .clientCompletionTokens: "Completion tokens generated per client (--client-header)."
            }
        }

        var descriptor: MetricNameDescriptor {
            MetricNameDescriptor(metricName: self.name, unitName: "", helpText: self.help)
        }
    }

    /// The native speed series of one model.
    struct SpeedSeries {
        let promptSpeed: Gauge
        let promptSpeedHistogram: ValueHistogram
        let generationSpeedHistogram: ValueHistogram
    }

    /// The counters of one client and model.
    struct ClientSeries {
        let requests: Counter
        let promptTokens: Counter
        let completionTokens: Counter
    }

    /// A per-request histogram family: its buckets.
    enum RequestHistogram: Hashable {
        case timeToFirstToken, timePerOutputToken, promptTokens, completionTokens

        var family: Family {
            switch self {
            case .timeToFirstToken: .timeToFirstToken
            case .timePerOutputToken: .timePerOutputToken
            case .promptTokens: .promptTokens
            case .completionTokens: .completionTokens
            }
        }

        var buckets: [Double] {
            switch self {
            case .timeToFirstToken: ServingMetrics.timeToFirstTokenBuckets
            case .timePerOutputToken: ServingMetrics.timePerOutputTokenBuckets
            case .promptTokens, .completionTokens: ServingMetrics.tokenCountBuckets
            }
        }
    }

    private struct RequestKey: Hashable {
        let histogram: RequestHistogram
        let model: String
        let endpoint: InferenceEndpoint
    }

    private struct FinishKey: Hashable {
        let model: String
        let endpoint: InferenceEndpoint
        let reason: FinishReason
    }

    private struct ClientKey: Hashable {
        let client: String
        let model: String
    }

    private struct Cache {
        var requests: [RequestKey: ValueHistogram] = [:]
        var speeds: [String: SpeedSeries] = [:]
        var finishReasons: [FinishKey: Counter] = [:]
        var clients: [ClientKey: ClientSeries] = [:]
    }

    private let registry: PrometheusCollectorRegistry
    private let cache = NIOLockedValueBox(Cache())

    init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
    }

    private func histogram(_ family: Family, _ labels: [(String, String)], _ buckets: [Double]) -> ValueHistogram {
        self.registry.makeValueHistogram(descriptor: family.descriptor, labels: labels, buckets: buckets)
    }

    /// One of the per-request histograms of a model and endpoint, created when first observed (so that, for
    /// instance, embeddings have no time-to-first-token series).
    func histogram(_ histogram: RequestHistogram, model: String, endpoint: InferenceEndpoint) -> ValueHistogram {
        let key = RequestKey(histogram: histogram, model: model, endpoint: endpoint)
        if let series = self.cache.withLockedValue({ $0.requests[key] }) { return series }
        let series = self.histogram(
            histogram.family, [("model", model), ("endpoint", endpoint.rawValue)], histogram.buckets
        )
        self.cache.withLockedValue { $0.requests[key] = series }
        return series
    }

    func speedSeries(model: String) -> SpeedSeries {
        if let series = self.cache.withLockedValue({ $0.speeds[model] }) { return series }
        let labels = [("model", model)]
        let series = SpeedSeries(
            promptSpeed: self.registry.makeGauge(descriptor: Family.promptSpeed.descriptor, labels: labels),
            promptSpeedHistogram: self.histogram(.promptSpeedHistogram, labels, Self.speedBuckets),
            generationSpeedHistogram: self.histogram(.generationSpeedHistogram, labels, Self.speedBuckets)
        )
        self.cache.withLockedValue { $0.speeds[model] = series }
        return series
    }

    func finishReasons(model: String, endpoint: InferenceEndpoint, reason: FinishReason) -> Counter {
        let key = FinishKey(model: model, endpoint: endpoint, reason: reason)
        if let counter = self.cache.withLockedValue({ $0.finishReasons[key] }) { return counter }
        let counter = self.registry.makeCounter(
            descriptor: Family.finishReasons.descriptor,
            labels: [("model", model), ("endpoint", endpoint.rawValue), ("finish_reason", reason.rawValue)]
        )
        self.cache.withLockedValue { $0.finishReasons[key] = counter }
        return counter
    }

    func clientSeries(client: String, model: String) -> ClientSeries {
        let key = ClientKey(client: client, model: model)
        if let series = self.cache.withLockedValue({ $0.clients[key] }) { return series }
        let labels = [("client", client), ("model", model)]
        let series = ClientSeries(
            requests: self.registry.makeCounter(descriptor: Family.clientRequests.descriptor, labels: labels),
            promptTokens: self.registry.makeCounter(descriptor: Family.clientPromptTokens.descriptor, labels: labels),
            completionTokens: self.registry.makeCounter(descriptor: Family.clientCompletionTokens.descriptor, labels: labels)
        )
        self.cache.withLockedValue { $0.clients[key] = series }
        return series
    }
}
