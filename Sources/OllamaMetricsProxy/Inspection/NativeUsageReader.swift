/// Reads usage from Ollama's native replies: NDJSON streams and single objects of `/api/generate`,
/// `/api/chat`, `/api/embed` and `/api/embeddings`.
///
/// Generate and chat finish with the object whose `"done"` is true; it carries the counts and nanosecond
/// timings, each omitted when zero. Embedding replies are a single object without `done`: any well-formed
/// one completes the request (`/api/embeddings` carries no usage at all, but the request still counts).
/// An object with a non-null `"error"` is an error reported after the 200 status.
///
/// Until content was seen, every line is read (for `hasSeenContent`) and an ordinary chunk is dismissed as
/// soon as its `"done":false` is read; after that, lines are screened (`canDismissLine`) and only a final
/// or error line is read at all. The model name is kept as raw bytes and decoded only once the final object
/// is known, so streaming allocates nothing per chunk.
struct NativeUsageReader {
    private enum Member: UInt8 {
        case model, done, error, totalDuration, loadDuration, promptEvalCount, promptEvalDuration, evalCount, evalDuration
        case doneReason
        /// Generated content, read only until the first is seen: generate's `response`, chat's `message`,
        /// and `thinking`.
        case response, message, thinking
    }

    /// Embedding endpoints: a reply is one object without `done`.
    let completesWithoutDone: Bool

    private var modelValue: [UInt8] = []
    private var isDone = false
    private var errorMessage: String?
    private var usage = Usage()
    private var doneReason: FinishReason?
    /// The `done_reason` of the final object, once it was read.
    private(set) var finishReason: FinishReason?
    /// An object carried a non-empty `response`, `thinking` or chat `message` content, thinking or tool call.
    private(set) var hasSeenContent = false

    init(endpoint: InferenceEndpoint) {
        completesWithoutDone = endpoint == .embed || endpoint == .embeddings
    }

    mutating func objectDidBegin() {
        if !modelValue.isEmpty {
            modelValue.removeAll(keepingCapacity: true)
        }
        isDone = false
        errorMessage = nil
        usage = Usage()
        doneReason = nil
    }

    func memberID(forKey key: UnsafeRawBufferPointer) -> UInt8? {
        let member: Member?
        switch key.count {
        case 4: member = key.hasBytes("done") ? .done : nil
        case 5:
            member = key.hasBytes("model") ? .model : key.hasBytes("error") ? .error : nil
        case 7: member = !hasSeenContent && key.hasBytes("message") ? .message : nil
        case 8:
            guard !hasSeenContent else { return nil }
            member = key.hasBytes("response") ? .response : key.hasBytes("thinking") ? .thinking : nil
        case 10: member = key.hasBytes("eval_count") ? .evalCount : nil
        case 11: member = key.hasBytes("done_reason") ? .doneReason : nil
        case 13: member = key.hasBytes("eval_duration") ? .evalDuration : key.hasBytes("load_duration") ? .loadDuration : nil
        case 14: member = key.hasBytes("total_duration") ? .totalDuration : nil
        case 17: member = key.hasBytes("prompt_eval_count") ? .promptEvalCount : nil
        case 20: member = key.hasBytes("prompt_eval_duration") ? .promptEvalDuration : nil
        default: member = nil
        }
        return member?.rawValue
    }

    func capturesPrefixOnly(_ id: UInt8) -> Bool {
        id >= Member.response.rawValue
    }

    mutating func member(_ id: UInt8, value: UnsafeRawBufferPointer) -> Bool {
        guard let member = Member(rawValue: id) else { return true }
        var scanner = JSONScanner(value)
        switch member {
        case .response, .thinking:
            // Only the value's first bytes: it may be cut short.
            if ContentProbe.isNonEmpty(value) { hasSeenContent = true }
            return true
        case .message:
            if ContentProbe.nativeMessageHasContent(value) { hasSeenContent = true }
            return true
        case .model:
            modelValue.removeAll(keepingCapacity: true)
            modelValue.append(contentsOf: value)
            return true
        case .done:
            isDone = scanner.readBool() == true
            // A chunk that is not the last one has nothing else we need.
            return isDone || completesWithoutDone
        case .error:
            errorMessage = ErrorMessage.read(&scanner)
        case .totalDuration:
            usage.totalDurationNanos = scanner.readCount()
        case .loadDuration:
            usage.loadDurationNanos = scanner.readCount()
        case .promptEvalDuration:
            usage.promptEvalDurationNanos = scanner.readCount()
        case .evalDuration:
            usage.evalDurationNanos = scanner.readCount()
        case .promptEvalCount:
            usage.promptTokens = scanner.readCount().flatMap(Int.init(exactly:))
        case .evalCount:
            usage.completionTokens = scanner.readCount().flatMap(Int.init(exactly:))
        case .doneReason:
            doneReason = FinishReason.read(&scanner)
        }
        // A value that is not exactly one well-formed JSON value makes the whole object unreadable.
        return scanner.isCleanlyFinished()
    }

