import NIOCore

/// Reads a 2xx inference response body as it streams through the proxy, to learn the request's usage,
/// and decides which of its bytes reach the client.
///
/// Pure: bytes in, facts out. It never delays bytes except when it must withhold the usage-only chunks
/// the proxy asked for on the client's behalf (`InferenceRequest.withholdUsageChunks`).
///
/// Typical use, per response:
/// ```swift
/// var inspector = ResponseInspector(endpoint: endpoint, request: request, contentType: contentType)
/// for chunk in body { write(inspector.inspect(chunk)); if let usage = inspector.takeCompletedUsage() { record(usage) } }
/// if let rest = inspector.finish() { write(rest) }; if let usage = inspector.takeCompletedUsage() { record(usage) }
/// ```
public struct ResponseInspector: Sendable {
    /// How the body is framed, decided once from the Content-Type.
    private enum Framing: Sendable {
        case jsonLines
        case jsonDocument
        case serverSentEvents
    }

    private let framing: Framing
    private var objects: StreamingObjectReader
    private var events: SSEEventSplitter
    private var reader: DialectReader

    /// Set when an error was reported inside the 2xx body (native `{"error":"..."}` line; Anthropic
    /// `event: error`; Responses `response.failed`/`error`; OpenAI `data: {"error":...}`), with its
    /// message. A stream that reported an error never yields a completed usage afterwards.
    public private(set) var streamErrorMessage: String?

    /// Becomes true while inspecting the first piece that carries generated content, and stays true: a
    /// native line with a non-empty `response`, `thinking` or `message` content, thinking or tool calls; an
    /// OpenAI chunk with a non-empty `text` or delta `content`, `reasoning` or `tool_calls`; an Anthropic
    /// `content_block_delta`; a Responses `response.….delta`. A role-only first chunk, `message_start` or
    /// `response.created` does not count. A non-streaming compatibility document counts once it has been read
    /// whole and carried content; a native one as soon as its content member has been read (Go writes it
    /// before the metrics). Once true, nothing more is looked at for it.
    public private(set) var hasSeenContent = false

    /// Why generation stopped, as the response that completed the request said it: native `done_reason`,
    /// OpenAI `finish_reason`, Anthropic `stop_reason`, Responses `status`. Nil when the response carried
    /// none (embeddings, a long non-streaming OpenAI document) or has not completed.
    public var finishReason: FinishReason? { reader.finishReason }

    /// - Parameter contentType: The response's Content-Type header (`application/x-ndjson`,
    ///   `text/event-stream`, `application/json; charset=utf-8`, …): it decides between a stream parser and
    ///   a single JSON document. When it is missing or unrecognised, the request's `isStreaming` decides.
    public init(endpoint: InferenceEndpoint, request: InferenceRequest, contentType: String?) {
        let framing = Self.framing(endpoint: endpoint, isStreaming: request.isStreaming, contentType: contentType)
        self.framing = framing
        objects = StreamingObjectReader(isLineDelimited: framing == .jsonLines)
        events = SSEEventSplitter(isWithholding: framing == .serverSentEvents && request.withholdUsageChunks)
        reader = DialectReader(endpoint: endpoint)
    }

    /// Reads the next piece of the body as it arrives (pieces may split anywhere, even inside a UTF-8
    /// sequence or a `\r\n`).
    ///
    /// - Returns: The bytes to forward to the client: `chunk` itself unless usage chunks are withheld, in
    ///   which case it is the complete events read so far minus the usage-only ones (a slice of `chunk`
    ///   when possible; possibly empty). An incomplete trailing event is held back until it completes.
    public mutating func inspect(_ chunk: ByteBuffer) -> ByteBuffer {
        let forwarding: SSEForwarding
        switch framing {
        case .jsonLines, .jsonDocument:
            chunk.withUnsafeReadableBytes { objects.feed($0, into: &reader) }
            forwarding = .everything
        case .serverSentEvents:
            forwarding = chunk.withUnsafeReadableBytes { events.feed($0, into: &reader) }
        }
        if !hasSeenContent {
            hasSeenContent = reader.hasSeenContent
        }
        if streamErrorMessage == nil, let message = reader.outcome.errorMessage {
            streamErrorMessage = message
        }
        switch forwarding {
        case .everything:
            return chunk
        case .range(let range):
            return chunk.getSlice(at: chunk.readerIndex + range.lowerBound, length: range.count)!
        case .assembled(let buffer):
            return buffer
        }
    }

    /// The body ended or was cut. Reads a final unterminated line, event or document, and returns any
    /// held-back bytes that may still reach the client (nil if none).
    public mutating func finish() -> ByteBuffer? {
        let rest: ByteBuffer?
        switch framing {
        case .jsonLines, .jsonDocument:
            objects.finish(into: &reader)
            rest = nil
        case .serverSentEvents:
            rest = events.finish(into: &reader)
        }
        if !hasSeenContent {
            hasSeenContent = reader.hasSeenContent
        }
        if streamErrorMessage == nil, let message = reader.outcome.errorMessage {
            streamErrorMessage = message
        }
        return rest
    }

    /// The request's final usage, returned exactly once, as soon as the final usage-bearing event has been
    /// read (during `inspect`: OpenAI clients hang up right after `data: [DONE]`); nil otherwise.
    public mutating func takeCompletedUsage() -> Usage? {
        reader.outcome.takeCompletedUsage()
    }

