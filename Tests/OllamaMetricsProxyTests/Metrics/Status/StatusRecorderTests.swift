import NIOHTTP1
import Testing
@testable import OllamaMetricsProxy

/// The status recorder as the connection handler drives it: one listener per request, the inference events
/// after the metrics recorder admitted the model.
@Suite struct StatusRecorderTests {
    static let metrics = ProxyMetrics(maxModelLabels: 10)

    /// One request through a fresh recorder's listener, the metrics recorder's listener first as in the handler.
    static func run(
        _ recorder: StatusRecorder, model: String?, status: Int, usage: Usage?, outcome: InferenceEnding.Outcome,
        metrics: ProxyMetrics = Self.metrics, path: String = "/api/chat"
    ) {
        let start = InferenceRequestStart(endpoint: InferenceEndpoint(path: path)!, model: model, isStreaming: true)
        let listener = recorder.requestReceived(RequestStart(method: .POST, path: path, clientAddress: "10.1.2.3"))
        // The inference observers as `ProxyServer` lists them, the request observer's listener after them.
        let observers = CompositeLifecycleObserver([
            MetricsRecorder(metrics: metrics),
            ServingRecorder(metrics: metrics, timeToFirstToken: recorder.timeToFirstTokenSink),
        ])
        let both = CompositeLifecycleListener(listeners: [observers.requestBegan(start), listener])
        listener.inferenceBegan(start)
        both.upstreamConnected(reused: false)
        both.responseHeadReceived(status: status)
        if (200..<300).contains(status) { both.firstContentForwarded() }
        if let usage { both.usageSeen(usage) }
        both.ended(InferenceEnding(outcome: outcome, requestBodyBytes: 10, responseBodyBytes: 20))
        listener.requestEnded(RequestEnding(status: status, outcome: outcome, requestBodyBytes: 10, responseBodyBytes: 20))
    }

    @Test func aCompletedStreamIsCountedWithItsTokensAndFirstToken() throws {
        let recorder = StatusRecorder(modelLabels: Self.metrics.modelLabels, showsClientAddresses: false)
        Self.run(recorder, model: "llama3.2", status: 200, usage: Usage(promptTokens: 7, completionTokens: 3), outcome: .completed)
        let snapshot = recorder.snapshot(ollama: nil)
        let model = try #require(snapshot.models.first)
        #expect(model.model == "llama3.2" && model.inFlight == 0)
        #expect(model.totals == StatusBoard.Counts(completed: 1, promptTokens: 7, completionTokens: 3))
        #expect(model.timeToFirstToken.count == 1)
        let request = try #require(snapshot.recent.first)
        #expect(request.model == "llama3.2" && request.endpoint == .chat && request.status == 200 && request.outcome == .completed)
        #expect(request.promptTokens == 7 && request.completionTokens == 3 && request.timeToFirstTokenSeconds != nil)
        #expect(request.client == nil, "the access log is off: no address")
    }

    @Test func theClientAddressIsShownOnlyWhenTheAccessLogShowsIt() {
        let recorder = StatusRecorder(modelLabels: Self.metrics.modelLabels, showsClientAddresses: true)
        Self.run(recorder, model: "llama3.2", status: 500, usage: nil, outcome: .failed(.http5xx))
        let request = recorder.snapshot(ollama: nil).recent.first
        #expect(request?.client == "10.1.2.3")
        #expect(request?.timeToFirstTokenSeconds == nil && request?.promptTokens == nil)
    }

    @Test func aModelOllamaDoesNotKnowIsRecordedAsRejectedLikeOnTheMetrics() {
        let metrics = ProxyMetrics(maxModelLabels: 10)
        let recorder = StatusRecorder(modelLabels: metrics.modelLabels, showsClientAddresses: false)
        Self.run(recorder, model: "typo", status: 404, usage: nil, outcome: .failed(.http4xx), metrics: metrics)
        #expect(recorder.snapshot(ollama: nil).models.map(\.model) == [ModelLabelPolicy.rejected])
        // A name Ollama served keeps its own label even when a later request of it gets a 404.
        Self.run(recorder, model: "real", status: 200, usage: Usage(completionTokens: 1), outcome: .completed, metrics: metrics)
        Self.run(recorder, model: "real", status: 404, usage: nil, outcome: .failed(.http4xx), metrics: metrics)
        let real = recorder.snapshot(ollama: nil).models.first { $0.model == "real" }
        #expect(real?.totals.completed == 1 && real?.totals.failed == 1)
    }

