import NIOCore
@testable import OllamaMetricsProxy

/// The framing layers on their own, with consumers that take every branch a real reader could: the
/// `SSEEventSplitter` (events, and withholding of any event kind at any position, at any size limit) and the
/// `StreamingObjectReader` (NDJSON lines and single documents).
///
/// Invariants: the events and members seen are the same for every cut of the body; the splitter's events
/// are those of `ReferenceEventStream`; its forwarded bytes are the body when not withholding, and otherwise
/// the body with exactly the segments and ranges the consumer asked to withhold taken out (a segment larger
/// than the size limit may instead pass through whole, as documented).
enum SplitterInvariants {
    /// Size limits to exercise the oversized-line and pass-through paths with short inputs.
    static let sizeLimits = [SSEEventSplitter.defaultSizeLimit, 8, 40, 200]

    /// Header: a mode byte (bit 0: object reader instead of events; bit 1: withholding, or line-delimited
    /// for the object reader; bits 2–3: the event size limit), the cut seed, the consumer seed.
    static func check(_ input: [UInt8], _ thoroughness: PieceSplits.Thoroughness) throws(InvariantViolation) {
        guard input.count >= 3 else { return }
        let mode = input[0]
        let body = Array(input[3...])
        let cuts = PieceSplits.cuts(of: body.count, seed: input[1], thoroughness)
        if mode & 1 == 0 {
            let sizeLimit = sizeLimits[Int(mode >> 2) & 3]
            try checkEvents(body, isWithholding: mode & 2 != 0, sizeLimit: sizeLimit, consumerSeed: input[2], cuts: cuts)
        } else {
            try checkObjects(body, isLineDelimited: mode & 2 != 0, consumerSeed: input[2], cuts: cuts)
        }
    }

    // MARK: Events

    static func checkEvents(
        _ body: [UInt8], isWithholding: Bool, sizeLimit: Int, consumerSeed: UInt8, cuts: [[Range<Int>]]
    ) throws(InvariantViolation) {
        let reference = ReferenceEventStream(body, sizeLimit: sizeLimit)
        let alternatives = reference.segments.map { segment in
            forwardingAlternatives(segment, of: body, sizeLimit: sizeLimit, seed: consumerSeed)
        }
        for pieces in [[0..<body.count]] + cuts {
            let run = try splitEvents(body, pieces, isWithholding: isWithholding, sizeLimit: sizeLimit, seed: consumerSeed)
            try InvariantViolation.check(
                run.events == reference.events,
                "events differ from the reference for pieces \(pieces.map(\.count)): \(run.events.count) vs \(reference.events.count)"
            )
            if isWithholding {
                try InvariantViolation.check(
                    SegmentAlignment.matches(run.forwarded, alternatives: alternatives),
                    "withheld bytes are not the body minus the withheld events for pieces \(pieces.map(\.count)): \(describe(run.forwarded))"
                )
            } else {
                try InvariantViolation.check(
                    run.forwarded == body, "bytes out differ from bytes in for pieces \(pieces.map(\.count))"
                )
            }
        }
    }

    /// What may reach the client of one segment when withholding.
    static func forwardingAlternatives(
        _ segment: ReferenceEventStream.Segment, of body: [UInt8], sizeLimit: Int, seed: UInt8
    ) -> [[UInt8]] {
        let whole = Array(body[segment.range])
        guard let event = segment.event else { return [whole] }
        var expected = whole
        switch RecordingEventConsumer.kind(of: event.data, seed: seed) {
        case .ordinary:
            break
        case .usageOnly:
            expected = []
        case .ordinaryWithout(let removal):
            if let dataStart = segment.singleDataLineStart {
                let start = dataStart - segment.range.lowerBound
                expected.removeSubrange((start + removal.lowerBound)..<(start + removal.upperBound))
            }
        }
        // A segment larger than the limit is forwarded as it arrives, whole, once it outgrows the limit.
        return segment.range.count > sizeLimit ? [expected, whole] : [expected]
    }

    static func splitEvents(
        _ body: [UInt8], _ pieces: [Range<Int>], isWithholding: Bool, sizeLimit: Int, seed: UInt8
    ) throws(InvariantViolation) -> (forwarded: [UInt8], events: [ReferenceEventStream.Event]) {
        var splitter = SSEEventSplitter(isWithholding: isWithholding, sizeLimit: sizeLimit)
        var consumer = RecordingEventConsumer(seed: seed)
        var forwarded: [UInt8] = []
        for piece in pieces {
            let bytes = Array(body[piece])
            let forwarding = bytes.withUnsafeBytes { splitter.feed($0, into: &consumer) }
            switch forwarding {
            case .everything:
                forwarded += bytes
            case .range(let range):
                try InvariantViolation.check(isWithholding, "a range forwarded while not withholding")
                try InvariantViolation.check(range.upperBound <= bytes.count, "a forwarded range \(range) outside a piece of \(bytes.count)")
                forwarded += bytes[range]
            case .assembled(let buffer):
                try InvariantViolation.check(isWithholding, "bytes assembled while not withholding")
                forwarded += buffer.readableBytesView
            }
        }
        if let rest = splitter.finish(into: &consumer) {
            try InvariantViolation.check(isWithholding, "bytes held back while not withholding")
            forwarded += rest.readableBytesView
        }
        return (forwarded, consumer.events)
    }

