import Testing
@testable import OllamaMetricsProxy

/// The status page's per-model numbers, with time passed in.
@Suite struct StatusBoardTests {
    static let second: Int64 = 1_000_000_000

    static func request(
        _ model: String, _ outcome: InferenceEnding.Outcome = .completed, prompt: Int? = 7, completion: Int? = 3,
        firstToken: Double? = nil, status: Int? = 200
    ) -> StatusBoard.FinishedRequest {
        StatusBoard.FinishedRequest(
            time: 1_800_000_000, model: model, endpoint: .chat, isStreaming: true, status: status, outcome: outcome,
            promptTokens: prompt, completionTokens: completion, durationSeconds: 0.5, timeToFirstTokenSeconds: firstToken,
            client: nil
        )
    }

    static func summary(_ board: StatusBoard, _ model: String, at nanos: Int64) -> StatusBoard.ModelSummary? {
        board.summaries(at: nanos).first { $0.model == model }
    }

    @Test func inFlightCountsFromBeginToEnd() {
        var board = StatusBoard(maxModels: 10)
        let first = board.began(model: "llama3.2")
        let second = board.began(model: "llama3.2")
        #expect(Self.summary(board, "llama3.2", at: 0)?.inFlight == 2)
        board.ended(Self.request("llama3.2"), beganAs: first, at: Self.second)
        #expect(Self.summary(board, "llama3.2", at: Self.second)?.inFlight == 1)
        board.ended(Self.request("llama3.2"), beganAs: second, at: Self.second)
        #expect(Self.summary(board, "llama3.2", at: Self.second)?.inFlight == 0)
    }

    @Test func completedRequestsCountTokensFailuresDoNot() {
        var board = StatusBoard(maxModels: 10)
        for outcome in [InferenceEnding.Outcome.completed, .failed(.http5xx), .failed(.clientDisconnected), .completed] {
            let key = board.began(model: "m")
            board.ended(Self.request("m", outcome), beganAs: key, at: 2 * Self.second)
        }
        let summary = try! #require(Self.summary(board, "m", at: 2 * Self.second))
        let expected = StatusBoard.Counts(completed: 2, failed: 2, clientDisconnected: 1, promptTokens: 14, completionTokens: 6)
        #expect(summary.totals == expected)
        #expect(summary.lastMinute == expected)
        #expect(summary.totals.requests == 4)
        #expect(summary.totals.errors == 1, "a client hanging up is not an error of Ollama")
    }

    @Test func theLastMinuteForgetsWhatTheTotalsKeep() {
        var board = StatusBoard(maxModels: 10)
        let key = board.began(model: "m")
        board.ended(Self.request("m"), beganAs: key, at: 10 * Self.second)
        #expect(Self.summary(board, "m", at: 69 * Self.second)?.lastMinute.completed == 1, "seconds 10 to 69")
        #expect(Self.summary(board, "m", at: 70 * Self.second)?.lastMinute.completed == 0)
        #expect(Self.summary(board, "m", at: 70 * Self.second)?.totals.completed == 1)
        #expect(Self.summary(board, "m", at: 70 * Self.second)?.trend.last?.completed == 0, "the trend's current slot is 70 s to 80 s")
        #expect(Self.summary(board, "m", at: 70 * Self.second)?.trend.map(\.completed).reduce(0, +) == 1)
    }

    @Test func timeToFirstTokenCoversFiveMinutes() {
        var board = StatusBoard(maxModels: 10)
        for (index, seconds) in [0.3, 0.3, 0.3, 4.0].enumerated() {
            board.observeTimeToFirstToken(seconds, model: "m", at: Int64(index) * 100 * Self.second)
        }
        // At 300 s the request that ended at 0 s is out: three remain.
        let summary = try! #require(Self.summary(board, "m", at: 300 * Self.second))
        #expect(summary.timeToFirstToken.count == 3)
        #expect(summary.timeToFirstToken.quantile(0.5) == 0.4375, "two of three in (0.25, 0.5]: rank 1.5 of 2")
        #expect(abs(summary.timeToFirstToken.quantile(0.95)! - 4.625) < 1e-9, "rank 2.85 in (2.5, 5]: 2.5 + 2.5 × 0.85")
        #expect(Self.summary(board, "m", at: 700 * Self.second)?.timeToFirstToken.count == 0)
    }

    @Test func aRejectedNameLeavesNoEntryAndIsRecordedAsRejected() {
        var board = StatusBoard(maxModels: 10)
        let key = board.began(model: "typo-model")
        #expect(board.summaries(at: 0).map(\.model) == ["typo-model"], "in flight under its name, as the active gauge")
        board.ended(Self.request(ModelLabelPolicy.rejected, .failed(.http4xx), status: 404), beganAs: key, at: 0)
        #expect(board.summaries(at: 0).map(\.model) == [ModelLabelPolicy.rejected])
        #expect(board.recentRequests.first?.model == ModelLabelPolicy.rejected)
    }

    @Test func modelsBeyondTheBoundShareTheOverflowEntry() {
        var board = StatusBoard(maxModels: 3)
        for index in 0..<10 {
            let key = board.began(model: "m\(index)")
            board.ended(Self.request("m\(index)"), beganAs: key, at: 0)
        }
        let models = board.summaries(at: 0)
        #expect(models.map(\.model) == [ModelLabelPolicy.overflow, "m0", "m1"])
        #expect(models.first?.totals.completed == 8)
        #expect(board.models.count == 3)
    }

    @Test func anAbandonedRequestIsNoLongerInFlight() {
        var board = StatusBoard(maxModels: 3)
        let key = board.began(model: "m")
        board.abandoned(beganAs: key)
        #expect(board.summaries(at: 0).isEmpty, "nothing recorded: no entry")
    }

    @Test func theRecentRequestsAreTheLastFiftyNewestFirst() {
        var board = StatusBoard(maxModels: 3)
        for index in 0..<60 {
            let key = board.began(model: "m")
            board.ended(Self.request("m", completion: index), beganAs: key, at: 0)
        }
        #expect(board.recentRequests.count == StatusBoard.recentCapacity)
        #expect(board.recentRequests.first?.completionTokens == 59)
        #expect(board.recentRequests.last?.completionTokens == 10)
    }
}
