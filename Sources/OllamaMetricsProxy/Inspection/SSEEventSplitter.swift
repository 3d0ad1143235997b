import NIOCore

/// What an event means for forwarding: only usage-only events can be withheld from a client.
enum SSEEventKind: Equatable {
    case ordinary
    /// An event to forward without the bytes `range` of its data: a member that is there only because the
    /// proxy asked for usage (`/v1/completions` puts a zero `usage` on every chunk then). Honoured only
    /// when withholding, and only for an event with a single `data:` line; otherwise the event is ordinary.
    case ordinaryWithout(Range<Int>)
    /// An OpenAI chunk carrying usage and no choices: what `include_usage` adds to a stream.
    case usageOnly
}

/// Receives complete server-sent events from an `SSEEventSplitter`.
protocol SSEEventConsumer {
    /// A complete event with at least one `data:` line. `type` is the `event:` field's value, empty when
    /// the event had none; `data` is its `data:` lines joined with `\n`. Both are only valid during the call.
    mutating func event(type: UnsafeRawBufferPointer, data: UnsafeRawBufferPointer) -> SSEEventKind
}

/// Which bytes of a piece should reach the client.
enum SSEForwarding: Equatable {
    /// The whole piece, unchanged.
    case everything
    /// One contiguous range of the piece (possibly empty).
    case range(Range<Int>)
    /// Bytes gathered from several places (held-back bytes of earlier pieces, or non-adjacent ranges).
    case assembled(ByteBuffer)
}

/// Splits a `text/event-stream` body into events as its pieces arrive, and, when asked to withhold,
/// works out which bytes to forward so that usage-only events are removed and every other byte reaches
/// the client unchanged and in order.
///
/// Implements the framing rules of the HTML standard's event-stream format: lines end in `\n`, `\r\n`
/// or `\r` (a `\r\n` split across two pieces is one line end); a blank line ends an event; `data:` with
/// or without a space after the colon; several `data:` lines join with `\n`; comments and unknown fields
/// are ignored. Event fields are referenced in place and copied only when an event outlives its piece.
///
/// When withholding, the bytes of an event are held back until the event ends, because whether it may
/// be forwarded is only known then. Forwarding unit = "segment": an event's lines plus its terminating
/// blank line.
struct SSEEventSplitter {
    /// A line, an event's data or a held-back event larger than this is not inspected (its bytes are still
    /// forwarded): usage events are a few hundred bytes.
    static let defaultSizeLimit = 64 << 20

    let isWithholding: Bool
    let sizeLimit: Int

    // Line assembly.
    private var partialLine: [UInt8] = []
    private var partialLineIsTooLong = false
    /// The first byte of the line being assembled (a `:` makes an oversized line a harmless comment).
    private var partialLineFirstByte: UInt8?
    /// The previous piece ended with `\r`: a `\n` starting this piece belongs to that line end.
    private var previousPieceEndedWithCR = false
    /// What to do with that `\n` if it comes: it belongs to the segment that ended with the `\r`.
    private var lineFeedAfterCR: LineFeedDisposition = .partOfCurrentSegment

    // Event assembly.
    private var type: EventField
    private var data: EventField
    /// Where the current event's data starts in its segment, when it came from a single `data:` line.
    private var dataStartInSegment: Int?
    private var dataLineCount = 0

    // Withholding.
    /// Bytes of the current segment from earlier pieces, not yet forwarded.
    private var held = ByteBuffer()
    /// The current segment outgrew `sizeLimit` and is being forwarded as it arrives.
    private var isPassingSegmentThrough = false

    private enum LineFeedDisposition {
        case partOfCurrentSegment, forward, drop
    }

    init(isWithholding: Bool, sizeLimit: Int = Self.defaultSizeLimit) {
        self.isWithholding = isWithholding
        self.sizeLimit = sizeLimit
        type = EventField(limit: sizeLimit)
        data = EventField(limit: sizeLimit)
    }

