/// Why generation stopped, as the response said it (`done_reason`, `finish_reason`, `stop_reason`, a
/// Responses `status`), folded into one closed vocabulary so that the label stays bounded: the
/// `finish_reason` label of `ollama_request_finish_reasons_total`.
public enum FinishReason: String, Sendable, CaseIterable {
    /// The model ended its answer: native and OpenAI `stop`, Anthropic `end_turn`/`stop_sequence`,
    /// Responses `completed`.
    case stop
    /// The token limit cut it: `length`, Anthropic `max_tokens`, Responses `incomplete`.
    case length
    /// The model called tools: OpenAI `tool_calls`/`function_call`, Anthropic `tool_use`.
    case toolCalls = "tool_calls"
    /// OpenAI `content_filter`, Anthropic `refusal`.
    case contentFilter = "content_filter"
    /// A native load request (empty prompt) loaded the model.
    case load
    /// A native request with `keep_alive: 0` unloaded the model.
    case unload
    /// Any other value.
    case other

    /// The reason a response's raw string (the bytes between its quotes) stands for.
    init(rawBytes value: UnsafeRawBufferPointer) {
        switch value.count {
        case 4:
            self = value.hasBytes("stop") ? .stop : value.hasBytes("load") ? .load : .other
        case 6:
            self = value.hasBytes("length") ? .length : value.hasBytes("unload") ? .unload : .other
        case 7:
            self = value.hasBytes("refusal") ? .contentFilter : .other
        case 8:
            self = value.hasBytes("end_turn") ? .stop : value.hasBytes("tool_use") ? .toolCalls : .other
        case 9:
            self = value.hasBytes("completed") ? .stop : .other
        case 10:
            self = value.hasBytes("max_tokens") || value.hasBytes("incomplete") ? .length
                : value.hasBytes("tool_calls") ? .toolCalls : .other
        case 13:
            self = value.hasBytes("function_call") ? .toolCalls : value.hasBytes("stop_sequence") ? .stop : .other
        case 14:
            self = value.hasBytes("content_filter") ? .contentFilter : .other
        default:
            self = .other
        }
    }

    /// Reads a string value at the scanner as a reason; nil (value consumed) when it is not a string, e.g.
    /// the `null` of every OpenAI chunk before the last.
    static func read(_ scanner: inout JSONScanner) -> FinishReason? {
        guard let raw = scanner.readRawString() else { return nil }
        // The vocabulary has no escapes: an escaped value is some other reason.
        guard !raw.hasEscapes else { return .other }
        return FinishReason(rawBytes: UnsafeRawBufferPointer(rebasing: scanner.bytes[raw.contents]))
    }

    /// The first `finish_reason` string in an OpenAI `choices` array at the scanner (consumed). Reads as
    /// far as the bytes go: a value cut short still gives a reason that came before the cut.
    static func readFromChoices(_ scanner: inout JSONScanner) -> FinishReason? {
        var reason: FinishReason?
        _ = scanner.forEachElement { scanner in
            guard reason == nil, scanner.enterObject() else {
                scanner.skipValue()
                return
            }
            _ = scanner.forEachMember { scanner, key in
                if reason == nil, key.hasBytes("finish_reason") {
                    reason = FinishReason.read(&scanner)
                } else {
                    scanner.skipValue()
                }
            }
        }
        return reason
    }
}
