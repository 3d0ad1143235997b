import NIOCore

/// What Ollama's runner hands the HTTP layer, before an API dialect shapes it.
enum GenerationEvent {
    /// A completion token (index 0-based).
    case token(index: Int, text: String)
    /// The final `done:true` response carrying the metrics.
    case done
    /// An error after output started.
    case failure(message: String)
}

/// How a generation is interrupted (`X-Sim-Error-After`, `X-Sim-Drop-After`, `X-Sim-Reset-After`).
enum Interruption {
    case error(message: String)
    /// The connection is closed (FIN).
    case drop
    /// The connection is reset (RST).
    case reset
}

/// One request's generation, resolved from its behaviour.
struct GenerationPlan {
    let model: String
    let behaviour: SimulatorBehaviour
    let usage: SimulatedUsage
    /// The interruption and the number of tokens sent before it (at most the token count: an interruption at the
    /// token count replaces the final event).
    let interruption: (afterTokens: Int, kind: Interruption)?

    init(model: String, behaviour: SimulatorBehaviour) {
        self.model = model
        self.behaviour = behaviour
        self.usage = behaviour.usage
        let tokens = behaviour.completionTokens
        // The earliest wins; at the same token the first listed (a reset, then a drop, then an error).
        let candidates: [(afterTokens: Int?, kind: Interruption)] = [
            (behaviour.resetAfterTokens, .reset),
            (behaviour.dropAfterTokens, .drop),
            (behaviour.errorAfterTokens, .error(message: behaviour.midStreamErrorMessage)),
        ]
        interruption = candidates
            .compactMap { candidate in candidate.afterTokens.map { (min($0, tokens), candidate.kind) } }
            .min { $0.0 < $1.0 }
    }

    var tokenCount: Int { behaviour.completionTokens }

    func tokenText(_ index: Int) -> String { SimulatedText.token(index, tokenBytes: behaviour.tokenBytes) }

    var fullText: String { SimulatedText.completion(behaviour) }

    /// A non-streaming answer: wait as long as generating the tokens takes (the header delay is applied before, by
    /// the router), then the complete body, the error response, or a dropped connection. The body is built after
    /// the wait, so its timestamps are those of the end of the generation.
    func nonStreamingResponse(
        success: @escaping () -> [ResponseStep],
        failure: @escaping (String) -> [ResponseStep]
    ) -> any ResponseProducer {
        let tokensGenerated = interruption?.afterTokens ?? tokenCount
        var wait: [ResponseStep] = []
        if tokensGenerated > 1 && behaviour.tokenDelay > .zero {
            wait.append(.wait((behaviour.tokenDelay * (tokensGenerated - 1)).timeAmount))
        }
        let interruption = self.interruption
        return DeferredSteps(prelude: wait) {
            switch interruption?.kind {
            case nil: success()
            case .error(let message): failure(message)
            case .drop: [.drop]
            case .reset: [.reset]
            }
        }
    }
}

/// Steps built only once the prelude has run (so that timestamps are taken at the right moment).
struct DeferredSteps: ResponseProducer {
    private var prelude: [ResponseStep]
    private var build: (() -> [ResponseStep])?

    init(prelude: [ResponseStep], build: @escaping () -> [ResponseStep]) {
        self.prelude = prelude.reversed()
        self.build = build
    }

    mutating func nextStep(clock: SimulatorClock) -> ResponseStep? {
        if prelude.isEmpty, let build {
            self.build = nil
            prelude = build().reversed()
        }
        return prelude.popLast()
    }
}

/// An API dialect's rendering of the runner's events.
protocol InferenceDialect {
    /// Headers of the streaming response (besides `Date` and framing).
    var streamHeaders: [(String, String)] { get }
    /// The events Ollama writes for one runner event, in order. Each is flushed on its own (one HTTP chunk)
    /// unless the behaviour asks for Go's coalescing, which writes one runner event's output as one chunk.
    mutating func events(for event: GenerationEvent, at time: SimulatedInstant) -> [[UInt8]]
    /// Whether Ollama's writer flushes after every event (Anthropic, Responses) rather than once per runner event
    /// (native, OpenAI chat and completions); the former is never coalesced.
    var flushesEachEvent: Bool { get }
}

