import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import OllamaMetricsProxy

/// Random well-formed responses, several on one keep-alive connection, through `UpstreamResponseParser`:
/// fed whole, one byte at a time and in seeded random pieces, it reads exactly the heads, bodies and trailers
/// that were written; and NIO's own `HTTPResponseDecoder` reads the same.
@Suite("Upstream response parser: random responses")
struct UpstreamResponseParserPropertyTests {
    typealias Event = UpstreamResponseInvariants.Event

    @Test func randomResponsesAreReadAsWrittenWhateverTheCuts() {
        PropertyRuns.check("randomResponsesAreReadAsWrittenWhateverTheCuts", defaultRuns: 300) { run in
            let connection = RandomConnection(&run.random, forNIO: false)
            run.note("requests \(connection.requests): \(describe(connection.bytes, limit: 2000))")
            let count = connection.bytes.count
            var pieces = [[0..<count], PieceSplits.random(of: count, seed: run.random.next()), Self.pieces(of: count, &run.random)]
            // One byte at a time costs the most, and long bodies add nothing to what it tests.
            if count <= 4096 { pieces.append((0..<count).map { $0..<($0 + 1) }) }
            for cut in pieces {
                do {
                    let events = try UpstreamResponseInvariants.transcript(connection.bytes, pieces: cut, plan: connection.plan)
                    run.expect(
                        events == connection.expected,
                        "pieces \(cut.map(\.count)): \(UpstreamResponseInvariants.difference(events, connection.expected))"
                    )
                } catch {
                    run.fail("pieces \(cut.map(\.count)): \(error)")
                }
            }
        }
    }

    @Test func nioReadsRandomResponsesAsTheParserDoes() {
        PropertyRuns.check("nioReadsRandomResponsesAsTheParserDoes", defaultRuns: 300) { run in
            let connection = RandomConnection(&run.random, forNIO: true)
            run.note("requests \(connection.requests): \(describe(connection.bytes, limit: 2000))")
            let count = connection.bytes.count
            do {
                let parser = try UpstreamResponseInvariants.transcript(
                    connection.bytes, pieces: Self.pieces(of: count, &run.random), plan: connection.plan
                )
                let nio = try Self.nioEvents(connection.bytes, requests: connection.requests)
                run.expect(
                    parser == connection.expected, "parser: \(UpstreamResponseInvariants.difference(parser, connection.expected))"
                )
                // NIO's decoder keeps no reason phrase but the standard one of a known code.
                let parserWithoutReasons = parser.map(Self.withoutReason)
                let nioWithoutReasons = nio.map(Self.withoutReason)
                run.expect(
                    nioWithoutReasons == parserWithoutReasons,
                    "NIO: \(UpstreamResponseInvariants.difference(nioWithoutReasons, parserWithoutReasons))"
                )
            } catch {
                run.fail("\(error)")
            }
        }
    }

    /// Reads of 1 to 300 bytes.
    static func pieces(of count: Int, _ random: inout SeededRandom) -> [Range<Int>] {
        var pieces: [Range<Int>] = []
        var start = 0
        while start < count {
            let end = min(count, start + random.int(in: 1...300))
            pieces.append(start..<end)
            start = end
        }
        return pieces
    }

    static func withoutReason(_ event: Event) -> Event {
        guard case .head(var head) = event else { return event }
        head.reason = ""
        return .head(head)
    }

    /// What NIO's `HTTPResponseDecoder` reads of `bytes`, in a client pipeline that has sent `requests`
    /// (true: HEAD), and that is then closed.
    static func nioEvents(_ bytes: [UInt8], requests: [Bool]) throws -> [Event] {
        let channel = EmbeddedChannel()
        defer { _ = try? channel.finish(acceptAlreadyClosed: true) }
        try channel.pipeline.syncOperations.addHandler(HTTPRequestEncoder())
        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(HTTPResponseDecoder()))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 11434)).wait()
        for toHEAD in requests {
            let head = HTTPRequestHead(version: .http1_1, method: toHEAD ? .HEAD : .GET, uri: "/api/tags")
            try channel.writeOutbound(HTTPClientRequestPart.head(head))
            try channel.writeOutbound(HTTPClientRequestPart.end(nil))
        }
        var events: [Event] = []
        try channel.writeInbound(ByteBuffer(bytes: bytes))
        try channel.close().wait()
        while let part = try channel.readInbound(as: HTTPClientResponsePart.self) {
            UpstreamResponseInvariants.append(part, to: &events)
        }
        return events
    }
}

