import NIOConcurrencyHelpers
import NIOCore

/// The status page's observer: a request observer (beside the access log), so that it can show the client's
/// address when the access log shows it too. It hears every request but keeps only inference requests: one
/// lock at the start of each, one at its end, and one at a stream's first token (`ServingRecorder` hands that
/// over, so that the percentiles come from the histogram's own values); none per chunk. It labels a request's
/// model as the metrics do (`ModelLabelPolicy.currentLabel`; a request still `__unconfirmed__` moves to its
/// name's label at a 2xx answer, with one more lock), so it must hear each event after `MetricsRecorder`,
/// as every request observer does.
final class StatusRecorder: RequestLifecycleObserver, Sendable {
    let modelLabels: ModelLabelPolicy
    /// Whether the page lists client addresses: only when the access log logs them.
    let showsClientAddresses: Bool
    private let board: NIOLockedValueBox<StatusBoard>
    private let started = NIODeadline.now()

    init(modelLabels: ModelLabelPolicy, showsClientAddresses: Bool) {
        self.modelLabels = modelLabels
        self.showsClientAddresses = showsClientAddresses
        // The label's bound and its special values: `unknown`, `__overflow__`, `__rejected__`, `__unconfirmed__`.
        self.board = NIOLockedValueBox(StatusBoard(maxModels: modelLabels.limit + ModelLabelPolicy.placeholders.count))
    }

    func requestReceived(_ request: RequestStart) -> any RequestLifecycleListener {
        guard request.method == .POST, InferenceEndpoint(path: request.path) != nil else { return IgnoredRequest.shared }
        return StatusListener(recorder: self, client: self.showsClientAddresses ? request.clientAddress : nil)
    }

    /// Everything the page shows, now; `ollama` is the cached probe's answer (nil: not asked).
    func snapshot(ollama: OllamaStatus?) -> StatusSnapshot {
        let (models, recent, uptime) = self.board.withLockedValue { board in
            let now = NIODeadline.now()
            return (board.summaries(at: Self.nanos(now)), board.recentRequests, now - self.started)
        }
        return StatusSnapshot(
            time: WallClock.secondsSinceEpoch(), uptimeSeconds: Double(uptime.nanoseconds) / 1e9,
            showsClientAddresses: self.showsClientAddresses, ollama: ollama, models: models, recent: recent
        )
    }

    /// A time to first token the histogram recorded (`ServingRecorder` tells it), under its `model` label.
    func timeToFirstTokenObserved(model: String, seconds: Double) {
        self.board.withLockedValue { $0.observeTimeToFirstToken(seconds, model: model, at: Self.nanos(.now())) }
    }

    /// `timeToFirstTokenObserved`, for `ServingRecorder`.
    var timeToFirstTokenSink: ServingRecorder.TimeToFirstTokenSink {
        { self.timeToFirstTokenObserved(model: $0, seconds: $1) }
    }

    fileprivate func began(model: String) -> String {
        self.board.withLockedValue { $0.began(model: model) }
    }

    fileprivate func moved(from key: String, to label: String) -> String {
        self.board.withLockedValue { $0.moved(from: key, to: label) }
    }

    fileprivate func ended(_ request: StatusBoard.FinishedRequest, beganAs key: String) {
        self.board.withLockedValue { $0.ended(request, beganAs: key, at: Self.nanos(.now())) }
    }

    fileprivate func abandoned(beganAs key: String) {
        self.board.withLockedValue { $0.abandoned(beganAs: key) }
    }

    private static func nanos(_ deadline: NIODeadline) -> Int64 {
        Int64(clamping: deadline.uptimeNanoseconds)
    }
}

/// One inference request's times and status, told to the recorder when it begins and when it ends.
private final class StatusListener: RequestLifecycleListener {
    private let recorder: StatusRecorder
    private let client: String?
    private var start: InferenceRequestStart?
    /// The request's `model` label, as the metrics recorder gave it.
    private var label = ModelLabelPolicy.unknown
    /// The board entry the request is counted in flight under; nil before it began and after it ended.
    private var key: String?
    private var began = NIODeadline.now()
    private var status: Int?
    private var firstContent: NIODeadline?
    private var usage: Usage?

    init(recorder: StatusRecorder, client: String?) {
        self.recorder = recorder
        self.client = client
    }

    func inferenceBegan(_ request: InferenceRequestStart) {
        self.start = request
        self.began = .now()
        self.label = self.recorder.modelLabels.currentLabel(for: request.model)
        self.key = self.recorder.began(model: self.label)
    }

    func upstreamConnected(reused: Bool) {}

    func responseHeadReceived(status: Int) {
        self.status = status
        // As `InferenceRecord` does: Ollama accepted the name, the request moves to the name's label.
        guard (200..<300).contains(status), self.label == ModelLabelPolicy.unconfirmed, let key = self.key else { return }
        self.label = self.recorder.modelLabels.labelAfterSuccess(for: self.start?.model)
        self.key = self.recorder.moved(from: key, to: self.label)
    }

    func firstContentForwarded() {
        if self.firstContent == nil { self.firstContent = .now() }
    }

    func usageSeen(_ usage: Usage) { self.usage = usage }

    func ended(_ ending: InferenceEnding) {
        guard let start = self.start, let key = self.key else { return }
        self.key = nil
        let now = NIODeadline.now()
        var model = self.label
        if model == ModelLabelPolicy.unconfirmed {
            // As `InferenceRecord` does: a name Ollama never accepted is recorded under a placeholder.
            model = self.recorder.modelLabels.settledLabel(for: start.model, answered: self.status != nil)
        }
        let isSuccess = self.status.map { (200..<300).contains($0) } ?? false
        let firstToken = start.isStreaming && isSuccess ? self.firstContent.map { Self.seconds($0 - self.began) } : nil
        let completed = ending.outcome == .completed
        self.recorder.ended(
            StatusBoard.FinishedRequest(
                time: WallClock.secondsSinceEpoch(), model: model, endpoint: start.endpoint, isStreaming: start.isStreaming,
                status: self.status, outcome: ending.outcome,
                promptTokens: completed ? self.usage?.promptTokens : nil,
                completionTokens: completed ? self.usage?.completionTokens : nil,
                durationSeconds: Self.seconds(now - self.began), timeToFirstTokenSeconds: firstToken, client: self.client
            ),
            beganAs: key
        )
    }

    func requestEnded(_ ending: RequestEnding) {}

    private static func seconds(_ amount: TimeAmount) -> Double {
        Double(amount.nanoseconds) / 1e9
    }

    deinit {
        // A safety net, as `InferenceRecord`'s: `ended` always comes, but nothing may stay in flight forever.
        if let key = self.key { self.recorder.abandoned(beganAs: key) }
    }
}