    mutating func feed<Consumer: SSEEventConsumer>(_ piece: UnsafeRawBufferPointer, into consumer: inout Consumer) -> SSEForwarding {
        let end = piece.count
        guard end > 0 else { return .everything }
        var output = ForwardedBytes()
        var index = 0
        var segmentStart = 0

        if previousPieceEndedWithCR {
            previousPieceEndedWithCR = false
            if piece[0] == 0x0A {
                index = 1
                switch lineFeedAfterCR {
                case .partOfCurrentSegment: break
                case .forward:
                    output.forward(0..<1, of: piece)
                    segmentStart = 1
                case .drop:
                    segmentStart = 1
                }
            }
        }
        lineFeedAfterCR = .partOfCurrentSegment

        var lineStart = index
        while true {
            var knownLineEnd: Int?
            if isBetweenEvents, !isWithholding || (lineStart == segmentStart && held.readableBytes == 0) {
                switch Self.readSingleDataLineEvent(piece, from: lineStart, sizeLimit: sizeLimit, into: &consumer) {
                case .read(let next, let kind, let removal):
                    if isWithholding {
                        if kind != .usageOnly {
                            output.forward(segmentStart..<next, of: piece, removing: removal, heldCount: 0)
                        }
                        segmentStart = next
                    }
                    index = next
                    lineStart = next
                    continue
                case .notSingleDataLine(let lineEnd):
                    knownLineEnd = lineEnd
                }
            }
            index = knownLineEnd ?? ByteScan.firstLineEnd(in: piece, from: index)
            guard index < end else { break }
            let byte = piece[index]
            let lineEnd = index
            index += 1
            var endsWithCRAtPieceEnd = false
            if byte == 0x0D {
                if index < end {
                    if piece[index] == 0x0A { index += 1 }
                } else {
                    previousPieceEndedWithCR = true
                    endsWithCRAtPieceEnd = true
                }
            }
            let isBlank = handleLine(piece, lineStart..<lineEnd, segmentStart: segmentStart)
            lineStart = index
            guard isBlank else { continue }

            let (kind, removal) = dispatch(piece, into: &consumer)
            if isWithholding {
                let forwardSegment = isPassingSegmentThrough || kind != .usageOnly
                if forwardSegment {
                    let edit = isPassingSegmentThrough ? nil : removal
                    let heldCount = held.readableBytes
                    output.forward(&held, removing: edit, of: piece)
                    output.forward(segmentStart..<index, of: piece, removing: edit, heldCount: heldCount)
                } else {
                    discardHeld()
                }
                isPassingSegmentThrough = false
                segmentStart = index
                if endsWithCRAtPieceEnd {
                    lineFeedAfterCR = forwardSegment ? .forward : .drop
                }
            }
        }

        keepPartialLine(piece, lineStart..<end)
        type.detach(from: piece)
        data.detach(from: piece)

        guard isWithholding else { return .everything }
        if segmentStart < end {
            if isPassingSegmentThrough {
                output.forward(segmentStart..<end, of: piece)
            } else {
                held.writeBytes(UnsafeRawBufferPointer(rebasing: piece[segmentStart..<end]))
                if held.readableBytes > sizeLimit {
                    output.forward(&held, of: piece)
                    isPassingSegmentThrough = true
                }
            }
        }
        return output.result(pieceCount: end)
    }

    /// No line of an event has been read: no field, no partial line, no segment passing through.
    private var isBetweenEvents: Bool {
        !type.isPresent && !data.isPresent && partialLine.isEmpty && !partialLineIsTooLong && !isPassingSegmentThrough
    }

    private enum SingleDataLineEvent {
        /// The event was handed to the consumer; the next one starts at `next`. `removal` is in segment
        /// coordinates, as `dispatch` gives it.
        case read(next: Int, kind: SSEEventKind, removal: Range<Int>?)
        /// Not such an event; where its first line ends, if that was searched.
        case notSingleDataLine(lineEnd: Int?)
    }

