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
    /// The last `finish_reason` string a chunk's choices carried (Ollama sends it on the chunk after the
    /// last content, before the usage-only chunk).
    private(set) var finishReason: FinishReason?

    /// Per-event work for chunks without usage, error or finish reason is one pass looking for those keys
    /// (plus, until the first content arrived, one looking for content).
    mutating func event(data: UnsafeRawBufferPointer, outcome: inout UsageOutcome) -> SSEEventKind {
        if !hasSeenContent, ContentProbe.openAIChunkHasContent(data) {
            hasSeenContent = true
        }
        let keys = ByteScan.chunkKeys(data)
        if keys.contains(.finishReason), !outcome.hasCompleted, let reason = Self.readFinishReason(data) {
            finishReason = reason
        }
        guard keys.contains(.usageOrError) else { return .ordinary }
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
    /// The first `finish_reason` string in a chunk's `choices`.
    static func readFinishReason(_ data: UnsafeRawBufferPointer) -> FinishReason? {
        var scanner = JSONScanner(data)
        guard scanner.enterObject() else { return nil }
        var reason: FinishReason?
        _ = scanner.forEachMember { scanner, key in
            if reason == nil, key.hasBytes("choices") {
                reason = FinishReason.readFromChoices(&scanner)
            } else {
                scanner.skipValue()
            }
        }
        return scanner.failed ? nil : reason
    }

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