    /// Lines are screened once content was seen (no member of an ordinary chunk is wanted any more), except
    /// on embedding endpoints, where any object completes the request.
    var screensLines: Bool { hasSeenContent && !completesWithoutDone }

    /// Whether reading a complete line would change nothing: it can neither complete the request (a `done`
    /// member that is true) nor report an error (an `error` member). Answered from the line's last bytes for
    /// Ollama's ordinary chunks, else from one pass over its quotes; false when in doubt.
    func canDismissLine(_ line: UnsafeRawBufferPointer) -> Bool {
        Self.endsAsOrdinaryChunk(line) || Self.hasNeitherTrueDoneNorError(line)
    }

    /// The line ends in `,"done":false}` (then only blanks), as every chunk but the last does. The quote after
    /// the comma is not escaped, so it either opens the object's last key, `done`, whose `false` makes the
    /// reader abandon the line, or it closes a string, after which `done"` leaves the line unreadable (a
    /// letter after a key or a value, or a string left open at the line's end). Either way no object ends.
    static func endsAsOrdinaryChunk(_ line: UnsafeRawBufferPointer) -> Bool {
        var end = line.count
        while end > 0, JSONBytes.isWhitespace(line[end &- 1]) {
            end &-= 1
        }
        guard end >= 14 else { return false }
        return ByteScan.hasPattern(ByteScan.Pattern.commaDoneKeyColon, count: 8, in: line, at: end &- 14)
            && ByteScan.hasPattern(ByteScan.Pattern.quoteColonFalseBrace, count: 8, in: line, at: end &- 8)
    }

    /// No `"error"` anywhere, and every `"done"` is followed at once by `:f`. A member's key lies in the line
    /// as its raw bytes between quotes, so the object has no `error` member, and a `done` member, if any, is
    /// not true: reading it ends the object unfinished, or the object ends with nothing to report.
    static func hasNeitherTrueDoneNorError(_ line: UnsafeRawBufferPointer) -> Bool {
        var dismissible = true
        ByteScan.forEachQuotePair(in: line, near: 5, far: 6) { index, distance in
            if distance == 5 {
                dismissible = !ByteScan.hasPattern(ByteScan.Pattern.doneKey, count: 6, in: line, at: index)
                    || ByteScan.hasPattern(ByteScan.Pattern.doneKeyThenF, count: 8, in: line, at: index)
            } else {
                dismissible = !ByteScan.hasPattern(ByteScan.Pattern.errorKey, count: 7, in: line, at: index)
            }
            return dismissible
        }
        return dismissible
    }

    mutating func objectDidEnd(_ outcome: inout UsageOutcome) {
        if let errorMessage {
            outcome.fail(message: errorMessage)
            return
        }
        guard isDone || completesWithoutDone else { return }
        if !outcome.hasCompleted, outcome.errorMessage == nil { finishReason = doneReason }
        var final = usage
        final.model = modelValue.isEmpty ? nil : modelValue.withUnsafeBytes { bytes in
            var scanner = JSONScanner(bytes)
            return scanner.readString()
        }
        outcome.complete(with: final)
    }
}

/// Reads the message of an error reported inside a 2xx body, in any of the shapes Ollama's APIs use:
/// a string (`{"error":"..."}`), or an object with a `message` (`{"error":{"message":"..."}}`).
enum ErrorMessage {
    /// The message, a fallback when the error carries none, or nil when the value is `null` (no error:
    /// Responses objects carry `"error":null`).
    static func read(_ scanner: inout JSONScanner, fallback: String = "error") -> String? {
        switch scanner.peekKind() {
        case .null:
            scanner.skipValue()
            return nil
        case .string:
            return scanner.readString() ?? fallback
        case .object:
            return readMessage(inObject: &scanner) ?? fallback
        default:
            scanner.skipValue()
            return fallback
        }
    }

    /// The `message` string member of the object at the scanner, consuming the object.
    static func readMessage(inObject scanner: inout JSONScanner) -> String? {
        scanner.readStringMember("message")
    }
}
