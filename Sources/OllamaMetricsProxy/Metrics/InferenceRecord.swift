import NIOCore
import Prometheus

/// The metrics of one inference request, from the moment its body was read to its last byte: the metrics
/// recorder's listener to the request's lifecycle.
///
/// Every request ends exactly once, either completed (`ollama_requests_total`) or failed
/// (`ollama_request_failures_total` with one reason), so completed + failed = every request.
/// The active gauge is incremented on creation and decremented exactly once by `finish` (or, as a
/// safety net, when the record is dropped), so no path can leak it. A request for a name Ollama has not
/// accepted yet is in flight under `__unconfirmed__`; a 2xx response head moves it (gauge and all) to its
/// name's label, and one that ends without such an answer is recorded under a placeholder: the name never
/// becomes a label (see `ModelLabelPolicy`).
final class InferenceRecord {
    private let metrics: ProxyMetrics
    private let endpoint: InferenceEndpoint
    private let model: String?
    private var admission: ModelLabelPolicy.Admission
    /// The series of the request's label; nil while it awaits Ollama's answer, so that `__unconfirmed__` has
    /// only its gauge unless a request ends under it.
    private var series: ProxyMetrics.RequestSeries?
    /// The gauge the request is counted in flight under.
    private var active: Gauge
    private let start: NIODeadline
    private var upstreamStatus: Int?
    private var failure: FailureReason?
    private(set) var isCompleted = false
    private(set) var isFinished = false

    init(metrics: ProxyMetrics, endpoint: InferenceEndpoint, model: String?) {
        self.metrics = metrics
        self.endpoint = endpoint
        self.model = model
        let admission = metrics.admit(model)
        self.admission = admission
        if admission.awaitsAnswer {
            self.active = metrics.activeGauge(model: admission.label, endpoint: endpoint)
        } else {
            let series = metrics.requestSeries(model: admission.label, endpoint: endpoint)
            self.series = series
            self.active = series.active
        }
        self.start = .now()
        self.active.increment()
    }

    var modelLabel: String { self.series?.model ?? self.admission.label }

    /// Ollama's status code arrived: a 2xx for a name awaiting it gives the request the name's label.
    func upstreamAnswered(status: Int) {
        self.upstreamStatus = status
        guard (200..<300).contains(status), self.admission.awaitsAnswer, !self.isFinished, let model = self.model else { return }
        self.admission = self.metrics.confirm(model)
        let confirmed = self.metrics.requestSeries(model: self.admission.label, endpoint: self.endpoint)
        confirmed.active.increment()
        self.active.decrement()
        self.series = confirmed
        self.active = confirmed.active
    }

    /// The request will not complete, for this reason (the first reason given wins).
    func fail(_ reason: FailureReason) {
        guard !self.isCompleted, !self.isFinished, self.failure == nil else { return }
        self.failure = reason
    }

    /// The final usage passed by: the request counts as completed, with its tokens and timings.
    func complete(with usage: Usage) {
        guard !self.isCompleted, !self.isFinished, self.failure == nil else { return }
        self.isCompleted = true
        let series = self.recordedSeries
        series.requests.increment()
        self.metrics.recordUsage(usage, model: series.model)
    }

    /// The series the request is recorded under: its label's, or, for one that never got Ollama's 2xx, the
    /// label `ModelLabelPolicy.settledLabel` gives it (a placeholder unless the name was accepted meanwhile).
    private var recordedSeries: ProxyMetrics.RequestSeries {
        if let series = self.series { return series }
        let label = self.metrics.modelLabels.settledLabel(for: self.model, answered: self.upstreamStatus != nil)
        return self.metrics.requestSeries(model: label, endpoint: self.endpoint)
    }

    /// The exchange is over, however it ended.
    func finish() {
        guard !self.isFinished else { return }
        self.isFinished = true
        self.active.decrement()
        let seconds = Double((NIODeadline.now() - self.start).nanoseconds) / 1e9
        let failure = self.isCompleted ? nil : (self.failure ?? .noUsage)

        let series = self.recordedSeries
        series.duration.record(seconds)
        if let failure {
            self.metrics.failures(model: series.model, endpoint: self.endpoint, reason: failure).increment()
        }
    }

    deinit {
        self.finish()
    }
}

extension InferenceRecord: InferenceLifecycleListener {
    func upstreamConnected(reused: Bool) {}

    func responseHeadReceived(status: Int) {
        self.upstreamAnswered(status: status)
    }

    func firstContentForwarded() {}

    func usageSeen(_ usage: Usage) {
        self.complete(with: usage)
    }

    func ended(_ ending: InferenceEnding) {
        if case .failed(let reason) = ending.outcome {
            self.fail(reason)
        }
        self.finish()
    }
}
