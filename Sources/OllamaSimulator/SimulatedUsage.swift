/// The numbers the simulator reports for a request, computed from its ``SimulatorBehaviour``.
///
/// Native endpoints report them in the final `done:true` object (zero fields omitted); OpenAI endpoints as
/// `usage.prompt_tokens`/`completion_tokens`; Anthropic as `message_delta.usage` (real counts; `message_start`
/// carries the byte estimate instead, see ``anthropicInputTokenEstimate(requestBody:)``); Responses as
/// `response.usage`.
public struct SimulatedUsage: Sendable, Equatable {
    public var promptTokens: Int
    public var completionTokens: Int
    public var loadDurationNanoseconds: Int64
    public var promptEvalDurationNanoseconds: Int64
    /// `completionTokens × evalDurationPerTokenNanoseconds`.
    public var evalDurationNanoseconds: Int64
    /// load + prompt eval + eval + overhead.
    public var totalDurationNanoseconds: Int64

    public init(_ behaviour: SimulatorBehaviour) {
        promptTokens = behaviour.promptTokens
        completionTokens = behaviour.completionTokens
        loadDurationNanoseconds = behaviour.loadDurationNanoseconds
        promptEvalDurationNanoseconds = behaviour.promptEvalDurationNanoseconds
        evalDurationNanoseconds = Int64(behaviour.completionTokens) * behaviour.evalDurationPerTokenNanoseconds
        totalDurationNanoseconds =
            loadDurationNanoseconds + promptEvalDurationNanoseconds + evalDurationNanoseconds
            + behaviour.overheadNanoseconds
    }

    public var totalTokens: Int { promptTokens + completionTokens }

    /// `eval_count / (eval_duration / 1e9)`, or `nil` when `eval_duration` is 0 (omitted).
    public var tokensPerSecond: Double? {
        evalDurationNanoseconds > 0 ? Double(completionTokens) / (Double(evalDurationNanoseconds) / 1e9) : nil
    }

    public var loadSeconds: Double { Double(loadDurationNanoseconds) / 1e9 }
    public var promptEvalSeconds: Double { Double(promptEvalDurationNanoseconds) / 1e9 }
    public var evalSeconds: Double { Double(evalDurationNanoseconds) / 1e9 }
    public var totalSeconds: Double { Double(totalDurationNanoseconds) / 1e9 }

    /// `/api/embed`'s `prompt_eval_count` and `/v1/embeddings`' `usage.prompt_tokens` for `inputs` inputs.
    public func embeddingPromptTokens(inputs: Int) -> Int { promptTokens * inputs }

    /// `/api/embed`'s `total_duration`: load + prompt eval + overhead (no generation).
    public var embeddingTotalDurationNanoseconds: Int64 {
        totalDurationNanoseconds - evalDurationNanoseconds
    }

    /// What Ollama puts in `message_start.usage.input_tokens` for an Anthropic request: the byte length of the
    /// system prompt, the roles and the text (and thinking) blocks, plus tool names, descriptions and schemas,
    /// divided by 4, at least 1. `nil` if the body is not a JSON object.
    public static func anthropicInputTokenEstimate(requestBody: [UInt8]) -> Int? {
        guard let request = try? GoJSONDecoder.decode(requestBody), case .object = request else { return nil }
        return AnthropicEstimate.inputTokens(request)
    }
}

/// The deterministic text the simulator generates.
public enum SimulatedText {
    /// The default token texts, cycled: "Hello", " world", "!", "Hello", …
    public static let defaultTokens = ["Hello", " world", "!"]

    /// The text of token `index` (0-based): from ``defaultTokens``, or `tokenBytes` copies of one letter
    /// (`a` for token 0, `b` for token 1, … cycling through `z`).
    public static func token(_ index: Int, tokenBytes: Int? = nil) -> String {
        if let tokenBytes {
            // Built from bytes: String(repeating: Character, …) is far too slow for megabyte responses.
            let letter = UInt8(ascii: "a") + UInt8(index % 26)
            return String(decoding: [UInt8](repeating: letter, count: tokenBytes), as: UTF8.self)
        }
        return defaultTokens[index % defaultTokens.count]
    }

