import NIOCore

/// Reads an inference request body before it is forwarded: the model (for labels until the response
/// names one), whether the reply will stream, and, for OpenAI streams that would otherwise carry no
/// usage at all, asks Ollama for it by editing the body.
///
/// The edit is the smallest byte insertion or replacement that sets `stream_options.include_usage` to
/// true; the body is never re-serialised, so key order, whitespace, number precision (integers beyond
/// 2^53) and every other byte reach Ollama as the client wrote them.
///
/// Keys are matched the way Go's `encoding/json` (which decodes the body in Ollama) matches them:
/// ASCII case-insensitively, escapes decoded, the last occurrence of a duplicated key winning. Bytes after
/// the top-level object are ignored, as Go's `json.Decoder` ignores them.
public enum RequestInspector {
    /// Reads a complete request body.
    ///
    /// For streaming requests of endpoints with `needsIncludeUsageOnStreams` whose body does not already
    /// set `stream_options.include_usage` to true, also returns the body with it set:
    /// - no `stream_options`: `,"stream_options":{"include_usage":true}` is inserted before the closing `}`
    ///   of the top-level object (no comma if the object is empty);
    /// - `stream_options` is an object without `include_usage`: `"include_usage":true` (plus a comma when
    ///   the object has other members) is inserted after its `{`;
    /// - `include_usage` is false or null: that value is replaced by `true`;
    /// - `stream_options` is null: it is replaced by `{"include_usage":true}`.
    ///
    /// A client that already asked for usage gets no edit and keeps its usage chunks. Malformed JSON, a
    /// body that is not an object, or values of other types (which Ollama rejects) get no edit; the model
    /// is then read on a best-effort basis.
    public static func inspect(endpoint: InferenceEndpoint, body: ByteBuffer) -> (request: InferenceRequest, rewrittenBody: ByteBuffer?) {
        let reading = body.withUnsafeReadableBytes { RequestBodyReading(reading: $0) }
        let isStreaming = reading.stream ?? endpoint.streamsByDefault
        let request = InferenceRequest(model: reading.model, isStreaming: isStreaming, withholdUsageChunks: false)
        guard endpoint.needsIncludeUsageOnStreams, isStreaming, reading.isWellFormed,
              let edit = reading.includeUsageEdit
        else {
            return (request, nil)
        }
        var rewritten = ByteBufferAllocator().buffer(capacity: body.readableBytes + edit.replacement.utf8CodeUnitCount)
        body.withUnsafeReadableBytes { bytes in
            rewritten.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[..<edit.range.lowerBound]))
            rewritten.writeStaticString(edit.replacement)
            rewritten.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[edit.range.upperBound...]))
        }
        var withholding = request
        withholding.withholdUsageChunks = true
        return (withholding, rewritten)
    }
}

/// A minimal change to a body: `range` (empty for an insertion) becomes `replacement`.
struct BodyEdit {
    var range: Range<Int>
    var replacement: StaticString
}

/// What one pass over a request body found, with the byte positions the edit needs.
struct RequestBodyReading {
    private(set) var model: String?
    /// The top-level `stream` boolean; nil when absent, null or not a boolean.
    private(set) var stream: Bool?
    /// The whole top-level object was well-formed.
    private(set) var isWellFormed = false
    /// The edit that sets `stream_options.include_usage` to true; nil when it already is true, or when the
    /// body's shape does not allow a safe edit.
    private(set) var includeUsageEdit: BodyEdit?

    private enum StreamOptions {
        case absent
        case null(Range<Int>)
        /// `openBrace` is the index just after `{`; `includeUsage` the last `include_usage` value.
        case object(openBrace: Int, isEmpty: Bool, includeUsage: IncludeUsage)
        case otherType
    }

    private enum IncludeUsage {
        case absent
        case isTrue
        case falseOrNull(Range<Int>)
        case otherType
    }

    init(reading bytes: UnsafeRawBufferPointer) {
        var scanner = JSONScanner(bytes)
        guard scanner.enterObject() else {
            return
        }
        var streamOptions = StreamOptions.absent
        var hasMembers = false
        var isFirst = true
        while let key = scanner.nextKey(isFirst: &isFirst) {
            hasMembers = true
            if Self.key(key, is: "model") {
                model = scanner.readString()
            } else if Self.key(key, is: "stream") {
                stream = scanner.readBool()
            } else if Self.key(key, is: "stream_options") {
                streamOptions = Self.readStreamOptions(&scanner)
            } else {
                scanner.skipValue()
            }
        }
        guard !scanner.failed else { return }
        isWellFormed = true
        // The scanner stands just after the closing brace.
        let closingBrace = scanner.position - 1

        switch streamOptions {
        case .absent:
            includeUsageEdit = BodyEdit(
                range: closingBrace..<closingBrace,
                replacement: hasMembers ? #","stream_options":{"include_usage":true}"# : #""stream_options":{"include_usage":true}"#
            )
        case .null(let range):
            includeUsageEdit = BodyEdit(range: range, replacement: #"{"include_usage":true}"#)
        case .object(let openBrace, let isEmpty, let includeUsage):
            switch includeUsage {
            case .absent:
                includeUsageEdit = BodyEdit(
                    range: openBrace..<openBrace,
                    replacement: isEmpty ? #""include_usage":true"# : #""include_usage":true,"#
                )
            case .falseOrNull(let range):
                includeUsageEdit = BodyEdit(range: range, replacement: "true")
            case .isTrue, .otherType:
                includeUsageEdit = nil
            }
        case .otherType:
            includeUsageEdit = nil
        }
    }

    private static func readStreamOptions(_ scanner: inout JSONScanner) -> StreamOptions {
        switch scanner.peekKind() {
        case .null:
            let start = scanner.position
            scanner.skipValue()
            return .null(start..<scanner.position)
        case .object:
            _ = scanner.enterObject()
            let openBrace = scanner.position
            var includeUsage = IncludeUsage.absent
            var isEmpty = true
            var isFirst = true
            while let key = scanner.nextKey(isFirst: &isFirst) {
                isEmpty = false
                guard Self.key(key, is: "include_usage") else {
                    scanner.skipValue()
                    continue
                }
                let kind = scanner.peekKind()
                let start = scanner.position
                scanner.skipValue()
                switch kind {
                case .true: includeUsage = .isTrue
                case .false, .null: includeUsage = .falseOrNull(start..<scanner.position)
                default: includeUsage = .otherType
                }
            }
            return .object(openBrace: openBrace, isEmpty: isEmpty, includeUsage: includeUsage)
        default:
            scanner.skipValue()
            return .otherType
        }
    }

    /// Go's field matching: exact or ASCII case-insensitive, after decoding escapes.
    static func key(_ raw: UnsafeRawBufferPointer, is name: StaticString) -> Bool {
        if !raw.contains(UInt8(ascii: "\\")) {
            return ASCII.equalsIgnoringCase(raw, lowercase: ASCII.bytes(name))
        }
        guard let decoded = JSONBytes.unescape(raw) else { return false }
        return ASCII.equalsIgnoringCase(decoded.utf8, lowercase: ASCII.bytes(name))
    }
}
