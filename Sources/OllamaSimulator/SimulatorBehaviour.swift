/// How the simulator answers a request: token counts, timings, injected failures.
///
/// Every value has a request header that overrides it for one request (see ``SimulatorControl``), so a test can
/// steer a request through the proxy or through an official SDK with extra headers. The simulator instance holds a
/// mutable default (``OllamaSimulator/defaults``) that each request starts from.
///
/// Everything is deterministic: ``usage`` and ``SimulatedText`` compute exactly what will be reported.
public struct SimulatorBehaviour: Sendable, Equatable {
    /// Completion tokens generated (`eval_count`). Header `X-Sim-Tokens`.
    public var completionTokens: Int = 3
    /// Prompt tokens reported (`prompt_eval_count`). Header `X-Sim-Prompt-Tokens`.
    public var promptTokens: Int = 7
    /// When set, every token's text is this many bytes (letters `a`…`z` cycling per token) instead of the
    /// `"Hello"`, `" world"`, `"!"` cycle. Header `X-Sim-Token-Bytes`.
    public var tokenBytes: Int? = nil
    /// Delay between two tokens. Header `X-Sim-Token-Delay-Ms`.
    public var tokenDelay: Duration = .zero
    /// Delay before the first event; no status line or header is sent before it ends (as Ollama while loading a
    /// model or evaluating the prompt). Applies to every endpoint. Header `X-Sim-Header-Delay-Ms`.
    public var headerDelay: Duration = .zero
    /// Delay between two `/api/pull` progress lines. Header `X-Sim-Pull-Delay-Ms`.
    public var pullStepDelay: Duration = .milliseconds(10)
    /// Answer with this status and the dialect's error body, before any output. Header `X-Sim-Status`.
    public var forcedStatus: Int? = nil
    /// The message used for injected errors (forced status and mid-stream errors). Header `X-Sim-Error-Message`.
    public var errorMessage: String? = nil
    /// After this many tokens, fail in the dialect's mid-stream form and end the response normally (streaming) or
    /// answer 500 (non-streaming). Values ≥ the token count fail in place of the final event. Header
    /// `X-Sim-Error-After`.
    public var errorAfterTokens: Int? = nil
    /// After this many tokens, close the TCP connection without ending the response (no chunked terminator; a
    /// non-streaming request gets no response at all). Header `X-Sim-Drop-After`.
    public var dropAfterTokens: Int? = nil
    /// After this many tokens, reset the TCP connection (RST, as a crashed or killed Ollama leaves it) without
    /// ending the response; a non-streaming request gets a reset and no response. When several interruptions
    /// are set the earliest wins; at the same token a reset wins over a drop, and both over an error. Header
    /// `X-Sim-Reset-After`.
    public var resetAfterTokens: Int? = nil
    /// Send only this many bytes of the response's status line and headers (never all of them: at most all but
    /// the last byte), then reset the TCP connection (RST). Applies to every endpoint, after the gate and the
    /// header delay. Header `X-Sim-Reset-Mid-Head`.
    public var resetMidHeadBytes: Int? = nil
    /// Send the status line and headers on their own, then nothing for this long before the body (a stalled
    /// Ollama; the response then goes on as usual). Applies to every endpoint. Header
    /// `X-Sim-Stall-After-Head-Ms`.
    public var stallAfterHead: Duration = .zero
    /// Number of ints in `/api/generate`'s final `context` array; `nil` means prompt + completion tokens. Large
    /// values make a final line of megabytes. Header `X-Sim-Context-Size`.
    public var contextSize: Int? = nil
    /// `load_duration`; 0 omits the field (Go `omitempty`). Header `X-Sim-Load-Duration-Ns`.
    public var loadDurationNanoseconds: Int64 = 250_000_000
    /// `prompt_eval_duration`; 0 omits the field. Header `X-Sim-Prompt-Eval-Duration-Ns`.
    public var promptEvalDurationNanoseconds: Int64 = 50_000_000
    /// `eval_duration` per completion token. Header `X-Sim-Token-Duration-Ns`.
    public var evalDurationPerTokenNanoseconds: Int64 = 20_000_000
    /// Added to the sum of the three durations to make `total_duration`.
    public var overheadNanoseconds: Int64 = 10_000_000
    /// Hold the response at the gate of this name until ``OllamaSimulator/openGate(_:)``. Header `X-Sim-Gate`.
    public var gate: String? = nil
    /// Where the gate holds the response: after this many tokens (0 = before the first byte, headers included).
    /// Non-streaming responses are always held before their first byte. Header `X-Sim-Gate-After`.
    public var gateAfterTokens: Int = 0
    /// Write the events a single Ollama flush produces in one HTTP chunk, as Go really does for OpenAI chat and
    /// completions (finish, usage and `[DONE]` arrive together); Anthropic and Responses flush every event anyway.
    /// Off by default: one HTTP chunk per event. Header `X-Sim-Go-Chunking: 1`.
    public var coalescesEventsLikeGo: Bool = false

    public init() {}

    /// No delays anywhere: for benchmarks.
    public static var benchmark: SimulatorBehaviour {
        var behaviour = SimulatorBehaviour()
        behaviour.pullStepDelay = .zero
        return behaviour
    }

    /// The usage every endpoint reports for a request with this behaviour.
    public var usage: SimulatedUsage { SimulatedUsage(self) }

