import NIOCore

/// The metrics of one inference request, from the moment its body was read to its last byte: the metrics
/// recorder's listener to the request's lifecycle.
///
/// Every request ends exactly once, either completed (`ollama_requests_total`) or failed
/// (`ollama_request_failures_total` with one reason), so completed + failed = every request.
/// The active gauge is incremented on creation and decremented exactly once by `finish` (or, as a
/// safety net, when the record is dropped), so no path can leak it.
final class InferenceRecord {
    private let metrics: ProxyMetrics
    private let endpoint: InferenceEndpoint
    private let admission: ModelLabelPolicy.Admission
    private let series: ProxyMetrics.RequestSeries
    private let start: NIODeadline
    private var upstreamStatus: Int?
    private var failure: FailureReason?
    private(set) var isCompleted = false
    private(set) var isFinished = false

    init(metrics: ProxyMetrics, endpoint: InferenceEndpoint, model: String?) {
        self.metrics = metrics
        self.endpoint = endpoint
        self.admission = metrics.admit(model, endpoint: endpoint)
        self.series = metrics.requestSeries(model: self.admission.label, endpoint: endpoint)
        self.start = .now()
        self.series.active.increment()
    }

    var modelLabel: String { self.series.model }

    /// Ollama's status code arrived: a 2xx makes a provisional model label permanent, a 404 rejects it
    /// when the request ends.
    func upstreamAnswered(status: Int) {
        self.upstreamStatus = status
        if (200..<300).contains(status), self.admission.isProvisional {
            self.metrics.modelLabels.confirm(self.admission.label)
        }
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
        self.series.requests.increment()
        self.metrics.recordUsage(usage, model: self.series.model)
    }

    /// The exchange is over, however it ended.
    func finish() {
        guard !self.isFinished else { return }
        self.isFinished = true
        self.series.active.decrement()
        let seconds = Double((NIODeadline.now() - self.start).nanoseconds) / 1e9
        let failure = self.isCompleted ? nil : (self.failure ?? .noUsage)

        var label = self.series.model
        if self.admission.isProvisional,
            self.metrics.releaseProvisional(label, rejected: self.upstreamStatus == 404)
        {
            // Ollama does not know this model: the request is kept under one label (and the name's series
            // go once nothing else uses or is recorded under them).
            label = ModelLabelPolicy.rejected
            self.metrics.requestSeries(model: label, endpoint: self.endpoint).duration.record(seconds)
        } else {
            self.series.duration.record(seconds)
        }
        if let failure {
            self.metrics.failures(model: label, endpoint: self.endpoint, reason: failure).increment()
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
