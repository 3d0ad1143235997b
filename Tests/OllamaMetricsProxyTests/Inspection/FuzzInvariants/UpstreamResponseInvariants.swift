import NIOCore
import NIOHTTP1
@testable import OllamaMetricsProxy

/// The bytes of one upstream connection through `UpstreamResponseParser`, driven as the proxy drives it:
/// `expectResponse(toHEAD:)` before the first request and again after each `.end`, every read fed and then
/// drained with `next()`, `inputEnded()` when the connection closes.
///
/// Invariants: nothing traps. Parts come as head, body…, end, one head at most per request, no empty body
/// part; after an error nothing more (`next()` and `inputEnded()` give nil, whatever is fed). The body parts
/// are bytes of the input, in order, without overlap: never more than came in. `isMidResponse` tells whether
/// a response is awaited or under way, and after `inputEnded()` none is; a close cuts a response only with an
/// error (`closedMidHead` before its head, `closedMidBody` after), or ends it (a body delimited by the close).
///
/// For every cut of the input the transcript is that of the input fed whole: the heads, the body bytes
/// between them (body parts merged: how they are cut is free), the ends with their trailers, and the error.
/// No error may depend on the cuts, not even in kind: the parser judges whole lines and whole heads only (an
/// incomplete one waits for more bytes), and it applies its limits (80 KiB of head or of trailers, 4 KiB of
/// chunk-size line) to a prefix of the input that is the same whatever the cuts. What the cuts may change is
/// only when an error is thrown, and how many body parts there are.
enum UpstreamResponseInvariants {
    /// The requests sent on the connection, chosen by the header byte: bits 0–3 whether requests 1–4 (and
    /// 5–7, as 1–3) are HEAD requests, bits 4–6 how many requests (0: bytes arrive with none), bit 7 set: the
    /// connection stays open after the last byte (no `inputEnded()`).
    struct Plan {
        var requests: [Bool]
        var closes: Bool

        init(requests: [Bool], closes: Bool = true) {
            self.requests = requests
            self.closes = closes
        }

        init(header: UInt8) {
            let count = Int(header >> 4) & 7
            self.requests = (0..<count).map { header & (1 << ($0 % 4)) != 0 }
            self.closes = header & 0x80 == 0
        }
    }

    struct Field: Equatable, CustomStringConvertible {
        var name: String
        var value: String

        var description: String { "\(name): \(value)" }

        static func fields(_ headers: HTTPHeaders) -> [Field] {
            headers.map { Field(name: $0.name, value: $0.value) }
        }
    }

    /// A response head, its fields in order (`HTTPHeaders`' own `==` ignores their order).
    struct Head: Equatable, CustomStringConvertible {
        var version: HTTPVersion
        var code: UInt
        var reason: String
        var fields: [Field]

        init(_ head: HTTPResponseHead) {
            self.version = head.version
            self.code = head.status.code
            self.reason = head.status.reasonPhrase
            self.fields = Field.fields(head.headers)
        }

        var description: String { "\(version) \(code) \(reason) \(fields)" }
    }

    /// What the parser handed out; consecutive body parts are merged into one.
    enum Event: Equatable, CustomStringConvertible {
        case head(Head)
        case body([UInt8])
        case end(trailers: [Field]?)
        case failed(UpstreamResponseParser.Error)

        var description: String {
            switch self {
            case .head(let head): "head(\(head))"
            case .body(let bytes): "body(\(describe(bytes, limit: 80)))"
            case .end(let trailers): "end(\(trailers.map(\.description) ?? "nil"))"
            case .failed(let error): "failed(\(error))"
            }
        }
    }

    /// Header: the plan byte, the cut seed; then the bytes the connection receives.
    static func check(_ input: [UInt8], _ thoroughness: PieceSplits.Thoroughness) throws(InvariantViolation) {
        guard input.count >= 2 else { return }
        let bytes = Array(input[2...])
        _ = try check(bytes, plan: Plan(header: input[0]), cuts: PieceSplits.cuts(of: bytes.count, seed: input[1], thoroughness))
    }