extension InferenceDialect {
    var flushesEachEvent: Bool { false }
}

/// A streaming inference response: headers with the first event, then one event per token after the token delay,
/// the final events, and the chunked terminator; or the interruption the behaviour asks for.
struct InferenceStream<Dialect: InferenceDialect>: GatedProducer {
    private var dialect: Dialect
    private let plan: GenerationPlan
    /// Index of the next runner event: tokens are 0..<tokenCount, the final event is tokenCount.
    private var nextIndex = 0
    private var pending: [ResponseStep] = []  // reversed
    private var headSent = false
    private var finished = false
    private var gatePassed = false
    private var delayTaken = false

    init(dialect: Dialect, plan: GenerationPlan) {
        self.dialect = dialect
        self.plan = plan
    }

    mutating func nextStep(clock: SimulatorClock) -> ResponseStep? {
        if pending.isEmpty && !finished { produceNext(clock: clock) }
        return pending.popLast()
    }

    private mutating func produceNext(clock: SimulatorClock) {
        let index = nextIndex
        let behaviour = plan.behaviour
        // A gate after 0 tokens is held by the router before the head; later ones here (at most at the final event).
        if let gate = behaviour.gate, !gatePassed, behaviour.gateAfterTokens > 0,
            min(behaviour.gateAfterTokens, plan.tokenCount) == index
        {
            gatePassed = true
            pending = [.gate(gate)]
            return
        }

        // Tokens after the first come one token delay apart; the final event follows the last token at once. The
        // wait is its own step so that the event's timestamps are taken after it.
        if index > 0 && index < plan.tokenCount && behaviour.tokenDelay > .zero && !delayTaken {
            delayTaken = true
            pending = [.wait(behaviour.tokenDelay.timeAmount)]
            return
        }
        delayTaken = false

        var steps: [ResponseStep] = []
        let interruptsHere = plan.interruption?.afterTokens == index

        let event: GenerationEvent
        if interruptsHere, let interruption = plan.interruption {
            switch interruption.kind {
            case .drop:
                finished = true
                pending = [.drop]
                return
            case .reset:
                finished = true
                pending = [.reset]
                return
            case .error(let message):
                event = .failure(message: message)
            }
        } else if index < plan.tokenCount {
            event = .token(index: index, text: plan.tokenText(index))
        } else {
            event = .done
        }

        let events = dialect.events(for: event, at: clock.now())
        let isLast: Bool
        if case .token = event { isLast = false } else { isLast = true }
        if !headSent && (!events.isEmpty || isLast) {
            headSent = true
            steps.append(.head(ResponseHead(status: 200, headers: dialect.streamHeaders, framing: .chunked)))
        }
        if behaviour.coalescesEventsLikeGo && !dialect.flushesEachEvent && events.count > 1 {
            steps.append(.chunk(Array(events.joined())))
        } else {
            steps += events.map(ResponseStep.chunk)
        }
        if isLast {
            steps.append(.end)
            finished = true
        }
        nextIndex += 1
        pending = steps.reversed()
    }
}

/// The native `Metrics` fields, zero ones omitted (Go `omitempty`), in declaration order.
func nativeMetricsMembers(_ usage: SimulatedUsage) -> [JSONMember] {
    let fields: [(String, Int64)] = [
        ("total_duration", usage.totalDurationNanoseconds),
        ("load_duration", usage.loadDurationNanoseconds),
        ("prompt_eval_count", Int64(usage.promptTokens)),
        ("prompt_eval_duration", usage.promptEvalDurationNanoseconds),
        ("eval_count", Int64(usage.completionTokens)),
        ("eval_duration", usage.evalDurationNanoseconds),
    ]
    return fields.filter { $0.1 != 0 }.map { JSONMember(key: $0.0, value: .int($0.1)) }
}

extension JSONValue {
    /// This object with `members` appended.
    func appending(_ members: [JSONMember]) -> JSONValue {
        guard case .object(let existing) = self else { return self }
        return .object(existing + members)
    }
}
