/// Reads usage from `/v1/responses` streams: the terminal `response.completed` (or
/// `response.incomplete`, cut short by a token limit after generating tokens) event carries the whole
/// response object with `usage.input_tokens`/`output_tokens` and `model`; `response.failed` and `error`
/// events report failures. Every other event is dismissed by its type without parsing.
struct ResponsesUsageReader {
    /// A `response.…delta` event (output text, reasoning, function call arguments) arrived.
    private(set) var hasSeenContent = false
    /// The `status` of the response that completed the request (`completed`, or `incomplete` when a token
    /// limit cut it).
    private(set) var finishReason: FinishReason?

    mutating func event(type: UnsafeRawBufferPointer, data: UnsafeRawBufferPointer, outcome: inout UsageOutcome) {
        let name = SSEEventType.name(type, data: data)
        if !hasSeenContent, Self.isOutputDelta(name) {
            hasSeenContent = true
            return
        }
        if name.hasBytes("response.completed") || name.hasBytes("response.incomplete") {
            guard let response = Self.readResponse(data) else { return }
            if let errorMessage = response.errorMessage {
                outcome.fail(message: errorMessage)
            } else {
                if !outcome.hasCompleted, outcome.errorMessage == nil { finishReason = response.status }
                outcome.complete(with: Usage(
                    model: response.model,
                    promptTokens: response.counts?.prompt,
                    completionTokens: response.counts?.completion
                ))
            }
        } else if name.hasBytes("response.failed") {
            let response = Self.readResponse(data)
            outcome.fail(message: response?.errorMessage ?? "response.failed")
        } else if name.hasBytes("error") {
            outcome.fail(message: Self.readErrorEventMessage(data) ?? "error")
        }
    }

    /// `response.<something>.delta`.
    private static func isOutputDelta(_ name: UnsafeRawBufferPointer) -> Bool {
        let prefix: StaticString = "response."
        let suffix: StaticString = ".delta"
        let prefixCount = prefix.utf8CodeUnitCount
        let suffixCount = suffix.utf8CodeUnitCount
        guard name.count > prefixCount + suffixCount else { return false }
        return UnsafeRawBufferPointer(rebasing: name[..<prefixCount]).hasBytes(prefix)
            && UnsafeRawBufferPointer(rebasing: name[(name.count - suffixCount)...]).hasBytes(suffix)
    }

    private struct ResponseObject {
        var model: String?
        var counts: TokenCounts?
        var errorMessage: String?
        var status: FinishReason?
    }

    /// The `response` member of an event's data; nil if the data is malformed.
    private static func readResponse(_ data: UnsafeRawBufferPointer) -> ResponseObject? {
        var scanner = JSONScanner(data)
        guard scanner.enterObject() else { return nil }
        var response = ResponseObject()
        let isWellFormed = scanner.forEachMember { scanner, key in
            guard key.hasBytes("response"), scanner.enterObject() else {
                scanner.skipValue()
                return
            }
            _ = scanner.forEachMember { scanner, key in
                if key.hasBytes("model") {
                    response.model = scanner.readString()
                } else if key.hasBytes("usage") {
                    response.counts = TokenCounts.read(&scanner, prompt: "input_tokens", completion: "output_tokens")
                } else if key.hasBytes("error") {
                    response.errorMessage = ErrorMessage.read(&scanner)
                } else if key.hasBytes("status") {
                    response.status = FinishReason.read(&scanner)
                } else {
                    scanner.skipValue()
                }
            }
        }
        return isWellFormed && scanner.isCleanlyFinished() ? response : nil
    }

    /// An `error` event's message: top-level `message` (OpenAI's shape) or `error.message`.
    private static func readErrorEventMessage(_ data: UnsafeRawBufferPointer) -> String? {
        var scanner = JSONScanner(data)
        guard scanner.enterObject() else { return nil }
        var message: String?
        _ = scanner.forEachMember { scanner, key in
            if key.hasBytes("message") {
                message = scanner.readString() ?? message
            } else if key.hasBytes("error"), scanner.peekKind() == .object {
                message = ErrorMessage.readMessage(inObject: &scanner) ?? message
            } else {
                scanner.skipValue()
            }
        }
        return message
    }
}
