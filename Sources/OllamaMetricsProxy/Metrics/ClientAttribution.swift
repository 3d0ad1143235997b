import NIOConcurrencyHelpers
import NIOHTTP1

/// The lifecycle observer behind `--client-header`: the header's value becomes a `client` label on
/// per-client copies of the completed-request and token counters (`ollama_client_*_total`, with `model`),
/// so that the contract's families keep their labels.
///
/// Credential headers (`Authorization`, `X-Api-Key`, …) are never exposed: their value (without an
/// `Authorization` scheme) becomes `key-` and the first 12 hex digits of its HMAC-SHA256 under the
/// `ClientHashKey`, so that it cannot be guessed offline from `/metrics`. Other values are
/// kept, cut to 64 bytes. Like `model`, the label is bounded: `unknown` when the header is absent, and
/// `__overflow__` for new values once as many distinct values as `--max-models` are in use.
/// List it after `MetricsRecorder` (it reuses the request's model label, given at Ollama's 2xx answer).
struct ClientAttributionRecorder: InferenceLifecycleObserver {
    let header: String
    let metrics: ProxyMetrics
    let clients: ClientLabelPolicy
    let key: ClientHashKey

    init(header: String, metrics: ProxyMetrics, key: ClientHashKey) {
        self.header = header
        self.metrics = metrics
        self.clients = ClientLabelPolicy(limit: metrics.modelLabels.limit)
        self.key = key
    }

    func requestBegan(_ request: InferenceRequestStart) -> InferenceLifecycleListener {
        let value = request.clientHeaders.first(name: self.header)
        return ClientAttributionRecord(
            metrics: self.metrics.serving,
            client: self.clients.label(for: value.map { Self.labelValue($0, header: self.header, key: self.key) }),
            modelLabels: self.metrics.modelLabels,
            requestedModel: request.model
        )
    }

    /// Headers whose values are secrets.
    static let credentialHeaders: Set<String> = ["authorization", "proxy-authorization", "x-api-key", "api-key", "cookie"]

    /// What of a header value may reach Prometheus.
    static func labelValue(_ value: String, header: String, key: ClientHashKey) -> String {
        guard Self.credentialHeaders.contains(header.lowercased()) else {
            var utf8 = Array(value.utf8.prefix(64))
            // Not in the middle of a character.
            while !utf8.isEmpty, String(validating: utf8, as: UTF8.self) == nil { utf8.removeLast() }
            return String(decoding: utf8, as: UTF8.self)
        }
        var secret = Substring(value)
        let lowercased = header.lowercased()
        if lowercased == "authorization" || lowercased == "proxy-authorization", let space = secret.firstIndex(of: " ") {
            secret = secret[secret.index(after: space)...]
        }
        return key.label(for: secret.trimmingPrefix(" ").utf8)
    }
}

/// One request's client and model, counted when its usage passes.
final class ClientAttributionRecord: InferenceLifecycleListener {
    private let metrics: ServingMetrics
    private let client: String
    private let modelLabels: ModelLabelPolicy
    private let requestedModel: String?
    /// The request's `model` label, known once Ollama answered 2xx (nothing is counted before).
    private var model = ModelLabelPolicy.unconfirmed
    private var isSuccess = false

    init(metrics: ServingMetrics, client: String, modelLabels: ModelLabelPolicy, requestedModel: String?) {
        self.metrics = metrics
        self.client = client
        self.modelLabels = modelLabels
        self.requestedModel = requestedModel
    }

    func upstreamConnected(reused: Bool) {}

    func responseHeadReceived(status: Int) {
        self.isSuccess = (200..<300).contains(status)
        if self.isSuccess { self.model = self.modelLabels.labelAfterSuccess(for: self.requestedModel) }
    }

    func firstContentForwarded() {}

    func usageSeen(_ usage: Usage) {
        guard self.isSuccess else { return }
        let series = self.metrics.clientSeries(client: self.client, model: self.model)
        series.requests.increment()
        if let prompt = usage.promptTokens, prompt > 0 { series.promptTokens.increment(by: Int64(prompt)) }
        if let completion = usage.completionTokens, completion > 0 { series.completionTokens.increment(by: Int64(completion)) }
    }

    func ended(_ ending: InferenceEnding) {}
}

/// Bounds the `client` label: at most `limit` distinct values, later new ones share `overflow`.
final class ClientLabelPolicy: Sendable {
    static let unknown = "unknown"
    static let overflow = "__overflow__"

    let limit: Int
    private let seen = NIOLockedValueBox(Set<String>())

    init(limit: Int) {
        self.limit = max(0, limit)
    }

    func label(for value: String?) -> String {
        guard let value, !value.isEmpty else { return Self.unknown }
        return self.seen.withLockedValue { seen in
            if seen.contains(value) { return value }
            guard seen.count < self.limit else { return Self.overflow }
            seen.insert(value)
            return value
        }
    }
}
