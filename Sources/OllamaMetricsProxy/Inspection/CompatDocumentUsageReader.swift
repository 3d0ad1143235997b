/// Reads usage from a single JSON document: the non-streaming replies of every compatibility endpoint
/// (OpenAI chat, completions, embeddings and Responses; Anthropic messages), whose usage objects differ
/// only in key names.
struct CompatDocumentUsageReader {
    private enum Member: UInt8 {
        case model, usage, error, type
        /// Anthropic `stop_reason`, Responses `status`.
        case finishReason
        /// The generated content, whose first bytes are enough: OpenAI `choices`, Anthropic `content`,
        /// Responses `output`.
        case content
    }

    private enum Flavor {
        /// `usage.prompt_tokens` / `usage.completion_tokens`.
        case openAI
        /// `usage.input_tokens` / `usage.output_tokens`.
        case responses
        /// Like Responses, plus cache token fields that count as prompt tokens; errors are `"type":"error"`.
        case anthropic
    }

    private let flavor: Flavor
    private var model: String?
    private var counts: TokenCounts?
    private var errorMessage: String?
    private var isErrorType = false
    private var documentHasContent = false
    private var documentFinishReason: FinishReason?
    /// The finish reason of a well-formed document without error: Anthropic `stop_reason`, Responses
    /// `status`, OpenAI `choices[].finish_reason` (read from the first bytes of `choices` only, so not known
    /// when the generated text before it is longer than those).
    private(set) var finishReason: FinishReason?
    /// A well-formed document without error carried generated content.
    private(set) var hasSeenContent = false

    init(endpoint: InferenceEndpoint) {
        switch endpoint {
        case .responses: flavor = .responses
        case .messages: flavor = .anthropic
        default: flavor = .openAI
        }
    }

    mutating func objectDidBegin() {
        model = nil
        counts = nil
        errorMessage = nil
        isErrorType = false
        documentHasContent = false
        documentFinishReason = nil
    }

    func memberID(forKey key: UnsafeRawBufferPointer) -> UInt8? {
        let member: Member? =
            key.hasBytes("model") ? .model
            : key.hasBytes("usage") ? .usage
            : key.hasBytes("error") ? .error
            : key.hasBytes("type") ? .type
            : isFinishReasonKey(key) ? .finishReason
            : isContentKey(key) ? .content
            : nil
        return member?.rawValue
    }

    private func isContentKey(_ key: UnsafeRawBufferPointer) -> Bool {
        guard !hasSeenContent else { return false }
        switch flavor {
        case .openAI: return key.hasBytes("choices")
        case .responses: return key.hasBytes("output")
        case .anthropic: return key.hasBytes("content")
        }
    }

    private func isFinishReasonKey(_ key: UnsafeRawBufferPointer) -> Bool {
        switch flavor {
        case .openAI: return false
        case .responses: return key.hasBytes("status")
        case .anthropic: return key.hasBytes("stop_reason")
        }
    }

    func capturesPrefixOnly(_ id: UInt8) -> Bool {
        id == Member.content.rawValue
    }

    mutating func member(_ id: UInt8, value: UnsafeRawBufferPointer) -> Bool {
        guard let member = Member(rawValue: id) else { return true }
        var scanner = JSONScanner(value)
        switch member {
        case .model:
            model = scanner.readString()
        case .usage:
            switch flavor {
            case .openAI: counts = TokenCounts.read(&scanner, prompt: "prompt_tokens", completion: "completion_tokens")
            case .responses: counts = TokenCounts.read(&scanner, prompt: "input_tokens", completion: "output_tokens")
            case .anthropic: counts = AnthropicCounts.read(&scanner)?.tokenCounts
            }
        case .error:
            errorMessage = ErrorMessage.read(&scanner)
        case .type:
            isErrorType = scanner.readRawString().map { scanner.string($0) == "error" } ?? false
        case .finishReason:
            documentFinishReason = FinishReason.read(&scanner)
        case .content:
            // Only the value's first bytes: it may be cut short.
            if flavor == .openAI {
                var probe = scanner
                documentHasContent = ContentProbe.openAIChoicesHaveContent(&probe)
                documentFinishReason = FinishReason.readFromChoices(&scanner)
            } else {
                documentHasContent = ContentProbe.nextValueIsNonEmpty(&scanner)
            }
            return true
        }
        return scanner.isCleanlyFinished()
    }

    mutating func objectDidEnd(_ outcome: inout UsageOutcome) {
        if errorMessage != nil || (flavor == .anthropic && isErrorType) {
            outcome.fail(message: errorMessage ?? "error")
            return
        }
        if documentHasContent { hasSeenContent = true }
        if !outcome.hasCompleted { finishReason = documentFinishReason }
        outcome.complete(with: Usage(model: model, promptTokens: counts?.prompt, completionTokens: counts?.completion))
    }
}