    /// The whole completion: tokens 0..<count concatenated.
    public static func completion(tokens count: Int, tokenBytes: Int? = nil) -> String {
        (0..<count).map { token($0, tokenBytes: tokenBytes) }.joined()
    }

    /// The completion for a behaviour.
    public static func completion(_ behaviour: SimulatorBehaviour) -> String {
        completion(tokens: behaviour.completionTokens, tokenBytes: behaviour.tokenBytes)
    }

    /// Element `index` of `/api/generate`'s `context` array: `128000 + index % 100000`.
    public static func contextToken(_ index: Int) -> Int { 128_000 + index % 100_000 }

    /// Component `index` of every simulated embedding vector, as the JSON number text written.
    public static func embeddingComponent(_ index: Int) -> String {
        embeddingValues[index % embeddingValues.count]
    }

    /// Default embedding length (`dimensions` in the request overrides it).
    public static let embeddingLength = 8

    static let embeddingValues = ["0.1", "-0.2", "0.3", "-0.4", "0.05", "-0.06", "0.07", "-0.08"]
}

/// Messages the simulator uses for injected failures.
extension SimulatedText {
    /// The message for an injected status (`X-Sim-Status`) unless `X-Sim-Error-Message` gives one: Ollama's own
    /// text for 499 (canceled) and 503 (queue full), `model '<name>' not found` for 404, else
    /// `simulated error (status N)`.
    public static func errorMessage(status: Int, model: String) -> String {
        switch status {
        case 499: "request canceled"
        case 503: "server busy, please try again.  maximum pending requests exceeded"
        case 404: "model '\(model)' not found"
        default: "simulated error (status \(status))"
        }
    }

    /// The message of an injected mid-stream error (`X-Sim-Error-After`) unless `X-Sim-Error-Message` gives one.
    public static let midStreamErrorMessage = "an error was encountered while running the model: unexpected EOF"
}

/// Deterministic identifiers in Ollama's formats, derived from the request's sequence number
/// (``RecordedRequest/sequenceNumber``: 1-based, in order of arrival on one simulator instance).
public enum SimulatedIdentifiers {
    /// `chatcmpl-N` (N in 0...998, as `rand.Intn(999)`).
    public static func chatCompletion(_ sequence: Int) -> String { "chatcmpl-\(mix(sequence, salt: 1) % 999)" }
    /// `cmpl-N`.
    public static func completion(_ sequence: Int) -> String { "cmpl-\(mix(sequence, salt: 2) % 999)" }
    /// `resp_N` (N in 0...999998).
    public static func response(_ sequence: Int) -> String { "resp_\(mix(sequence, salt: 3) % 999_999)" }
    /// `msg_N` for the Responses API output item.
    public static func responseItem(_ sequence: Int) -> String { "msg_\(mix(sequence, salt: 4) % 999_999)" }
    /// `msg_<24 hex>` for Anthropic messages.
    public static func anthropicMessage(_ sequence: Int) -> String { "msg_" + hex24(sequence, salt: 5) }
    /// `req_<24 hex>` for Anthropic error responses.
    public static func anthropicRequest(_ sequence: Int) -> String { "req_" + hex24(sequence, salt: 6) }

    private static func hex24(_ sequence: Int, salt: UInt64) -> String {
        let high = String(mix(sequence, salt: salt), radix: 16)
        let low = String(mix(sequence, salt: salt &+ 100) >> 32, radix: 16)
        return String(repeating: "0", count: 16 - high.count) + high + String(repeating: "0", count: 8 - low.count)
            + low
    }

    /// SplitMix64 of the sequence number.
    private static func mix(_ sequence: Int, salt: UInt64) -> UInt64 {
        var z = UInt64(truncatingIfNeeded: sequence) &* 0x9E37_79B9_7F4A_7C15 &+ salt &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