    /// The common event, read without the general machinery: `data:` (one optional space) and its value,
    /// `\n`, then the blank line, all in this piece, between events. What `handleLine` and `dispatch` would
    /// have made of it, in a fraction of their work: the value is handed over in place, and there is no
    /// field to reset. (Static, so that the splitter is not copied for the call.)
    private static func readSingleDataLineEvent<Consumer: SSEEventConsumer>(
        _ piece: UnsafeRawBufferPointer, from start: Int, sizeLimit: Int, into consumer: inout Consumer
    ) -> SingleDataLineEvent {
        let end = piece.count
        guard end &- start >= 7,
            UnsafeRawBufferPointer(rebasing: piece[start..<(start &+ 5)]).hasBytes("data:")
        else { return .notSingleDataLine(lineEnd: nil) }
        var valueStart = start &+ 5
        if piece[valueStart] == UInt8(ascii: " ") {
            valueStart &+= 1
        }
        let lineEnd = ByteScan.firstLineEnd(in: piece, from: valueStart)
        guard lineEnd &+ 1 < end, piece[lineEnd] == 0x0A, piece[lineEnd &+ 1] == 0x0A, lineEnd &- start <= sizeLimit else {
            return .notSingleDataLine(lineEnd: lineEnd)
        }
        let kind = consumer.event(
            type: UnsafeRawBufferPointer(start: nil, count: 0),
            data: UnsafeRawBufferPointer(rebasing: piece[valueStart..<lineEnd])
        )
        var removal: Range<Int>?
        if case .ordinaryWithout(let range) = kind {
            // The data starts `valueStart - start` bytes into its segment, which starts at `start`.
            let dataStart = valueStart &- start
            removal = (dataStart &+ range.lowerBound)..<(dataStart &+ range.upperBound)
        }
        return .read(next: lineEnd &+ 2, kind: kind, removal: removal)
    }

    /// The body ended or was cut: reads an unterminated last line, dispatches an unterminated last event,
    /// and returns the held-back bytes that may still be forwarded (nil if none).
    mutating func finish<Consumer: SSEEventConsumer>(into consumer: inout Consumer) -> ByteBuffer? {
        previousPieceEndedWithCR = false
        if !partialLine.isEmpty || partialLineIsTooLong {
            _ = handleLine(UnsafeRawBufferPointer(start: nil, count: 0), 0..<0, segmentStart: 0)
        }
        let (kind, removal) = dispatch(UnsafeRawBufferPointer(start: nil, count: 0), into: &consumer)
        let wasPassingThrough = isPassingSegmentThrough
        isPassingSegmentThrough = false
        guard isWithholding, held.readableBytes > 0 else { return nil }
        defer { held = ByteBuffer() }
        if wasPassingThrough {
            return held
        }
        if kind == .usageOnly {
            return nil
        }
        var rest = ForwardedBytes()
        rest.forward(&held, removing: removal, of: UnsafeRawBufferPointer(start: nil, count: 0))
        return rest.assembledBytes ?? ByteBuffer()
    }

    /// Forgets held-back bytes.
    private mutating func discardHeld() {
        held.emptyForReuse()
    }

    // MARK: Lines

    /// Reads one complete line (`piece[range]`, preceded by any partial line from earlier pieces).
    /// `segmentStart` is where the current segment starts in the piece (its earlier bytes are `held`).
    /// Returns whether it was blank, i.e. ended an event.
    private mutating func handleLine(_ piece: UnsafeRawBufferPointer, _ range: Range<Int>, segmentStart: Int) -> Bool {
        if partialLineIsTooLong || partialLine.count + range.count > sizeLimit {
            let firstByte = partialLineFirstByte ?? partialLine.first ?? piece[range.lowerBound]
            partialLineIsTooLong = false
            partialLineFirstByte = nil
            partialLine = []
            // The line is dropped. Unless it was a comment, it may have been part of the event's data or
            // type, so the event can no longer be read (its bytes are still forwarded).
            if firstByte != UInt8(ascii: ":") {
                data.markTooLong()
            }
            return false
        }
        if partialLine.isEmpty {
            return handleField(
                UnsafeRawBufferPointer(rebasing: piece[range]), offsetInPiece: range.lowerBound,
                startInSegment: held.readableBytes + range.lowerBound - segmentStart, of: piece
            )
        }
        partialLine.append(contentsOf: UnsafeRawBufferPointer(rebasing: piece[range]))
        var line = partialLine
        partialLine = []
        // The line's earlier bytes are the last ones of `held`.
        let startInSegment = held.readableBytes + range.upperBound - segmentStart - line.count
        let isBlank = line.withUnsafeBytes {
            handleField($0, offsetInPiece: nil, startInSegment: startInSegment, of: piece)
        }
        line.emptyForReuse()
        partialLine = line
        return isBlank
    }

    private mutating func keepPartialLine(_ piece: UnsafeRawBufferPointer, _ range: Range<Int>) {
        guard !range.isEmpty, !partialLineIsTooLong else { return }
        if partialLine.count + range.count > sizeLimit {
            partialLineFirstByte = partialLine.first ?? piece[range.lowerBound]
            partialLine = []
            partialLineIsTooLong = true
        } else {
            partialLine.append(contentsOf: UnsafeRawBufferPointer(rebasing: piece[range]))
        }
    }