    // MARK: Objects

    static func checkObjects(
        _ body: [UInt8], isLineDelimited: Bool, consumerSeed: UInt8, cuts: [[Range<Int>]]
    ) throws(InvariantViolation) {
        let whole = readObjects(body, [0..<body.count], isLineDelimited: isLineDelimited, seed: consumerSeed)
        try checkShape(whole, of: body, isLineDelimited: isLineDelimited)
        for pieces in cuts {
            let log = readObjects(body, pieces, isLineDelimited: isLineDelimited, seed: consumerSeed)
            try InvariantViolation.check(
                log == whole, "objects read differ for pieces \(pieces.map(\.count)): \(log.count) vs \(whole.count) entries"
            )
        }
    }

    /// Members belong to a begun object, an object ends at most once, a line holds at most one object,
    /// and captured values are whole values (or the prefix asked for).
    static func checkShape(
        _ log: [RecordingMemberConsumer.Entry], of body: [UInt8], isLineDelimited: Bool
    ) throws(InvariantViolation) {
        var isOpen = false
        var ends = 0
        for entry in log {
            switch entry {
            case .begin:
                isOpen = true
            case .member(let id, let value):
                try InvariantViolation.check(isOpen, "a member outside an object")
                let limit = RecordingMemberConsumer.capturesPrefixOnly(id)
                    ? StreamingObjectReader.prefixCaptureLimit : StreamingObjectReader.captureLimit
                try InvariantViolation.check(value.count <= limit, "a captured value of \(value.count) bytes")
                try InvariantViolation.check(
                    value.first.map { Array(#"{["-0123456789tfn"#.utf8).contains($0) } ?? false,
                    "a captured value that is no JSON value: \(describe(value))"
                )
            case .end:
                try InvariantViolation.check(isOpen, "an object ended twice")
                isOpen = false
                ends += 1
            }
        }
        if isLineDelimited {
            let lines = body.count(where: { $0 == 0x0A }) + 1
            try InvariantViolation.check(ends <= lines, "\(ends) objects in \(lines) lines")
        }
    }

    static func readObjects(
        _ body: [UInt8], _ pieces: [Range<Int>], isLineDelimited: Bool, seed: UInt8
    ) -> [RecordingMemberConsumer.Entry] {
        var reader = StreamingObjectReader(isLineDelimited: isLineDelimited)
        var consumer = RecordingMemberConsumer(seed: seed)
        for piece in pieces {
            Array(body[piece]).withUnsafeBytes { reader.feed($0, into: &consumer) }
        }
        reader.finish(into: &consumer)
        return consumer.log
    }
}

/// FNV-1a over some bytes and a seed: the consumers' decisions depend on what they are shown, never on
/// how it was cut.
private func fingerprint(_ bytes: some Sequence<UInt8>, seed: UInt8) -> UInt32 {
    var hash: UInt32 = 2_166_136_261 ^ UInt32(seed)
    for byte in bytes {
        hash = (hash ^ UInt32(byte)) &* 16_777_619
    }
    return hash
}

/// Records every event and classifies each as ordinary, usage-only or carrying a range to remove.
struct RecordingEventConsumer: SSEEventConsumer {
    let seed: UInt8
    private(set) var events: [ReferenceEventStream.Event] = []

    init(seed: UInt8) {
        self.seed = seed
    }

    mutating func event(type: UnsafeRawBufferPointer, data: UnsafeRawBufferPointer) -> SSEEventKind {
        events.append(ReferenceEventStream.Event(type: Array(type), data: Array(data)))
        return Self.kind(of: data, seed: seed)
    }

    static func kind(of data: some Collection<UInt8>, seed: UInt8) -> SSEEventKind {
        let hash = fingerprint(data, seed: seed)
        switch hash % 3 {
        case 0:
            return .ordinary
        case 1:
            return .usageOnly
        default:
            let start = Int(hash >> 4) % (data.count + 1)
            let length = Int(hash >> 16) % (data.count - start + 1)
            return .ordinaryWithout(start..<(start + length))
        }
    }
}

/// Records every object and captured member, asking for some keys' values (whole or their prefix) and
/// abandoning some objects after a member, as the dialect readers do.
struct RecordingMemberConsumer: ObjectMemberConsumer {
    enum Entry: Equatable {
        case begin
        case member(UInt8, [UInt8])
        case end
    }

    let seed: UInt8
    private(set) var log: [Entry] = []

    init(seed: UInt8) {
        self.seed = seed
    }

    mutating func objectDidBegin() {
        log.append(.begin)
    }

    func memberID(forKey key: UnsafeRawBufferPointer) -> UInt8? {
        let hash = fingerprint(key, seed: seed)
        return hash % 4 == 0 ? nil : UInt8(truncatingIfNeeded: hash >> 8)
    }

    func capturesPrefixOnly(_ id: UInt8) -> Bool {
        Self.capturesPrefixOnly(id)
    }

    static func capturesPrefixOnly(_ id: UInt8) -> Bool {
        id % 3 == 0
    }

    mutating func member(_ id: UInt8, value: UnsafeRawBufferPointer) -> Bool {
        log.append(.member(id, Array(value)))
        return fingerprint(value, seed: seed) % 8 != 0
    }

    mutating func objectDidEnd() {
        log.append(.end)
    }
}
