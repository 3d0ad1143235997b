/// Receives the members of top-level JSON objects from a `StreamingObjectReader`.
///
/// Members are identified by small numbers chosen by the consumer so that the reader never has to keep
/// or hand back key strings.
protocol ObjectMemberConsumer {
    /// A new top-level object starts: forget anything gathered from a previous (possibly broken) one.
    mutating func objectDidBegin()
    /// The identifier of a member whose value should be captured, or nil to skip its value unread.
    /// `key` is the raw key between its quotes.
    func memberID(forKey key: UnsafeRawBufferPointer) -> UInt8?
    /// Whether only the first `StreamingObjectReader.prefixCaptureLimit` bytes of the member's value are
    /// wanted (enough to tell an empty text from a non-empty one); a longer value is then handed over cut
    /// short instead of abandoning the object.
    func capturesPrefixOnly(_ id: UInt8) -> Bool
    /// A captured member value, complete (exactly the value's bytes). Returning false abandons the rest of
    /// the object unread: it is not interesting (e.g. a native `"done":false` chunk).
    mutating func member(_ id: UInt8, value: UnsafeRawBufferPointer) -> Bool
    /// The object closed and every member was well-formed.
    mutating func objectDidEnd()
    /// Line mode: whether lines are screened by `canDismissLine` before being read. While this is true, a
    /// line that did not end in its piece is held back (copied, up to `StreamingObjectReader.heldLineLimit`)
    /// so that it can be screened whole once it ends.
    var screensLines: Bool { get }
    /// Line mode, while `screensLines`: whether reading this complete line (without its `\n`) would change
    /// nothing, so that it need not be read. Must answer false whenever in doubt.
    func canDismissLine(_ line: UnsafeRawBufferPointer) -> Bool
}

extension ObjectMemberConsumer {
    var screensLines: Bool { false }
    func canDismissLine(_ line: UnsafeRawBufferPointer) -> Bool { false }
}

/// Reads top-level JSON objects from bytes that arrive in arbitrary pieces, capturing only the member
/// values a consumer asks for and skipping the others without buffering them.
///
/// This is what lets the proxy read `/api/generate`'s final line (whose `context` array can be
/// megabytes) and multi-megabyte embedding replies without a line-length limit and without holding the
/// line in memory: only the captured values (a model name, a few integers) are ever copied, and only
/// when they straddle two pieces. (While a consumer screens lines, the start of a line that did not end in
/// its piece is held, up to `heldLineLimit`; a longer line is read as it arrives.)
///
/// Screening is what makes a streamed token cheap: once a consumer says so, a complete line is offered to
/// `canDismissLine` first, and most lines are then never read member by member.
///
/// In line mode (NDJSON) a newline ends the current object whether or not it is complete, so a garbage
/// or truncated line never swallows the next one, and an object only counts once its line ended with
/// nothing but whitespace after it (`{"done":true}}` is garbage, not a final chunk). In document mode
/// newlines are ordinary whitespace and an object counts as soon as it closes, so a reply without a
/// trailing newline is read before the body's end is even signalled.
struct StreamingObjectReader {
    /// A captured value larger than this is not something we asked for (a model name, an error, a usage
    /// object): the object is abandoned instead of buffering it.
    static let captureLimit = 1 << 20
    /// How much of a value captured for its first bytes only is kept.
    static let prefixCaptureLimit = 1024
    /// Line mode, while the consumer screens lines: how much of a line that did not end in its piece is
    /// held back to be screened whole. Token lines are a few hundred bytes; a longer line is read as it
    /// arrives.
    static let heldLineLimit = 16 * 1024
    private static let keyLimit = 64

    private enum State {
        case beforeObject
        case beforeFirstKey
        case beforeKey
        case inKey
        case beforeColon
        case beforeValue
        case inContainerOrString
        case inPrimitive
        case afterValue
        /// Line mode: the object closed; only whitespace may follow before the line ends.
        case afterObjectInLine
        /// Malformed or uninteresting: ignore bytes until the next line (line mode) or for good.
        case ignoring
    }

    let isLineDelimited: Bool
    private var state: State = .beforeObject

    private var key: [UInt8] = []
    private var keyIsTooLong = false
    private var keyEscapePending = false

    /// The member being captured, if its value is wanted.
    private var capturedID: UInt8?
    /// Only the first `prefixCaptureLimit` bytes of the captured value are wanted.
    private var capturesPrefix = false
    /// Bytes of the captured value from earlier pieces.
    private var captured: [UInt8] = []

    /// Line mode: the start of a line that did not end in its piece, not read yet (see `screensLines`).
    private var heldLine: [UInt8] = []

    /// Finds the end of the container or string value being scanned.
    private var skipper = JSONValueSkipper()

    init(isLineDelimited: Bool) {
        self.isLineDelimited = isLineDelimited
    }