/// One to four well-formed responses on one connection, with the events a correct reader hands out: every
/// framing (Content-Length, chunked with extensions, odd hex and trailers, delimited by the close for the
/// last), responses without a body (to HEAD, 204, 304) that still name a length, informational heads before
/// the final one, header fields with surrounding whitespace and repeated names, body bytes of any value.
struct RandomConnection {
    private(set) var bytes: [UInt8] = []
    private(set) var requests: [Bool] = []
    private(set) var expected: [Event] = []

    typealias Event = UpstreamResponseInvariants.Event
    typealias Field = UpstreamResponseInvariants.Field

    var plan: UpstreamResponseInvariants.Plan { .init(requests: requests) }

    private enum Framing: CaseIterable {
        case length, chunked, close
    }

    /// `forNIO`: only what llhttp reads as this parser does. It refuses a line ended by LF alone, a repeated
    /// Content-Length, bytes after an HTTP/1.0 response and whitespace in a chunk-size line, and it keeps
    /// whitespace after a field value.
    init(_ random: inout SeededRandom, forNIO: Bool) {
        let count = random.int(in: 1...4)
        for index in 0..<count {
            appendResponse(&random, isLast: index == count - 1, forNIO: forNIO)
        }
    }

    private mutating func appendResponse(_ random: inout SeededRandom, isLast: Bool, forNIO: Bool) {
        let newline = !forNIO && random.oneIn(6) ? "\n" : "\r\n"
        let toHEAD = random.oneIn(6)
        requests.append(toHEAD)
        for _ in 0..<(random.oneIn(5) ? random.int(in: 1...2) : 0) {
            let code = random.pick([100, 102, 103])
            _ = appendHead(&random, version: "1.1", code: code, framing: [], newline: newline, forNIO: forNIO)
        }
        let code = random.pick([200, 200, 200, 201, 400, 404, 500, 299, 204, 304])
        let hasBody = !toHEAD && code != 204 && code != 304
        let framing = random.pick(hasBody && !isLast ? [Framing.length, .chunked] : Framing.allCases)
        let version = isLast && random.oneIn(4) ? "1.0" : "1.1"
        let body = Self.body(&random)
        var framingFields: [(String, String)] = []
        switch framing {
        case .length:
            let length = String(hasBody ? body.count : random.int(in: 0...100))
            framingFields.append(("Content-Length", length))
            if !forNIO && random.oneIn(6) { framingFields.append(("content-length", length)) }
        case .chunked:
            framingFields.append(("Transfer-Encoding", random.pick(["chunked", "Chunked", "gzip, chunked"])))
        case .close:
            if random.oneIn(3) { framingFields.append(("Transfer-Encoding", "gzip")) }
        }
        expected.append(
            appendHead(&random, version: version, code: code, framing: framingFields, newline: newline, forNIO: forNIO)
        )
        guard hasBody else {
            expected.append(.end(trailers: nil))
            return
        }
        if !body.isEmpty { expected.append(.body(body)) }
        switch framing {
        case .length, .close:
            bytes += body
            expected.append(.end(trailers: nil))
        case .chunked:
            appendChunks(of: body, &random, newline: newline, forNIO: forNIO)
        }
    }

    /// Writes a head with random fields around `framing`; returns the event it reads as.
    private mutating func appendHead(
        _ random: inout SeededRandom, version: String, code: Int, framing: [(String, String)], newline: String, forNIO: Bool
    ) -> Event {
        let reason = random.pick(["", "OK", "Custom Reason", HTTPResponseStatus(statusCode: code).reasonPhrase])
        var text = "HTTP/\(version) \(code)" + (reason.isEmpty && random.bool() ? "" : " \(reason)") + newline
        var fields = Self.fields(&random)
        for field in framing {
            fields.insert(field, at: random.int(in: 0...fields.count))
        }
        for (name, value) in fields {
            let before = random.pick(["", "", " ", "  ", "\t"])
            let after = forNIO ? "" : random.pick(["", "", "", " ", "\t "])
            text += name + ":" + before + value + after + newline
        }
        bytes += Array((text + newline).utf8)
        let head = HTTPResponseHead(
            version: version == "1.0" ? .http1_0 : .http1_1,
            status: HTTPResponseStatus(statusCode: code, reasonPhrase: reason),
            headers: HTTPHeaders(fields)
        )
        return .head(UpstreamResponseInvariants.Head(head))
    }

