/// A second, deliberately plain reading of a whole `text/event-stream` body, following the rules
/// `SSEEventSplitter` documents (the HTML standard's, plus its size limit and the dispatch of an unterminated
/// last event): the oracle the splitter and the inspector's withholding are checked against.
///
/// It sees the body whole, line by line, and copies freely: nothing of the splitter's piece handling,
/// held-back bytes or in-place references is shared with it.
struct ReferenceEventStream {
    struct Event: Equatable {
        var type: [UInt8]
        var data: [UInt8]
    }

    /// A forwarding unit: an event's lines and its terminating blank line (or the unterminated rest of the
    /// body), with the event it dispatched, if any.
    struct Segment {
        var range: Range<Int>
        var event: Event?
        /// Where the event's data starts in the body, when it came from a single `data:` line: where the
        /// splitter may cut out the range a consumer asked to remove.
        var singleDataLineStart: Int?
    }

    private(set) var segments: [Segment] = []

    var events: [Event] { segments.compactMap(\.event) }

    init(_ body: [UInt8], sizeLimit: Int) {
        var fields = PendingFields()
        var segmentStart = 0
        var index = 0
        let end = body.count
        while index < end {
            let lineStart = index
            while index < end, body[index] != 0x0A, body[index] != 0x0D {
                index += 1
            }
            let line = lineStart..<index
            guard index < end else {
                fields.read(body, line, sizeLimit: sizeLimit)
                break
            }
            index += body[index] == 0x0D && index + 1 < end && body[index + 1] == 0x0A ? 2 : 1
            if line.isEmpty {
                segments.append(fields.dispatch(segment: segmentStart..<index))
                segmentStart = index
            } else {
                fields.read(body, line, sizeLimit: sizeLimit)
            }
        }
        if segmentStart < end {
            segments.append(fields.dispatch(segment: segmentStart..<end))
        }
    }

    /// The fields of the event being read.
    private struct PendingFields {
        var type: [UInt8] = []
        var data: [UInt8] = []
        var hasData = false
        var dataIsTooLong = false
        var dataLineCount = 0
        var lastDataStart = 0

        mutating func read(_ body: [UInt8], _ line: Range<Int>, sizeLimit: Int) {
            if line.count > sizeLimit {
                // Dropped; unless it was a comment it may have been data, so the event cannot be read.
                if body[line.lowerBound] != UInt8(ascii: ":") {
                    hasData = true
                    dataIsTooLong = true
                }
                return
            }
            if body[line.lowerBound] == UInt8(ascii: ":") { return }
            let colon = body[line].firstIndex(of: UInt8(ascii: ":")) ?? line.upperBound
            var valueStart = Swift.min(colon + 1, line.upperBound)
            if valueStart < line.upperBound, body[valueStart] == UInt8(ascii: " ") {
                valueStart += 1
            }
            let name = Array(body[line.lowerBound..<colon])
            let value = Array(body[valueStart..<line.upperBound])
            if name == Array("data".utf8) {
                dataLineCount += 1
                lastDataStart = valueStart
                if dataIsTooLong {
                    return
                } else if hasData {
                    if data.count + 1 + value.count > sizeLimit {
                        dataIsTooLong = true
                        data = []
                    } else {
                        data += [0x0A] + value
                    }
                } else {
                    data = value
                    hasData = true
                }
            } else if name == Array("event".utf8) {
                type = value
            }
        }

        mutating func dispatch(segment: Range<Int>) -> Segment {
            defer { self = PendingFields() }
            guard hasData, !dataIsTooLong else {
                return Segment(range: segment, event: nil, singleDataLineStart: nil)
            }
            return Segment(
                range: segment, event: Event(type: type, data: data),
                singleDataLineStart: dataLineCount == 1 ? lastDataStart : nil
            )
        }
    }
}