    /// Reads the next piece of the body.
    mutating func feed<Consumer: ObjectMemberConsumer>(_ piece: UnsafeRawBufferPointer, into consumer: inout Consumer) {
        guard isLineDelimited else {
            consume(piece, into: &consumer)
            return
        }
        let end = piece.count
        var lineStart = 0
        if !heldLine.isEmpty {
            let index = ByteScan.firstLineFeed(in: piece, from: 0)
            guard index < end else {
                hold(piece, into: &consumer)
                return
            }
            hold(UnsafeRawBufferPointer(rebasing: piece[..<index]), into: &consumer)
            readHeldLine(isComplete: true, into: &consumer)
            endLine(into: &consumer)
            lineStart = index + 1
        }
        while true {
            let index = ByteScan.firstLineFeed(in: piece, from: lineStart)
            guard index < end else { break }
            if index > lineStart, state != .ignoring {
                let line = UnsafeRawBufferPointer(rebasing: piece[lineStart..<index])
                // A line whose start was read from earlier pieces is read to its end.
                if state != .beforeObject || !consumer.screensLines || !consumer.canDismissLine(line) {
                    consume(line, into: &consumer)
                }
            }
            endLine(into: &consumer)
            lineStart = index + 1
        }
        if lineStart < end, state != .ignoring {
            let rest = UnsafeRawBufferPointer(rebasing: piece[lineStart..<end])
            if state == .beforeObject, consumer.screensLines {
                hold(rest, into: &consumer)
            } else {
                consume(rest, into: &consumer)
            }
        }
    }

    /// Keeps the start of a line for screening once it ends; a line that outgrows `heldLineLimit` (a
    /// generate reply's final line with its `context`) is read as it arrives instead.
    private mutating func hold<Consumer: ObjectMemberConsumer>(_ bytes: UnsafeRawBufferPointer, into consumer: inout Consumer) {
        if heldLine.count + bytes.count <= Self.heldLineLimit {
            heldLine.append(contentsOf: bytes)
            return
        }
        readHeldLine(isComplete: false, into: &consumer)
        if state != .ignoring {
            consume(bytes, into: &consumer)
        }
    }

    /// The held-back start of a line goes through the reader, unless it is the whole line and dismissed.
    private mutating func readHeldLine<Consumer: ObjectMemberConsumer>(isComplete: Bool, into consumer: inout Consumer) {
        guard !heldLine.isEmpty else { return }
        var line = heldLine
        heldLine = []
        line.withUnsafeBytes { bytes in
            if !isComplete || !consumer.canDismissLine(bytes) {
                consume(bytes, into: &consumer)
            }
        }
        line.emptyForReuse()
        heldLine = line
    }

    /// The body ended: an object still open is incomplete and is dropped.
    mutating func finish<Consumer: ObjectMemberConsumer>(into consumer: inout Consumer) {
        readHeldLine(isComplete: false, into: &consumer)
        endLine(into: &consumer)
    }

    private mutating func endLine<Consumer: ObjectMemberConsumer>(into consumer: inout Consumer) {
        if state == .afterObjectInLine {
            consumer.objectDidEnd()
        }
        state = .beforeObject
        capturedID = nil
        releaseCaptureStorage()
    }

    private mutating func releaseCaptureStorage() {
        captured.emptyForReuse()
    }

    private mutating func abandonObject() {
        state = .ignoring
        capturedID = nil
        releaseCaptureStorage()
    }