    /// Whether `takeCompletedUsage` would return a usage, answered without copying one: the per-chunk check.
    var hasCompletedUsage: Bool { reader.outcome.hasPendingUsage }

    private static func framing(endpoint: InferenceEndpoint, isStreaming: Bool, contentType: String?) -> Framing {
        if let contentType {
            if Self.mediaType(of: contentType, is: "text/event-stream") {
                // Native endpoints never send events; read such a body as lines rather than not at all.
                return endpoint.dialect == .ollamaNative ? .jsonLines : .serverSentEvents
            }
            if Self.mediaType(of: contentType, is: "application/x-ndjson")
                || Self.mediaType(of: contentType, is: "application/ndjson")
                || Self.mediaType(of: contentType, is: "application/jsonl")
                || Self.mediaType(of: contentType, is: "application/x-jsonlines")
            {
                return .jsonLines
            }
            if Self.mediaType(of: contentType, is: "application/json") {
                return .jsonDocument
            }
        }
        guard isStreaming else { return .jsonDocument }
        return endpoint.dialect == .ollamaNative ? .jsonLines : .serverSentEvents
    }

    /// Whether the `type/subtype` of a Content-Type (case-insensitive, parameters and blanks ignored) is
    /// `expected` (lowercase). Compares bytes in place: this runs for every inference response.
    static func mediaType(of contentType: String, is expected: StaticString) -> Bool {
        let utf8 = contentType.utf8
        let isBlank = { (byte: UInt8) in byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
        let end = utf8.firstIndex(of: UInt8(ascii: ";")) ?? utf8.endIndex
        guard let first = utf8[..<end].firstIndex(where: { !isBlank($0) }),
              let last = utf8[first..<end].lastIndex(where: { !isBlank($0) })
        else { return false }
        return ASCII.equalsIgnoringCase(utf8[first...last], lowercase: ASCII.bytes(expected))
    }
}

/// Routes framed units (objects, events) to the reader of the endpoint's dialect, and holds the outcome
/// they all report to. A plain struct switch rather than protocol existentials: this is the per-chunk path.
struct DialectReader: ObjectMemberConsumer, SSEEventConsumer, Sendable {
    private enum Kind: Sendable {
        case native, openAI, responses, anthropic
    }

    private let kind: Kind
    private var native: NativeUsageReader
    private var document: CompatDocumentUsageReader
    private var openAI = OpenAIUsageReader()
    private var responses = ResponsesUsageReader()
    private var anthropic = AnthropicUsageReader()
    var outcome = UsageOutcome()

    var hasSeenContent: Bool {
        switch kind {
        case .native: native.hasSeenContent || document.hasSeenContent
        case .openAI: openAI.hasSeenContent || document.hasSeenContent
        case .responses: responses.hasSeenContent || document.hasSeenContent
        case .anthropic: anthropic.hasSeenContent || document.hasSeenContent
        }
    }

    var finishReason: FinishReason? {
        switch kind {
        case .native: native.finishReason ?? document.finishReason
        case .openAI: openAI.finishReason ?? document.finishReason
        case .responses: responses.finishReason ?? document.finishReason
        case .anthropic: anthropic.finishReason ?? document.finishReason
        }
    }

    init(endpoint: InferenceEndpoint) {
        switch endpoint {
        case .generate, .chat, .embed, .embeddings: kind = .native
        case .chatCompletions, .completions, .openAIEmbeddings: kind = .openAI
        case .responses: kind = .responses
        case .messages: kind = .anthropic
        }
        native = NativeUsageReader(endpoint: endpoint)
        document = CompatDocumentUsageReader(endpoint: endpoint)
    }

    // MARK: ObjectMemberConsumer (NDJSON lines and single documents)

    mutating func objectDidBegin() {
        if kind == .native {
            native.objectDidBegin()
        } else {
            document.objectDidBegin()
        }
    }

    func memberID(forKey key: UnsafeRawBufferPointer) -> UInt8? {
        kind == .native ? native.memberID(forKey: key) : document.memberID(forKey: key)
    }

    func capturesPrefixOnly(_ id: UInt8) -> Bool {
        kind == .native ? native.capturesPrefixOnly(id) : document.capturesPrefixOnly(id)
    }

    mutating func member(_ id: UInt8, value: UnsafeRawBufferPointer) -> Bool {
        kind == .native ? native.member(id, value: value) : document.member(id, value: value)
    }

    var screensLines: Bool {
        kind == .native && native.screensLines
    }

    func canDismissLine(_ line: UnsafeRawBufferPointer) -> Bool {
        kind == .native && native.canDismissLine(line)
    }

    mutating func objectDidEnd() {
        if kind == .native {
            native.objectDidEnd(&outcome)
        } else {
            document.objectDidEnd(&outcome)
        }
    }

    // MARK: SSEEventConsumer

    mutating func event(type: UnsafeRawBufferPointer, data: UnsafeRawBufferPointer) -> SSEEventKind {
        switch kind {
        case .openAI:
            return openAI.event(data: data, outcome: &outcome)
        case .responses:
            responses.event(type: type, data: data, outcome: &outcome)
        case .anthropic:
            anthropic.event(type: type, data: data, outcome: &outcome)
        case .native:
            break
        }
        return .ordinary
    }
}
