/// Reads usage from Anthropic-compatible `/v1/messages` streams.
///
/// Ollama's `message_start.message.usage.input_tokens` is an estimate (a quarter of the prompt's bytes),
/// sent before any token was evaluated; the real counts come in `message_delta.usage`. Each count is the
/// last non-zero value seen across both events, so the estimate is only ever a fallback, and a zero in a
/// later event never erases a real count. Cache token fields, when present, count as prompt tokens.
/// `message_delta` is the final usage-bearing event and completes the request.
struct AnthropicUsageReader {
    private var model: String?
    private var counts = AnthropicCounts()
    /// A `content_block_delta` arrived.
    private(set) var hasSeenContent = false
    /// `message_delta.delta.stop_reason` of the event that completed the request.
    private(set) var finishReason: FinishReason?

    mutating func event(type: UnsafeRawBufferPointer, data: UnsafeRawBufferPointer, outcome: inout UsageOutcome) {
        let name = SSEEventType.name(type, data: data)
        if !hasSeenContent, name.hasBytes("content_block_delta") {
            hasSeenContent = true
        } else if name.hasBytes("message_start") {
            readMessageStart(data)
        } else if name.hasBytes("message_delta") {
            guard let (deltaCounts, stopReason) = Self.readMessageDelta(data) else { return }
            counts.mergeLastNonZero(deltaCounts)
            let tokens = counts.tokenCounts
            if !outcome.hasCompleted, outcome.errorMessage == nil { finishReason = stopReason }
            outcome.complete(with: Usage(model: model, promptTokens: tokens.prompt, completionTokens: tokens.completion))
        } else if name.hasBytes("error") {
            outcome.fail(message: Self.readErrorMessage(data) ?? "error")
        }
    }

    private mutating func readMessageStart(_ data: UnsafeRawBufferPointer) {
        var scanner = JSONScanner(data)
        guard scanner.enterObject() else { return }
        var startModel: String?
        var startCounts: AnthropicCounts?
        let isWellFormed = scanner.forEachMember { scanner, key in
            guard key.hasBytes("message"), scanner.enterObject() else {
                scanner.skipValue()
                return
            }
            _ = scanner.forEachMember { scanner, key in
                if key.hasBytes("model") {
                    startModel = scanner.readString()
                } else if key.hasBytes("usage") {
                    startCounts = AnthropicCounts.read(&scanner)
                } else {
                    scanner.skipValue()
                }
            }
        }
        guard isWellFormed, scanner.isCleanlyFinished() else { return }
        if let startModel { model = startModel }
        if let startCounts { counts.mergeLastNonZero(startCounts) }
    }

    /// The top-level `usage` object of a `message_delta` and its `delta.stop_reason`; nil if the usage is
    /// absent, not an object, or the data is malformed.
    private static func readMessageDelta(_ data: UnsafeRawBufferPointer) -> (AnthropicCounts, FinishReason?)? {
        var scanner = JSONScanner(data)
        guard scanner.enterObject() else { return nil }
        var usage: AnthropicCounts?
        var stopReason: FinishReason?
        let isWellFormed = scanner.forEachMember { scanner, key in
            if key.hasBytes("usage") {
                usage = AnthropicCounts.read(&scanner)
            } else if key.hasBytes("delta"), scanner.peekKind() == .object {
                _ = scanner.enterObject()
                _ = scanner.forEachMember { scanner, key in
                    if key.hasBytes("stop_reason") {
                        stopReason = FinishReason.read(&scanner)
                    } else {
                        scanner.skipValue()
                    }
                }
            } else {
                scanner.skipValue()
            }
        }
        guard isWellFormed, scanner.isCleanlyFinished(), let usage else { return nil }
        return (usage, stopReason)
    }

    private static func readErrorMessage(_ data: UnsafeRawBufferPointer) -> String? {
        var scanner = JSONScanner(data)
        guard scanner.enterObject() else { return nil }
        var message: String?
        _ = scanner.forEachMember { scanner, key in
            if key.hasBytes("error"), scanner.peekKind() == .object {
                message = ErrorMessage.readMessage(inObject: &scanner)
            } else {
                scanner.skipValue()
            }
        }
        return message
    }
}

/// The token fields of an Anthropic usage object.
struct AnthropicCounts: Equatable {
    var input: Int?
    var output: Int?
    var cacheCreationInput: Int?
    var cacheReadInput: Int?

    /// Reads a usage object; nil (value consumed) when the value is not a well-formed object.
    static func read(_ scanner: inout JSONScanner) -> AnthropicCounts? {
        guard scanner.enterObject() else {
            scanner.skipValue()
            return nil
        }
        var counts = AnthropicCounts()
        let isWellFormed = scanner.forEachMember { scanner, key in
            if key.hasBytes("input_tokens") {
                counts.input = scanner.readCount().flatMap(Int.init(exactly:))
            } else if key.hasBytes("output_tokens") {
                counts.output = scanner.readCount().flatMap(Int.init(exactly:))
            } else if key.hasBytes("cache_creation_input_tokens") {
                counts.cacheCreationInput = scanner.readCount().flatMap(Int.init(exactly:))
            } else if key.hasBytes("cache_read_input_tokens") {
                counts.cacheReadInput = scanner.readCount().flatMap(Int.init(exactly:))
            } else {
                scanner.skipValue()
            }
        }
        return isWellFormed ? counts : nil
    }

    /// Keeps, for each field, the latest non-zero value (a zero only fills a field never seen before).
    mutating func mergeLastNonZero(_ newer: AnthropicCounts) {
        Self.merge(newer.input, into: &input)
        Self.merge(newer.output, into: &output)
        Self.merge(newer.cacheCreationInput, into: &cacheCreationInput)
        Self.merge(newer.cacheReadInput, into: &cacheReadInput)
    }

    private static func merge(_ newer: Int?, into current: inout Int?) {
        guard let newer else { return }
        if newer != 0 || current == nil {
            current = newer
        }
    }

    /// Prompt tokens are input plus cache tokens (nil when none of them was present).
    var tokenCounts: TokenCounts {
        var prompt: Int?
        for part in [input, cacheCreationInput, cacheReadInput] {
            guard let part else { continue }
            let (sum, overflowed) = (prompt ?? 0).addingReportingOverflow(part)
            // Absurd counts that overflow are not counts.
            prompt = overflowed ? nil : sum
            if overflowed { break }
        }
        return TokenCounts(prompt: prompt, completion: output)
    }
}