    private mutating func consume<Consumer: ObjectMemberConsumer>(_ bytes: UnsafeRawBufferPointer, into consumer: inout Consumer) {
        let end = bytes.count
        var index = 0
        /// Where the value being captured starts in `bytes` (0 when it started in an earlier piece).
        var captureStart = 0
        /// Where the key being read starts in `bytes`.
        var keyStart = 0

        while index < end {
            switch state {
            case .ignoring:
                return

            case .afterObjectInLine:
                index = skipWhitespace(bytes, from: index)
                if index < end {
                    abandonObject()
                }

            case .beforeObject:
                index = skipWhitespace(bytes, from: index)
                guard index < end else { break }
                if bytes[index] == UInt8(ascii: "{") {
                    consumer.objectDidBegin()
                    state = .beforeFirstKey
                    index += 1
                } else {
                    abandonObject()
                }

            case .beforeFirstKey, .beforeKey:
                index = skipWhitespace(bytes, from: index)
                guard index < end else { break }
                let byte = bytes[index]
                if byte == UInt8(ascii: "\"") {
                    key.removeAll(keepingCapacity: true)
                    keyIsTooLong = false
                    keyEscapePending = false
                    state = .inKey
                    index += 1
                    keyStart = index
                } else if byte == UInt8(ascii: "}"), state == .beforeFirstKey {
                    index += 1
                    objectDidClose(into: &consumer)
                } else {
                    abandonObject()
                }

            case .inKey:
                var escapePending = keyEscapePending
                while index < end {
                    let byte = bytes[index]
                    if escapePending {
                        escapePending = false
                    } else if byte == UInt8(ascii: "\\") {
                        escapePending = true
                    } else if byte == UInt8(ascii: "\"") {
                        break
                    }
                    index += 1
                }
                keyEscapePending = escapePending
                appendKeyBytes(UnsafeRawBufferPointer(rebasing: bytes[keyStart..<index]))
                if index < end {
                    index += 1
                    state = .beforeColon
                }

            case .beforeColon:
                index = skipWhitespace(bytes, from: index)
                guard index < end else { break }
                if bytes[index] == UInt8(ascii: ":") {
                    index += 1
                    state = .beforeValue
                } else {
                    abandonObject()
                }

            case .beforeValue:
                index = skipWhitespace(bytes, from: index)
                guard index < end else { break }
                capturedID = keyIsTooLong ? nil : key.withUnsafeBytes { consumer.memberID(forKey: $0) }
                capturesPrefix = capturedID.map { consumer.capturesPrefixOnly($0) } ?? false
                captureStart = index
                let byte = bytes[index]
                switch byte {
                case UInt8(ascii: "{"), UInt8(ascii: "["), UInt8(ascii: "\""):
                    // The skipper reads the opening byte itself.
                    skipper = JSONValueSkipper()
                    state = .inContainerOrString
                case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                     UInt8(ascii: "t"), UInt8(ascii: "f"), UInt8(ascii: "n"):
                    state = .inPrimitive
                default:
                    abandonObject()
                }

            case .inContainerOrString:
                switch skipper.advance(bytes, from: index) {
                case .ended(let valueEnd):
                    index = valueEnd
                    guard finishValue(bytes, captureStart: captureStart, valueEnd: valueEnd, into: &consumer) else {
                        return
                    }
                case .needsMoreBytes:
                    index = end
                case .mismatched:
                    abandonObject()
                    return
                }

            case .inPrimitive:
                while index < end, !JSONBytes.endsPrimitive(bytes[index]) {
                    index += 1
                }
                guard index < end else { break }
                guard finishValue(bytes, captureStart: captureStart, valueEnd: index, into: &consumer) else {
                    return
                }

            case .afterValue:
                index = skipWhitespace(bytes, from: index)
                guard index < end else { break }
                let byte = bytes[index]
                if byte == UInt8(ascii: ",") {
                    index += 1
                    state = .beforeKey
                } else if byte == UInt8(ascii: "}") {
                    index += 1
                    objectDidClose(into: &consumer)
                } else {
                    abandonObject()
                }
            }
        }

        // The piece ended inside a value being captured: keep its bytes for the next piece.
        if capturedID != nil, state == .inContainerOrString || state == .inPrimitive {
            if capturesPrefix {
                let kept = Swift.min(end - captureStart, Swift.max(Self.prefixCaptureLimit - captured.count, 0))
                captured.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[captureStart..<(captureStart + kept)]))
            } else if captured.count + (end - captureStart) > Self.captureLimit {
                abandonObject()
            } else {
                captured.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[captureStart..<end]))
            }
        }
    }

    private mutating func objectDidClose<Consumer: ObjectMemberConsumer>(into consumer: inout Consumer) {
        if isLineDelimited {
            state = .afterObjectInLine
        } else {
            state = .beforeObject
            consumer.objectDidEnd()
        }
    }

    private mutating func appendKeyBytes(_ bytes: UnsafeRawBufferPointer) {
        guard !keyIsTooLong else { return }
        if key.count + bytes.count > Self.keyLimit {
            keyIsTooLong = true
        } else {
            key.append(contentsOf: bytes)
        }
    }

    /// Hands a completed member value to the consumer. Returns false when the object was abandoned.
    private mutating func finishValue<Consumer: ObjectMemberConsumer>(
        _ bytes: UnsafeRawBufferPointer, captureStart: Int, valueEnd: Int, into consumer: inout Consumer
    ) -> Bool {
        state = .afterValue
        guard let id = capturedID else { return true }
        capturedID = nil
        let valueEnd = capturesPrefix
            ? captureStart + Swift.min(valueEnd - captureStart, Swift.max(Self.prefixCaptureLimit - captured.count, 0))
            : valueEnd
        // Same limit whether or not the value straddled pieces, so that cutting never changes the outcome.
        guard captured.count + (valueEnd - captureStart) <= Self.captureLimit else {
            abandonObject()
            return false
        }
        let keepReading: Bool
        if captured.isEmpty {
            keepReading = consumer.member(id, value: UnsafeRawBufferPointer(rebasing: bytes[captureStart..<valueEnd]))
        } else {
            captured.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[captureStart..<valueEnd]))
            keepReading = captured.withUnsafeBytes { consumer.member(id, value: $0) }
            releaseCaptureStorage()
        }
        if !keepReading {
            abandonObject()
        }
        return keepReading
    }

    @inline(__always)
    private func skipWhitespace(_ bytes: UnsafeRawBufferPointer, from start: Int) -> Int {
        var index = start
        while index < bytes.count, JSONBytes.isWhitespace(bytes[index]) {
            index += 1
        }
        return index
    }
}
