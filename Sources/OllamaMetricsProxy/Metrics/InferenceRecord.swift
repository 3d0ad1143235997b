import NIOCore

/// The metrics of one inference request, from the moment its body was read to its last byte.
///
/// Every series of one request uses the same model label. The active gauge is incremented once on
/// creation and decremented exactly once by `finish` (or, as a safety net, when the record is dropped),
/// so no path — error, disconnect, crash of the upstream — can leak it.
final class InferenceRecord {
    private let metrics: ProxyMetrics
    private let series: ProxyMetrics.RequestSeries
    private let start: NIODeadline
    private(set) var isCompleted = false
    private(set) var isFinished = false

    init(metrics: ProxyMetrics, endpoint: InferenceEndpoint, model: String?) {
        self.metrics = metrics
        self.series = metrics.requestSeries(model: metrics.modelLabels.label(for: model), endpoint: endpoint)
        self.start = .now()
        self.series.active.increment()
    }

    var modelLabel: String { self.series.model }

    /// The final usage passed by: the request counts as completed, with its tokens and timings.
    func complete(with usage: Usage) {
        guard !self.isCompleted, !self.isFinished else { return }
        self.isCompleted = true
        self.series.requests.increment()
        self.metrics.recordUsage(usage, model: self.series.model)
    }

    /// The exchange is over, however it ended.
    func finish() {
        guard !self.isFinished else { return }
        self.isFinished = true
        self.series.active.decrement()
        let elapsed = NIODeadline.now() - self.start
        self.series.duration.record(Double(elapsed.nanoseconds) / 1e9)
    }

    deinit {
        self.finish()
    }
}
