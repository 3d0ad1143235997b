/// What the status page shows of the traffic, per model: requests in flight, the last minute second by
/// second, the last five minutes in ten-second slots (with time to first token), totals since start; and
/// the last requests. A value with the time passed in (nanoseconds of a monotonic clock), so that it is
/// tested without waiting; `StatusRecorder` holds it behind a lock.
///
/// Memory is fixed per model (about 5 KB, plus 160 bytes of time-to-first-token buckets per ten seconds in
/// which a stream began, for five minutes: up to 5 KB more) and the models are bounded like the `model` label:
/// at most `maxModels` entries, later ones counted under `__overflow__`.
struct StatusBoard: Sendable {
    static let lastMinuteSlots = 60
    static let lastMinuteSlotNanos: Int64 = 1_000_000_000
    static let trendSlots = 30
    static let trendSlotNanos: Int64 = 10_000_000_000
    static let recentCapacity = 50

    /// Requests and tokens added up over some time.
    struct Counts: WindowSlot, Equatable, Sendable {
        var completed = 0
        /// Every request that did not complete, whatever the reason (`client_disconnected` included).
        var failed = 0
        /// The failures that were the client hanging up: not Ollama's errors.
        var clientDisconnected = 0
        var promptTokens = 0
        var completionTokens = 0

        var requests: Int { self.completed &+ self.failed }
        /// Failures other than a client hanging up, as the `OllamaHighErrorRatio` alert counts them.
        var errors: Int { self.failed &- self.clientDisconnected }

        mutating func add(_ other: Counts) {
            self.completed &+= other.completed
            self.failed &+= other.failed
            self.clientDisconnected &+= other.clientDisconnected
            self.promptTokens &+= other.promptTokens
            self.completionTokens &+= other.completionTokens
        }
    }

    /// Ten seconds of one model: its counts and the times to first token of its streams.
    struct TrendSlot: WindowSlot, Sendable {
        var counts = Counts()
        var timeToFirstToken = BucketCounts()

        mutating func add(_ other: TrendSlot) {
            self.counts.add(other.counts)
            self.timeToFirstToken.add(other.timeToFirstToken)
        }
    }

    struct ModelActivity: Sendable {
        var inFlight = 0
        var totals = Counts()
        var lastMinute = SlidingWindow<Counts>(slotCount: StatusBoard.lastMinuteSlots, slotNanos: StatusBoard.lastMinuteSlotNanos)
        var trend = SlidingWindow<TrendSlot>(slotCount: StatusBoard.trendSlots, slotNanos: StatusBoard.trendSlotNanos)

        /// Nothing in flight and nothing recorded: the entry can go.
        var isEmpty: Bool { self.inFlight == 0 && self.totals.requests == 0 }
    }

    /// One inference request that ended, as the page lists it: never a prompt or a completion.
    struct FinishedRequest: Equatable, Sendable {
        /// When it ended, seconds since the Unix epoch.
        var time: Double
        /// Its `model` label, as on `/metrics` (a placeholder for a name Ollama did not accept).
        var model: String
        var endpoint: InferenceEndpoint
        var isStreaming: Bool
        /// Ollama's status code; nil when Ollama did not answer.
        var status: Int?
        var outcome: InferenceEnding.Outcome
        var promptTokens: Int?
        var completionTokens: Int?
        var durationSeconds: Double
        /// Streams Ollama answered 2xx only, as `ollama_time_to_first_token_seconds` (measured by the page's
        /// own listener: it may differ from the histogram's value by the microseconds between two clock reads).
        var timeToFirstTokenSeconds: Double?
        /// The client's IP address, only when the access log shows it too.
        var client: String?
    }

    /// One model's numbers at one moment.
    struct ModelSummary: Equatable, Sendable {
        var model: String
        var inFlight: Int
        var lastMinute: Counts
        var totals: Counts
        /// The last five minutes' time to first token, all streams of the model.
        var timeToFirstToken: BucketCounts
        /// `trendSlots` slots, oldest first, the last one still filling.
        var trend: [Counts]
    }