    /// This behaviour with the `X-Sim-*` control headers applied (names are case-insensitive; others are ignored).
    public func applying(headers: some Sequence<(String, String)>) throws(SimulatorControlError) -> SimulatorBehaviour {
        var behaviour = self
        for (name, rawValue) in headers {
            let value = rawValue.trimmingASCIISpaces()
            guard let control = SimulatorControl.byLowercasedName[name.lowercased()] else { continue }
            try control.apply(value, to: &behaviour)
        }
        return behaviour
    }

    /// This behaviour with the `X-Sim-*` control headers of a dictionary applied.
    public func applying(headers: [String: String]) throws(SimulatorControlError) -> SimulatorBehaviour {
        try applying(headers: headers.map { ($0.key, $0.value) })
    }
}

/// A malformed `X-Sim-*` header. The simulator answers 400 with this message rather than silently ignoring it.
public struct SimulatorControlError: Error, Sendable, Equatable, CustomStringConvertible {
    public let header: String
    public let value: String
    public var description: String { "invalid \(header) header: '\(value)'" }
}

/// The request headers that steer the simulator, one per ``SimulatorBehaviour`` field.
public enum SimulatorControl: String, CaseIterable, Sendable {
    case tokens = "X-Sim-Tokens"
    case promptTokens = "X-Sim-Prompt-Tokens"
    case tokenBytes = "X-Sim-Token-Bytes"
    case tokenDelayMilliseconds = "X-Sim-Token-Delay-Ms"
    case headerDelayMilliseconds = "X-Sim-Header-Delay-Ms"
    case pullDelayMilliseconds = "X-Sim-Pull-Delay-Ms"
    case status = "X-Sim-Status"
    case errorMessage = "X-Sim-Error-Message"
    case errorAfter = "X-Sim-Error-After"
    case dropAfter = "X-Sim-Drop-After"
    case resetAfter = "X-Sim-Reset-After"
    case resetMidHead = "X-Sim-Reset-Mid-Head"
    case stallAfterHeadMilliseconds = "X-Sim-Stall-After-Head-Ms"
    case contextSize = "X-Sim-Context-Size"
    case loadDurationNanoseconds = "X-Sim-Load-Duration-Ns"
    case promptEvalDurationNanoseconds = "X-Sim-Prompt-Eval-Duration-Ns"
    case tokenDurationNanoseconds = "X-Sim-Token-Duration-Ns"
    case gate = "X-Sim-Gate"
    case gateAfter = "X-Sim-Gate-After"
    case goChunking = "X-Sim-Go-Chunking"

    /// The header name, as written here (matching is case-insensitive).
    public var headerName: String { rawValue }

    fileprivate static let byLowercasedName: [String: SimulatorControl] = Dictionary(
        uniqueKeysWithValues: allCases.map { ($0.rawValue.lowercased(), $0) }
    )

    fileprivate func apply(_ value: String, to behaviour: inout SimulatorBehaviour) throws(SimulatorControlError) {
        let invalid = SimulatorControlError(header: rawValue, value: value)
        func count() throws(SimulatorControlError) -> Int {
            guard let number = Int(value), number >= 0 else { throw invalid }
            return number
        }
        func nanoseconds() throws(SimulatorControlError) -> Int64 {
            guard let number = Int64(value), number >= 0 else { throw invalid }
            return number
        }
        switch self {
        case .tokens: behaviour.completionTokens = try count()
        case .promptTokens: behaviour.promptTokens = try count()
        case .tokenBytes:
            let bytes = try count()
            guard bytes > 0 else { throw invalid }
            behaviour.tokenBytes = bytes
        case .tokenDelayMilliseconds: behaviour.tokenDelay = .milliseconds(try count())
        case .headerDelayMilliseconds: behaviour.headerDelay = .milliseconds(try count())
        case .pullDelayMilliseconds: behaviour.pullStepDelay = .milliseconds(try count())
        case .status:
            guard let status = Int(value), (100...999).contains(status) else { throw invalid }
            behaviour.forcedStatus = status
        case .errorMessage: behaviour.errorMessage = value
        case .errorAfter: behaviour.errorAfterTokens = try count()
        case .dropAfter: behaviour.dropAfterTokens = try count()
        case .resetAfter: behaviour.resetAfterTokens = try count()
        case .resetMidHead: behaviour.resetMidHeadBytes = try count()
        case .stallAfterHeadMilliseconds: behaviour.stallAfterHead = .milliseconds(try count())
        case .contextSize: behaviour.contextSize = try count()
        case .loadDurationNanoseconds: behaviour.loadDurationNanoseconds = try nanoseconds()
        case .promptEvalDurationNanoseconds: behaviour.promptEvalDurationNanoseconds = try nanoseconds()
        case .tokenDurationNanoseconds: behaviour.evalDurationPerTokenNanoseconds = try nanoseconds()
        case .gate:
            guard !value.isEmpty else { throw invalid }
            behaviour.gate = value
        case .gateAfter: behaviour.gateAfterTokens = try count()
        case .goChunking:
            switch value.lowercased() {
            case "1", "true", "yes", "on": behaviour.coalescesEventsLikeGo = true
            case "0", "false", "no", "off": behaviour.coalescesEventsLikeGo = false
            default: throw invalid
            }
        }
    }
}

extension String {
    func trimmingASCIISpaces() -> String {
        var scalars = Substring(self)
        while let first = scalars.first, first == " " || first == "\t" { scalars.removeFirst() }
        while let last = scalars.last, last == " " || last == "\t" { scalars.removeLast() }
        return String(scalars)
    }
}