    /// Checks `bytes` fed whole and then in each of `cuts`; returns the transcript of the whole.
    static func check(_ bytes: [UInt8], plan: Plan, cuts: [[Range<Int>]]) throws(InvariantViolation) -> [Event] {
        let whole = try run(bytes, pieces: [0..<bytes.count], plan: plan)
        try checkBodyPartsAreInputBytes(whole.bodyParts, of: bytes)
        for pieces in cuts {
            let cut = try transcript(bytes, pieces: pieces, plan: plan)
            try InvariantViolation.check(
                cut == whole.events, "pieces \(pieces.map(\.count)) give \(difference(cut, whole.events))"
            )
        }
        return whole.events
    }

    /// The transcript of `bytes` received in `pieces` (one read each), checking every invariant of one run.
    static func transcript(_ bytes: [UInt8], pieces: [Range<Int>], plan: Plan) throws(InvariantViolation) -> [Event] {
        try run(bytes, pieces: pieces, plan: plan).events
    }

    static func run(
        _ bytes: [UInt8], pieces: [Range<Int>], plan: Plan
    ) throws(InvariantViolation) -> (events: [Event], bodyParts: [[UInt8]]) {
        var connection = Connection(plan: plan)
        for piece in pieces {
            var read = ByteBufferAllocator().buffer(capacity: piece.count)
            read.writeBytes(bytes[piece])
            connection.parser.feed(read)
            try connection.drain()
        }
        if plan.closes { try connection.close() }
        return (connection.events, connection.bodyParts)
    }

    /// Appends what `part` says to `events`, merging a body part into the body before it.
    static func append(_ part: HTTPClientResponsePart, to events: inout [Event]) {
        switch part {
        case .head(let head):
            events.append(.head(Head(head)))
        case .body(let buffer):
            if case .body(var previous) = events.last {
                // Taken out first, so that it grows in place: a body read one byte at a time stays linear.
                events.removeLast()
                previous += buffer.readableBytesView
                events.append(.body(previous))
            } else {
                events.append(.body(Array(buffer.readableBytesView)))
            }
        case .end(let trailers):
            events.append(.end(trailers: trailers.map(Field.fields)))
        }
    }

    /// The first event where `events` leave `expected`.
    static func difference(_ events: [Event], _ expected: [Event]) -> String {
        let common = min(events.count, expected.count)
        let index = (0..<common).first { events[$0] != expected[$0] } ?? common
        let got = index < events.count ? events[index].description : "nothing more"
        let wanted = index < expected.count ? expected[index].description : "nothing more"
        return "at event \(index) \(got), the whole input \(wanted) (\(events.count) vs \(expected.count) events)"
    }

    /// Each part is found in the input after the previous one (the leftmost match: if any placement in order
    /// exists, this finds one).
    static func checkBodyPartsAreInputBytes(_ parts: [[UInt8]], of input: [UInt8]) throws(InvariantViolation) {
        let total = parts.reduce(0) { $0 + $1.count }
        try InvariantViolation.check(total <= input.count, "\(total) body bytes out of \(input.count) bytes in")
        var cursor = 0
        for (index, part) in parts.enumerated() {
            guard let start = firstOccurrence(of: part, in: input, from: cursor) else {
                throw InvariantViolation(
                    description: "body part \(index) is not in the input after the previous ones: \(describe(part, limit: 80))"
                )
            }
            cursor = start + part.count
        }
    }

    private static func firstOccurrence(of part: [UInt8], in input: [UInt8], from start: Int) -> Int? {
        guard input.count - start >= part.count else { return nil }
        return (start...(input.count - part.count)).first { input[$0..<($0 + part.count)].elementsEqual(part) }
    }

    /// The parser and what the proxy knows of the connection.
    private struct Connection {
        let plan: Plan
        var parser = UpstreamResponseParser()
        var events: [Event] = []
        var bodyParts: [[UInt8]] = []
        var requestsSent = 0
        var responsesEnded = 0
        /// A head was handed out, and its end not yet.
        var isInResponse = false
        var hasFailed = false
        var isClosed = false