    let maxModels: Int
    private(set) var models: [String: ModelActivity] = [:]
    private var recent = RecentRing<FinishedRequest>(capacity: StatusBoard.recentCapacity)

    /// - Parameter maxModels: Entries kept; the `model` label's bound plus its special values.
    init(maxModels: Int) {
        self.maxModels = max(1, maxModels)
    }

    /// The entry a label is counted under: its own, or `__overflow__` when the board is full.
    private func key(for label: String) -> String {
        self.models[label] != nil || self.models.count < self.maxModels - 1 ? label : ModelLabelPolicy.overflow
    }

    /// A request labelled `model` is in flight; returns the entry it is counted under, for `ended`.
    mutating func began(model: String) -> String {
        let key = self.key(for: model)
        self.models[key, default: ModelActivity()].inFlight += 1
        return key
    }

    /// A request counted in flight under `key` is now labelled `label` (Ollama accepted its name); returns
    /// the entry it is counted under from now on.
    mutating func moved(from key: String, to label: String) -> String {
        self.noLongerInFlight(key)
        self.removeIfEmpty(key)
        return self.began(model: label)
    }

    /// The request counted in flight under `beganAs` ended; it is recorded under its final label (which
    /// differs when Ollama rejected the name).
    mutating func ended(_ request: FinishedRequest, beganAs: String, at nanos: Int64) {
        self.noLongerInFlight(beganAs)
        var request = request
        request.model = self.key(for: request.model)
        var counts = Counts()
        switch request.outcome {
        case .completed:
            counts.completed = 1
            counts.promptTokens = max(0, request.promptTokens ?? 0)
            counts.completionTokens = max(0, request.completionTokens ?? 0)
        case .failed(let reason):
            counts.failed = 1
            if reason == .clientDisconnected { counts.clientDisconnected = 1 }
        }
        self.models[request.model, default: ModelActivity()].record(counts, at: nanos)
        self.removeIfEmpty(beganAs)
        self.recent.append(request)
    }

    /// A stream of `model` forwarded its first content `seconds` after it began.
    mutating func observeTimeToFirstToken(_ seconds: Double, model: String, at nanos: Int64) {
        self.models[self.key(for: model), default: ModelActivity()].trend.record(at: nanos) { $0.timeToFirstToken.observe(seconds) }
    }

    /// A request counted in flight under `beganAs` will never end (its listener went away): no longer in flight.
    mutating func abandoned(beganAs: String) {
        self.noLongerInFlight(beganAs)
        self.removeIfEmpty(beganAs)
    }

    // By index, not `models[key]?.…`: changing a value through the optional subscript moves it through three
    // nested accessor frames, each allocated (three mallocs a request, counted by scripts/cost).
    private mutating func noLongerInFlight(_ key: String) {
        guard let index = self.models.index(forKey: key) else { return }
        self.models.values[index].inFlight -= 1
    }

    private mutating func removeIfEmpty(_ key: String) {
        guard let index = self.models.index(forKey: key), self.models.values[index].isEmpty else { return }
        self.models.remove(at: index)
    }

    /// Every model's numbers at `nanos`, by name.
    func summaries(at nanos: Int64) -> [ModelSummary] {
        self.models.sorted { $0.key < $1.key }.map { model, activity in
            let trend = activity.trend.slots(at: nanos)
            var timeToFirstToken = BucketCounts()
            for slot in trend { timeToFirstToken.add(slot.timeToFirstToken) }
            return ModelSummary(
                model: model, inFlight: activity.inFlight, lastMinute: activity.lastMinute.total(at: nanos),
                totals: activity.totals, timeToFirstToken: timeToFirstToken, trend: trend.map(\.counts)
            )
        }
    }

    /// The last requests that ended, newest first.
    var recentRequests: [FinishedRequest] { self.recent.newestFirst }
}

extension StatusBoard.ModelActivity {
    fileprivate mutating func record(_ counts: StatusBoard.Counts, at nanos: Int64) {
        self.totals.add(counts)
        self.lastMinute.record(at: nanos) { $0.add(counts) }
        self.trend.record(at: nanos) { $0.counts.add(counts) }
    }
}