    @Test func aNewNameIsInFlightAsUnconfirmedUntilOllamasTwoXX() {
        let metrics = ProxyMetrics(maxModelLabels: 10)
        let recorder = StatusRecorder(modelLabels: metrics.modelLabels, showsClientAddresses: false)
        let start = InferenceRequestStart(endpoint: .chat, model: "new", isStreaming: true)
        let listener = recorder.requestReceived(RequestStart(method: .POST, path: "/api/chat", clientAddress: nil))
        let both = CompositeLifecycleListener(listeners: [MetricsRecorder(metrics: metrics).requestBegan(start), listener])
        listener.inferenceBegan(start)
        let inFlight = { Dictionary(uniqueKeysWithValues: recorder.snapshot(ollama: nil).models.map { ($0.model, $0.inFlight) }) }
        #expect(inFlight() == [ModelLabelPolicy.unconfirmed: 1])
        both.responseHeadReceived(status: 200)
        #expect(inFlight() == ["new": 1], "moved, and the placeholder's empty entry gone")
        both.ended(InferenceEnding(outcome: .failed(.noUsage), requestBodyBytes: 1, responseBodyBytes: 1))
        #expect(inFlight() == ["new": 0])
        #expect(recorder.snapshot(ollama: nil).recent.first?.model == "new")
    }

    @Test func aHugeNameNeverReachesThePage() {
        let metrics = ProxyMetrics(maxModelLabels: 10)
        let recorder = StatusRecorder(modelLabels: metrics.modelLabels, showsClientAddresses: false)
        let huge = String(repeating: "x", count: 4 << 20)
        Self.run(recorder, model: huge, status: 200, usage: Usage(completionTokens: 1), outcome: .completed, metrics: metrics)
        Self.run(recorder, model: huge, status: 400, usage: nil, outcome: .failed(.http4xx), metrics: metrics)
        let snapshot = recorder.snapshot(ollama: nil)
        #expect(snapshot.models.map(\.model) == [ModelLabelPolicy.rejected])
        #expect(snapshot.recent.allSatisfy { $0.model == ModelLabelPolicy.rejected })
        #expect(snapshot.json().count < 16 * 1024)
    }

    @Test func otherRequestsAreNotKept() {
        let recorder = StatusRecorder(modelLabels: Self.metrics.modelLabels, showsClientAddresses: true)
        for (method, path) in [(HTTPMethod.GET, "/api/tags"), (.GET, "/api/chat"), (.POST, "/api/pull")] {
            let listener = recorder.requestReceived(RequestStart(method: method, path: path, clientAddress: "10.1.2.3"))
            listener.requestEnded(RequestEnding(status: 200, outcome: .completed, requestBodyBytes: 0, responseBodyBytes: 5))
        }
        let snapshot = recorder.snapshot(ollama: nil)
        #expect(snapshot.models.isEmpty && snapshot.recent.isEmpty)
    }

    @Test func aListenerDroppedWithoutItsEndLeavesNothingInFlight() {
        let recorder = StatusRecorder(modelLabels: Self.metrics.modelLabels, showsClientAddresses: false)
        do {
            let listener = recorder.requestReceived(RequestStart(method: .POST, path: "/api/chat", clientAddress: nil))
            listener.inferenceBegan(InferenceRequestStart(endpoint: .chat, model: nil, isStreaming: false))
            #expect(recorder.snapshot(ollama: nil).models.first?.inFlight == 1)
        }
        #expect(recorder.snapshot(ollama: nil).models.isEmpty)
    }
}