        init(plan: Plan) {
            self.plan = plan
            self.sendNextRequest()
        }

        mutating func sendNextRequest() {
            guard !isClosed, requestsSent < plan.requests.count else { return }
            parser.expectResponse(toHEAD: plan.requests[requestsSent])
            requestsSent += 1
        }

        /// Every part the bytes fed so far complete.
        mutating func drain() throws(InvariantViolation) {
            while true {
                let part: HTTPClientResponsePart?
                do throws(UpstreamResponseParser.Error) {
                    part = try parser.next()
                } catch {
                    try record(error)
                    return
                }
                guard let part else { break }
                try record(part)
            }
            let awaited = !hasFailed && requestsSent > responsesEnded
            try InvariantViolation.check(
                parser.isMidResponse == awaited,
                "isMidResponse is \(parser.isMidResponse) with \(requestsSent) requests, \(responsesEnded) responses ended"
            )
            try InvariantViolation.check(
                !parser.hasResponseBytes || awaited, "hasResponseBytes with no response awaited"
            )
            try InvariantViolation.check(
                !isInResponse || parser.hasResponseBytes, "no hasResponseBytes after a head"
            )
        }

        mutating func close() throws(InvariantViolation) {
            isClosed = true
            let wasInResponse = isInResponse
            let wasFailed = hasFailed
            switch Result(catching: { () throws(UpstreamResponseParser.Error) in try parser.inputEnded() }) {
            case .success(let part):
                try InvariantViolation.check(
                    part == nil || part == .end(nil), "inputEnded() gave \(String(describing: part))"
                )
                try InvariantViolation.check(
                    part == nil || wasInResponse, "inputEnded() ended a response that had no head"
                )
                try InvariantViolation.check(
                    part != nil || !wasInResponse, "inputEnded() gave nothing in the middle of a body"
                )
                if let part { try record(part) }
            case .failure(let error):
                try InvariantViolation.check(!wasFailed, "inputEnded() threw \(error) after an error")
                let expected: UpstreamResponseParser.Error = wasInResponse ? .closedMidBody : .closedMidHead
                try InvariantViolation.check(error == expected, "inputEnded() threw \(error), expected \(expected)")
                try record(error)
            }
            try InvariantViolation.check(!parser.isMidResponse, "a response under way after inputEnded()")
            let again = Result { () throws(UpstreamResponseParser.Error) in try parser.inputEnded() }
            try InvariantViolation.check(again == .success(nil), "inputEnded() twice gave \(again)")
        }

        mutating func record(_ error: UpstreamResponseParser.Error) throws(InvariantViolation) {
            try InvariantViolation.check(!hasFailed, "\(error) thrown after an error")
            hasFailed = true
            isInResponse = false
            events.append(.failed(error))
            // Nothing more, whatever comes.
            parser.feed(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
            let after = Result { () throws(UpstreamResponseParser.Error) in try parser.next() }
            try InvariantViolation.check(after == .success(nil), "next() after \(error) gave \(after)")
            try InvariantViolation.check(!parser.isMidResponse, "a response under way after \(error)")
        }

        mutating func record(_ part: HTTPClientResponsePart) throws(InvariantViolation) {
            try InvariantViolation.check(!hasFailed, "\(part) after an error")
            switch part {
            case .head:
                try InvariantViolation.check(!isInResponse, "a head in the middle of a response")
                try InvariantViolation.check(
                    responsesEnded < requestsSent, "a head with no request (\(requestsSent) sent, \(responsesEnded) ended)"
                )
                isInResponse = true
            case .body(let buffer):
                try InvariantViolation.check(isInResponse, "a body part outside a response")
                try InvariantViolation.check(buffer.readableBytes > 0, "an empty body part")
                bodyParts.append(Array(buffer.readableBytesView))
            case .end:
                try InvariantViolation.check(isInResponse, "an end outside a response")
                isInResponse = false
                responsesEnded += 1
            }
            UpstreamResponseInvariants.append(part, to: &events)
            if case .end = part { sendNextRequest() }
        }
    }
}