    /// Interprets one line. `offsetInPiece` is where the line starts in the current piece, or nil when the
    /// line was reassembled from several pieces (its fields must then be copied). `startInSegment` is where
    /// it starts in its segment (meaningful only when withholding).
    private mutating func handleField(
        _ line: UnsafeRawBufferPointer, offsetInPiece: Int?, startInSegment: Int, of piece: UnsafeRawBufferPointer
    ) -> Bool {
        guard !line.isEmpty else { return true }
        if line[0] == UInt8(ascii: ":") { return false }
        var colon = 0
        while colon < line.count, line[colon] != UInt8(ascii: ":") {
            colon += 1
        }
        let name = UnsafeRawBufferPointer(rebasing: line[0..<colon])
        var valueStart = Swift.min(colon + 1, line.count)
        if valueStart < line.count, line[valueStart] == UInt8(ascii: " ") {
            valueStart += 1
        }
        let value = valueStart..<line.count
        if name.hasBytes("data") {
            dataLineCount += 1
            dataStartInSegment = startInSegment + value.lowerBound
            if let offset = offsetInPiece {
                data.appendLine(inPiece: (value.lowerBound + offset)..<(value.upperBound + offset), of: piece)
            } else {
                data.appendLine(copying: UnsafeRawBufferPointer(rebasing: line[value]), of: piece)
            }
        } else if name.hasBytes("event") {
            if let offset = offsetInPiece {
                type.replace(inPiece: (value.lowerBound + offset)..<(value.upperBound + offset))
            } else {
                type.replace(copying: UnsafeRawBufferPointer(rebasing: line[value]))
            }
        }
        return false
    }

    // MARK: Events

    /// Hands a complete event to the consumer. Returns its kind, and for an `ordinaryWithout` event whose
    /// data is one line, the bytes to remove in segment coordinates.
    private mutating func dispatch<Consumer: SSEEventConsumer>(
        _ piece: UnsafeRawBufferPointer, into consumer: inout Consumer
    ) -> (SSEEventKind, removal: Range<Int>?) {
        defer {
            type.reset()
            data.reset()
            dataStartInSegment = nil
            dataLineCount = 0
        }
        guard data.isPresent, !data.isTooLong else { return (.ordinary, nil) }
        let kind = type.withBytes(in: piece) { typeBytes in
            data.withBytes(in: piece) { dataBytes in
                consumer.event(type: typeBytes, data: dataBytes)
            }
        }
        guard case .ordinaryWithout(let range) = kind, isWithholding, dataLineCount == 1, let start = dataStartInSegment else {
            return (kind, nil)
        }
        return (kind, (start + range.lowerBound)..<(start + range.upperBound))
    }
}

/// An event field's value, referenced in the current piece while possible and copied out only when the
/// event outlives the piece or spans several lines.
private struct EventField {
    let limit: Int
    private var owned: [UInt8] = []
    /// The whole value, when it is a single line lying in the current piece.
    private var rangeInPiece: Range<Int>?
    private(set) var isPresent = false
    private(set) var isTooLong = false

    init(limit: Int) {
        self.limit = limit
    }

    mutating func reset() {
        owned.emptyForReuse()
        rangeInPiece = nil
        isPresent = false
        isTooLong = false
    }

    mutating func markTooLong() {
        isTooLong = true
        isPresent = true
        owned = []
        rangeInPiece = nil
    }

    /// `event:` semantics: the last one wins.
    mutating func replace(inPiece range: Range<Int>) {
        owned.removeAll(keepingCapacity: true)
        rangeInPiece = range
        isPresent = true
        isTooLong = false
    }

    mutating func replace(copying bytes: UnsafeRawBufferPointer) {
        owned.removeAll(keepingCapacity: true)
        rangeInPiece = nil
        isPresent = true
        isTooLong = false
        append(bytes)
    }

    /// `data:` semantics: lines accumulate, joined with `\n`.
    mutating func appendLine(inPiece range: Range<Int>, of piece: UnsafeRawBufferPointer) {
        guard isPresent else {
            rangeInPiece = range
            isPresent = true
            return
        }
        appendLine(copying: UnsafeRawBufferPointer(rebasing: piece[range]), of: piece)
    }

