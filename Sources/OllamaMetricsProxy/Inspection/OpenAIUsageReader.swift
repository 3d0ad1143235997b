/// Reads usage from the OpenAI-compatible `/v1/chat/completions`, `/v1/completions` and `/v1/embeddings`.
///
/// Streams carry usage only when `stream_options.include_usage` is set, in a final usage-only chunk
/// (`"choices":[]` with a `usage` object). `/v1/completions` additionally puts a zero `usage` on every
/// chunk that has choices: only the usage-only chunk counts, so "usage present" alone is never enough, and
/// when the proxy asked for usage on the client's behalf that member is removed from the chunks.
/// Non-streaming replies carry `usage` in the single document.
struct OpenAIUsageReader {
    /// A chunk carried a non-empty `text`, or a delta with `content`, `reasoning` or `tool_calls`.
    private(set) var hasSeenContent = false

    /// Per-event work for chunks without usage or error is one pass looking for those keys (plus, until
    /// the first content arrived, one looking for content).
    mutating func event(data: UnsafeRawBufferPointer, outcome: inout UsageOutcome) -> SSEEventKind {
        if !hasSeenContent, ContentProbe.openAIChunkHasContent(data) {
            hasSeenContent = true
        }
        guard ByteScan.containsUsageOrErrorKey(data) else { return .ordinary }
        var scanner = JSONScanner(data)
        guard scanner.enterObject() else { return .ordinary }
        var model: JSONScanner.RawString?
        var hasChoices = false
        var counts: TokenCounts?
        var usageMembers = 0
        /// The `usage` member's bytes with one adjacent comma: what removing the member takes out.
        var usageMember: Range<Int>?
        var usageIsOpen = false
        var usageIsZero = false
        var errorMessage: String?
        var isFirst = true
        while true {
            let afterPreviousValue = scanner.position
            let isFirstMember = isFirst
            guard let key = scanner.nextKey(isFirst: &isFirst) else { break }
            let keyStart = scanner.offset(of: key) - 1
            if usageIsOpen {
                // `usage` was the first member: it goes with the comma after it.
                usageMember = usageMember!.lowerBound..<keyStart
                usageIsOpen = false
            }
            if key.hasBytes("model") {
                model = scanner.readRawString()
            } else if key.hasBytes("choices") {
                // `[]`, `null` or absent: no choices. Anything else: a chunk a client expects to see.
                if scanner.peekKind() == .null {
                    scanner.skipValue()
                    hasChoices = false
                } else {
                    hasChoices = !scanner.readIsEmptyArray()
                }
            } else if key.hasBytes("usage") {
                usageMembers += 1
                scanner.skipWhitespace()
                let valueStart = scanner.position
                counts = TokenCounts.read(&scanner, prompt: "prompt_tokens", completion: "completion_tokens")
                usageIsZero = Self.isZeroUsage(UnsafeRawBufferPointer(rebasing: data[valueStart..<scanner.position]))
                if isFirstMember {
                    usageMember = keyStart..<scanner.position
                    usageIsOpen = true
                } else {
                    usageMember = afterPreviousValue..<scanner.position
                }
            } else if key.hasBytes("error") {
                errorMessage = ErrorMessage.read(&scanner)
            } else {
                scanner.skipValue()
            }
            if scanner.failed { break }
        }
        guard !scanner.failed, scanner.isCleanlyFinished() else { return .ordinary }
        if let errorMessage {
            outcome.fail(message: errorMessage)
            return .ordinary
        }
        if hasChoices {
            // A zero `usage` on a chunk with choices is `/v1/completions`' placeholder, there only because
            // `include_usage` was set: a client that did not ask for usage would not have seen it.
            guard usageMembers == 1, usageIsZero, let usageMember else { return .ordinary }
            return .ordinaryWithout(usageMember)
        }
        guard let counts else { return .ordinary }
        outcome.complete(with: Usage(
            model: model.flatMap { scanner.string($0) },
            promptTokens: counts.prompt,
            completionTokens: counts.completion
        ))
        return .usageOnly
    }
}

extension OpenAIUsageReader {
    /// Whether `value` is a usage object whose counts are all `0` (nested objects included), as Ollama's
    /// `&openai.Usage{}` encodes: `{"prompt_tokens":0,"completion_tokens":0,"total_tokens":0}`.
    static func isZeroUsage(_ value: UnsafeRawBufferPointer) -> Bool {
        var scanner = JSONScanner(value)
        return isZeroObject(&scanner, depth: 0) && scanner.isCleanlyFinished()
    }

    private static func isZeroObject(_ scanner: inout JSONScanner, depth: Int) -> Bool {
        guard depth < 4, scanner.enterObject() else { return false }
        var allZero = true
        let isWellFormed = scanner.forEachMember { scanner, _ in
            guard allZero else {
                scanner.skipValue()
                return
            }
            if scanner.peekKind() == .object {
                allZero = isZeroObject(&scanner, depth: depth + 1)
            } else {
                allZero = scanner.readCount() == 0
            }
        }
        return isWellFormed && allZero
    }
}

/// Reads usage from a single JSON document: the non-streaming replies of every compatibility endpoint
/// (OpenAI chat, completions, embeddings and Responses; Anthropic messages), whose usage objects differ
/// only in key names.
struct CompatDocumentUsageReader {
    private enum Member: UInt8 {
        case model, usage, error, type
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
    }

    func memberID(forKey key: UnsafeRawBufferPointer) -> UInt8? {
        let member: Member? =
            key.hasBytes("model") ? .model
            : key.hasBytes("usage") ? .usage
            : key.hasBytes("error") ? .error
            : key.hasBytes("type") ? .type
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
        case .content:
            // Only the value's first bytes: it may be cut short.
            documentHasContent = flavor == .openAI
                ? ContentProbe.openAIChoicesHaveContent(&scanner)
                : ContentProbe.nextValueIsNonEmpty(&scanner)
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
        outcome.complete(with: Usage(model: model, promptTokens: counts?.prompt, completionTokens: counts?.completion))
    }
}

/// Prompt and completion token counts of a usage object.
struct TokenCounts: Equatable {
    var prompt: Int?
    var completion: Int?

    /// Reads a usage object's two counts; nil (value consumed) when the value is not an object, e.g. `null`.
    static func read(_ scanner: inout JSONScanner, prompt promptKey: StaticString, completion completionKey: StaticString) -> TokenCounts? {
        guard scanner.enterObject() else {
            scanner.skipValue()
            return nil
        }
        var counts = TokenCounts()
        let isWellFormed = scanner.forEachMember { scanner, key in
            if key.hasBytes(promptKey) {
                counts.prompt = scanner.readCount().flatMap(Int.init(exactly:))
            } else if key.hasBytes(completionKey) {
                counts.completion = scanner.readCount().flatMap(Int.init(exactly:))
            } else {
                scanner.skipValue()
            }
        }
        return isWellFormed ? counts : nil
    }
}