    private mutating func appendChunks(of body: [UInt8], _ random: inout SeededRandom, newline: String, forNIO: Bool) {
        var rest = body[...]
        while !rest.isEmpty {
            let size = min(rest.count, random.pick([1, 2, 7, 16, 100, 1000, rest.count]))
            bytes += Array((Self.sizeLine(size, &random, forNIO: forNIO) + newline).utf8)
            bytes += rest.prefix(size)
            bytes += Array(newline.utf8)
            rest = rest.dropFirst(size)
        }
        bytes += Array((Self.sizeLine(0, &random, forNIO: forNIO) + newline).utf8)
        let trailers = random.oneIn(3) ? Self.fields(&random) : []
        for (name, value) in trailers {
            bytes += Array((name + ": " + value + newline).utf8)
        }
        bytes += Array(newline.utf8)
        expected.append(.end(trailers: trailers.isEmpty ? nil : trailers.map { Field(name: $0.0, value: $0.1) }))
    }

    /// A chunk-size line: hex in either case, maybe zero-padded, maybe with extensions.
    private static func sizeLine(_ size: Int, _ random: inout SeededRandom, forNIO: Bool) -> String {
        let zeros = String(repeating: "0", count: random.oneIn(4) ? random.int(in: 1...3) : 0)
        let digits = String(size, radix: 16, uppercase: random.bool())
        var extensions = [";a=b", #";a=b;c="x;y""#, ";name", #";q="\"""#, ";x=y;z"]
        if !forNIO { extensions += [" ;a=b", "\t;s"] }
        return zeros + digits + (random.oneIn(4) ? random.pick(extensions) : "")
    }

    /// Header fields in random order: a few of Ollama's, random tokens, names repeated.
    private static func fields(_ random: inout SeededRandom) -> [(String, String)] {
        var fields: [(String, String)] = []
        for _ in 0..<random.int(in: 0...5) {
            switch random.below(4) {
            case 0:
                fields.append(
                    random.pick([
                        ("Content-Type", "application/x-ndjson"), ("Content-Type", "text/event-stream"),
                        ("Date", "Mon, 01 Jun 2026 12:00:00 GMT"), ("Cache-Control", "no-cache"), ("X-Empty", ""),
                    ])
                )
            case 1 where !fields.isEmpty:
                fields.append((random.pick(fields).0, token(&random, from: valueCharacters)))
            default:
                var name = token(&random, from: nameCharacters)
                while reservedNames.contains(name.lowercased()) { name += "x" }
                fields.append((name, token(&random, from: valueCharacters)))
            }
        }
        return fields
    }

    /// Names whose fields frame the body or ask for an upgrade.
    private static let reservedNames: Set<String> = ["content-length", "transfer-encoding", "connection", "upgrade"]
    private static let nameCharacters = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.!#$%&'*+^`|~")
    /// Visible ASCII, and spaces and tabs inside a value.
    private static let valueCharacters = (0x21...0x7E).map { Character(Unicode.Scalar(UInt8($0))) } + [" ", "\t"]

    private static func token(_ random: inout SeededRandom, from characters: [Character]) -> String {
        var text = String((0..<random.int(in: 1...12)).map { _ in random.pick(characters) })
        // No whitespace at either end: it is not part of a value.
        while let last = text.last, last == " " || last == "\t" { text.removeLast() }
        while let first = text.first, first == " " || first == "\t" { text.removeFirst() }
        return text.isEmpty ? "v" : text
    }

    /// Empty, short or long, of any byte values.
    private static func body(_ random: inout SeededRandom) -> [UInt8] {
        let count = random.pick([0, random.int(in: 1...40), random.int(in: 1...400), random.int(in: 1000...5000)])
        return (0..<count).map { _ in UInt8(truncatingIfNeeded: random.next()) }
    }
}