    mutating func appendLine(copying bytes: UnsafeRawBufferPointer, of piece: UnsafeRawBufferPointer) {
        guard !isTooLong else { return }
        if isPresent {
            detach(from: piece)
            append(CollectionOfOne(0x0A))
        }
        isPresent = true
        append(bytes)
    }

    private mutating func append(_ bytes: some Collection<UInt8>) {
        guard !isTooLong else { return }
        guard owned.count + bytes.count <= limit else {
            markTooLong()
            return
        }
        owned.append(contentsOf: bytes)
    }

    /// Copies the value out of the piece, before the piece goes away.
    mutating func detach(from piece: UnsafeRawBufferPointer) {
        guard let range = rangeInPiece else { return }
        rangeInPiece = nil
        append(UnsafeRawBufferPointer(rebasing: piece[range]))
    }

    func withBytes<Result>(in piece: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) -> Result) -> Result {
        if let range = rangeInPiece {
            return body(UnsafeRawBufferPointer(rebasing: piece[range]))
        }
        return owned.withUnsafeBytes(body)
    }
}

/// The bytes of one piece to forward while withholding: a single range of the piece when possible (no
/// copy), assembled into a new buffer only when held-back bytes or a gap make that impossible.
private struct ForwardedBytes {
    private var range: Range<Int> = 0..<0
    private var assembled: ByteBuffer?

    /// Forwards `piece[next]`, the end of a segment whose earlier bytes were `heldCount` held-back bytes,
    /// minus `removal` (in segment coordinates).
    mutating func forward(_ next: Range<Int>, of piece: UnsafeRawBufferPointer, removing removal: Range<Int>?, heldCount: Int) {
        guard let removal else {
            forward(next, of: piece)
            return
        }
        let segmentStart = next.lowerBound - heldCount
        let cut = Swift.min(Swift.max(removal.lowerBound + segmentStart, next.lowerBound), next.upperBound)
            ..< Swift.min(Swift.max(removal.upperBound + segmentStart, next.lowerBound), next.upperBound)
        forward(next.lowerBound..<cut.lowerBound, of: piece)
        forward(cut.upperBound..<next.upperBound, of: piece)
    }

    mutating func forward(_ next: Range<Int>, of piece: UnsafeRawBufferPointer) {
        guard !next.isEmpty else { return }
        if assembled == nil {
            if range.isEmpty {
                range = next
                return
            }
            if range.upperBound == next.lowerBound {
                range = range.lowerBound..<next.upperBound
                return
            }
            materialize(piece)
        }
        assembled!.writeBytes(UnsafeRawBufferPointer(rebasing: piece[next]))
    }

    /// Forwards held-back bytes of earlier pieces (they come before anything of this piece), minus `removal`
    /// (in segment coordinates: the held bytes are the segment's first ones), and empties them.
    mutating func forward(_ held: inout ByteBuffer, removing removal: Range<Int>? = nil, of piece: UnsafeRawBufferPointer) {
        guard held.readableBytes > 0 else { return }
        if assembled == nil {
            materialize(piece, extraCapacity: held.readableBytes)
        }
        if let removal {
            let count = held.readableBytes
            let cut = Swift.min(removal.lowerBound, count)..<Swift.min(removal.upperBound, count)
            held.withUnsafeReadableBytes { bytes in
                assembled!.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[..<cut.lowerBound]))
                assembled!.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[cut.upperBound...]))
            }
            held.moveReaderIndex(forwardBy: count)
        } else {
            assembled!.writeBuffer(&held)
        }
        held.emptyForReuse()
    }

    private mutating func materialize(_ piece: UnsafeRawBufferPointer, extraCapacity: Int = 0) {
        var buffer = ByteBufferAllocator().buffer(capacity: range.count + piece.count + extraCapacity)
        buffer.writeBytes(UnsafeRawBufferPointer(rebasing: piece[range]))
        assembled = buffer
        range = 0..<0
    }

    /// The bytes gathered so far when they had to be assembled.
    var assembledBytes: ByteBuffer? { assembled }

    func result(pieceCount: Int) -> SSEForwarding {
        if let assembled { return .assembled(assembled) }
        if range == 0..<pieceCount { return .everything }
        return .range(range)
    }
}
