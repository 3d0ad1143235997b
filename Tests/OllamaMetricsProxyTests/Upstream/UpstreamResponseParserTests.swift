import NIOCore
import NIOHTTP1
import Testing

@testable import OllamaMetricsProxy

private let chunkedHead = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"

/// The framing of Ollama's responses (RFC 9112 §6.3) as `UpstreamResponseParser` reads it. Every example is
/// read whole, in two pieces at every cut and one byte at a time, and must give the same events each way,
/// keeping every invariant of the fuzz target (`UpstreamResponseInvariants`).
@Suite("Upstream response parser")
struct UpstreamResponseParserTests {
    typealias Event = UpstreamResponseInvariants.Event
    typealias ParseError = UpstreamResponseParser.Error

    // MARK: Content-Length

    @Test func contentLengthZeroEndsRightAfterTheHead() {
        #expect(read("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n") == [head(200, ["Content-Length": "0"]), end])
    }

    @Test func contentLengthBodyIsReadToItsLength() {
        let response = "HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: 15\r\n\r\n"
            + #"{"version":"1"}"#
        #expect(
            read(response) == [
                head(200, ["Content-Type": "application/json; charset=utf-8", "Content-Length": "15"]),
                body(#"{"version":"1"}"#), end,
            ]
        )
    }

    @Test func bodyBytesAreHandedOutAsTheyArriveNotHeldToTheEnd() throws {
        var parser = UpstreamResponseParser()
        parser.expectResponse(toHEAD: false)
        parser.feed(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel"))
        #expect(try parser.next() == .head(HTTPResponseHead(version: .http1_1, status: .ok, headers: ["Content-Length": "5"])))
        #expect(try parser.next() == .body(ByteBuffer(string: "hel")))
        #expect(try parser.next() == nil)
        parser.feed(ByteBuffer(string: "lo"))
        #expect(try parser.next() == .body(ByteBuffer(string: "lo")))
        #expect(try parser.next() == .end(nil))
        #expect(try parser.next() == nil)
    }

    @Test(arguments: ["Content-Length: 5\r\nContent-Length: 5", "Content-Length: 5\r\ncontent-length: 5", "Content-Length: 5, 5"])
    func identicalContentLengthsAreOne(_ fields: String) {
        let events = read("HTTP/1.1 200 OK\r\n\(fields)\r\n\r\nhello")
        #expect(events.dropFirst() == [body("hello"), end])
    }

    @Test(arguments: [
        "Content-Length: 5\r\nContent-Length: 6", "Content-Length: 5, 6", "Content-Length: -1", "Content-Length: +5",
        "Content-Length: 0x5", "Content-Length: 5 5", "Content-Length: 1234567890123456789",
        "Content-Length:", "Content-Length: ,", "Content-Length: 5,", "Content-Length: , 5",
    ])
    func conflictingOrMalformedContentLengthIsRefused(_ fields: String) {
        #expect(read("HTTP/1.1 200 OK\r\n\(fields)\r\n\r\nhello") == [.failed(.invalidContentLength)])
    }

    // MARK: Chunked

    @Test func manyChunksInOneReadMakeOneBody() {
        let response = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\n\r\n"
        #expect(read(response) == [head(200, ["Transfer-Encoding": "chunked"]), body("hello world"), end])
    }

    @Test func eachChunkByteIsHandedOutAsItArrives() throws {
        var parser = UpstreamResponseParser()
        parser.expectResponse(toHEAD: false)
        parser.feed(ByteBuffer(string: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"))
        let head = HTTPResponseHead(version: .http1_1, status: .ok, headers: ["Transfer-Encoding": "chunked"])
        #expect(try parser.next() == .head(head))
        for byte in "3\r\nabc\r\n0\r\n\r\n".utf8 {
            parser.feed(ByteBuffer(bytes: [byte]))
            let part = try parser.next()
            switch byte {
            case UInt8(ascii: "a"), UInt8(ascii: "b"), UInt8(ascii: "c"): #expect(part == .body(ByteBuffer(bytes: [byte])))
            default: #expect(part == nil || part == .end(nil))
            }
        }
        #expect(parser.isMidResponse == false)
    }

    @Test(arguments: ["5;a=b;c=\"x;y\"", "5;a", "5;a=\"quoted \\\" string\"", "5 ;a=b", "5\t;a=b"])
    func chunkExtensionsAreSkipped(_ sizeLine: String) {
        let response = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\(sizeLine)\r\nhello\r\n0;last=1\r\n\r\n"
        #expect(read(response).dropFirst() == [body("hello"), end])
    }

    @Test func chunkSizesInEitherCaseOfHexAndWithLeadingZeros() {
        let data = String(repeating: "x", count: 0x1F)
        let response = chunkedHead + "1F\r\n\(data)\r\n001f\r\n\(data)\r\n000000000000001\r\n!\r\n000\r\n\r\n"
        #expect(read(response).dropFirst() == [body(data + data + "!"), end])
    }

    @Test func trailersAreKeptInOrder() {
        let response = chunkedHead + "2\r\nhi\r\n0\r\nX-Checksum: abc\r\nX-Other:  v \r\nX-Checksum: def\r\n\r\n"
        #expect(
            read(response).dropFirst() == [
                body("hi"),
                .end(trailers: [field("X-Checksum", "abc"), field("X-Other", "v"), field("X-Checksum", "def")]),
            ]
        )
    }

    @Test func linesMayEndInLFAlone() {
        let response = "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\r\nX-A: 1\n\n5\nhello\n3\r\n!!!\n0\nX-T: t\n\n"
        #expect(
            read(response) == [
                head(200, ["Transfer-Encoding": "chunked", "X-A": "1"]), body("hello!!!"), .end(trailers: [field("X-T", "t")]),
            ]
        )
    }

    @Test(arguments: [
        "chunked", "Chunked", "CHUNKED", "gzip, chunked", "gzip\r\nTransfer-Encoding: chunked", "chunked, ", "chunked,,",
    ])
    func chunkedAsTheFinalCodingFramesTheBody(_ codings: String) {
        let response = "HTTP/1.1 200 OK\r\nTransfer-Encoding: \(codings)\r\n\r\n2\r\nhi\r\n0\r\n\r\n"
        #expect(read(response).dropFirst() == [body("hi"), end])
    }

    @Test func transferEncodingOverridesContentLength() {
        let response = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n"
        #expect(read(response).dropFirst() == [body("hi"), end])
    }

    @Test(arguments: ["gzip", "chunked, gzip", "identity", ""])
    func transferEncodingWithoutFinalChunkedRunsToTheClose(_ codings: String) {
        let response = "HTTP/1.1 200 OK\r\nTransfer-Encoding: \(codings)\r\nContent-Length: 2\r\n\r\n2\r\nhi\r\n0\r\n\r\n"
        #expect(read(response).dropFirst() == [body("2\r\nhi\r\n0\r\n\r\n"), end])
        #expect(read(response, closes: false).dropFirst() == [body("2\r\nhi\r\n0\r\n\r\n")], "no end without the close")
    }

    // MARK: Delimited by the close

    @Test(arguments: ["HTTP/1.1 200 OK\r\n", "HTTP/1.0 200 OK\r\n"])
    func aBodyWithoutLengthEndsWithTheConnection(_ statusLine: String) {
        let version: HTTPVersion = statusLine.hasPrefix("HTTP/1.0") ? .http1_0 : .http1_1
        let response = statusLine + "Content-Type: text/plain\r\n\r\n404 page not found"
        #expect(read(response) == [head(200, ["Content-Type": "text/plain"], version: version), body("404 page not found"), end])
        #expect(read(response, closes: false).count == 2, "no end while the connection is open")
    }

    @Test func aCloseBeforeAnyByteOfTheAnswerIsNotAParseError() throws {
        var parser = UpstreamResponseParser()
        parser.expectResponse(toHEAD: false)
        #expect(parser.isMidResponse && !parser.hasResponseBytes)
        #expect(try parser.inputEnded() == nil)
        #expect(!parser.isMidResponse)
    }

    // MARK: No body

    @Test(arguments: [
        (true, "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 17\r\n\r\n"),
        (true, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
        (false, "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n"),
        (false, "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n"),
        (false, "HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n"),
        (false, "HTTP/1.1 304 Not Modified\r\n\r\n"),
    ])
    func responsesWithoutBodyEndAtTheirHeadWhateverTheySay(toHEAD: Bool, response: String) {
        let next = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
        let events = read(response + next, requests: [toHEAD, false])
        #expect(events.count == 5)
        #expect(events[1] == end, "no body")
        #expect(events.dropFirst(2) == [head(200, ["Content-Length": "5"]), body("hello"), end], "the next response follows")
    }

    // MARK: Informational responses

    @Test func informationalHeadsAreDropped() {
        let response = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
            + "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"
        #expect(read(response) == [head(200, ["Content-Length": "2"]), body("hi"), end])
        #expect(read(response, requests: [true]) == [head(200, ["Content-Length": "2"]), end, .failed(.unsolicitedResponse)])
    }

    @Test func switchingProtocolsIsRefused() {
        let response = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
        #expect(read(response) == [.failed(.switchingProtocols)])
    }

    // MARK: One connection

    @Test func responsesInSequenceOnAKeepAliveConnection() {
        let first = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"
        let second = chunkedHead + "3\r\nyou\r\n0\r\nX-T: 1\r\n\r\n"
        let third = chunkedHead + "3\r\nall\r\n0\r\n\r\n"
        let fourth = "HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\n\r\nnope"
        #expect(
            read(first + second + third + fourth, requests: [false, false, false, false]) == [
                head(200, ["Content-Length": "2"]), body("hi"), end,
                head(200, ["Transfer-Encoding": "chunked"]), body("you"), .end(trailers: [field("X-T", "1")]),
                head(200, ["Transfer-Encoding": "chunked"]), body("all"), end,
                head(404, ["Content-Length": "4"]), body("nope"), end,
            ]
        )
    }

    @Test func bytesWithNoRequestAreUnsolicited() {
        #expect(read("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", requests: []) == [.failed(.unsolicitedResponse)])
    }

    @Test func bytesAfterTheAnswerToTheLastRequestAreUnsolicited() {
        #expect(
            read("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhiHTTP/1.1") == [
                head(200, ["Content-Length": "2"]), body("hi"), end, .failed(.unsolicitedResponse),
            ]
        )
    }

    // MARK: Limits

    @Test func aHeadOfUpToEightyKiBIsRead() {
        let response = Self.head(ofLength: UpstreamResponseParser.maxHeadBytes) + "hi"
        #expect(read(response, cuts: .few).dropFirst() == [body("hi"), end])
    }

    @Test func aHeadOverEightyKiBIsRefusedWithOrWithoutItsEnd() {
        let response = Self.head(ofLength: UpstreamResponseParser.maxHeadBytes + 1) + "hi"
        #expect(read(response, cuts: .few) == [.failed(.headTooLarge)])
        let endless = "HTTP/1.1 200 OK\r\nX-Big: " + String(repeating: "b", count: UpstreamResponseParser.maxHeadBytes)
        #expect(read(endless, closes: false, cuts: .few) == [.failed(.headTooLarge)])
    }

    @Test func aChunkSizeLineOfUpToFourKiBIsRead() {
        let line = "2;" + String(repeating: "e", count: UpstreamResponseParser.maxChunkLineBytes - 2)
        #expect(read(chunkedHead + line + "\r\nhi\r\n0\r\n\r\n", cuts: .few).dropFirst() == [body("hi"), end])
        #expect(read(chunkedHead + line + "\nhi\n0\n\n", cuts: .few).dropFirst() == [body("hi"), end])
    }

    @Test func aChunkSizeLineOverFourKiBIsRefusedWithOrWithoutItsEnd() {
        let line = "2;" + String(repeating: "e", count: UpstreamResponseParser.maxChunkLineBytes - 1)
        #expect(read(chunkedHead + line + "\r\nhi\r\n0\r\n\r\n", cuts: .few).dropFirst() == [.failed(.chunkLineTooLong)])
        // One byte more than the limit might still be the CR before the LF; two cannot.
        #expect(read(chunkedHead + line, closes: false, cuts: .few).count == 1)
        #expect(read(chunkedHead + line + "e", closes: false, cuts: .few).dropFirst() == [.failed(.chunkLineTooLong)])
    }

    @Test func trailersOverEightyKiBAreRefused() {
        let trailer = "X-Big: " + String(repeating: "t", count: 1000) + "\r\n"
        let response = chunkedHead + "0\r\n" + String(repeating: trailer, count: 82) + "\r\n"
        #expect(read(response, cuts: .few).dropFirst() == [.failed(.trailersTooLarge)])
    }

    // MARK: Malformed responses

    @Test(arguments: ["zz", "", ";a=b", "-1", "+5", "0x5", "1000000000000000", "5\0"])
    func anInvalidChunkSizeIsRefused(_ sizeLine: String) {
        #expect(read(chunkedHead + sizeLine + "\r\nhello\r\n0\r\n\r\n").dropFirst() == [.failed(.invalidChunkSize)])
    }

    @Test(arguments: ["helloXY\r\n0\r\n\r\n", "hello\r0\r\n\r\n", "hello0\r\n\r\n", "hello\r\r\n0\r\n\r\n"])
    func chunkDataNotFollowedByItsLineEndIsRefused(_ rest: String) {
        #expect(read(chunkedHead + "5\r\n" + rest).dropFirst() == [body("hello"), .failed(.missingChunkTerminator)])
    }

    @Test(arguments: [
        "NoColon", " X-Folded: a", "X-A: 1\r\n continued", "Bad Name: x", ": no name", "X-Bad: a\u{1}b", "X-Bad: a\rb",
        "X-Bad: a\u{7F}", "X-Bad(: x",
    ])
    func anInvalidHeaderLineIsRefused(_ line: String) {
        #expect(read("HTTP/1.1 200 OK\r\n\(line)\r\nContent-Length: 0\r\n\r\n") == [.failed(.invalidHeader)])
    }

    @Test func anInvalidTrailerLineIsRefused() {
        #expect(read(chunkedHead + "0\r\nNoColon\r\n\r\n").dropFirst() == [.failed(.invalidHeader)])
    }

    @Test(arguments: [
        ("HTTP/2.0 200 OK", ParseError.unsupportedVersion), ("HTTP/1.2 200 OK", .unsupportedVersion),
        ("HTTP/0.9 200 OK", .unsupportedVersion), ("HTTP/2 200 OK", .invalidStatusLine), ("HTTP/1.1 20 OK", .invalidStatusLine),
        ("HTTP/1.1 2000 OK", .invalidStatusLine), ("HTTP/1.1 099 Low", .invalidStatusLine),
        ("HTTP/1.1 200OK", .invalidStatusLine), ("HTTP/1.1  200 OK", .invalidStatusLine), ("http/1.1 200 OK", .invalidStatusLine),
        ("ICY 200 OK", .invalidStatusLine), ("HTTP/1.1 200 O\u{1}K", .invalidStatusLine), ("", .invalidStatusLine),
    ])
    func anInvalidStatusLineIsRefused(_ statusLine: String, _ error: ParseError) {
        #expect(read(statusLine + "\r\nContent-Length: 0\r\n\r\n") == [.failed(error)])
    }

    @Test func aStatusLineMayHaveAnyReasonOrNone() {
        #expect(read("HTTP/1.1 299 Custom Thing\r\n\r\n") == [head(299, reason: "Custom Thing"), end])
        #expect(read("HTTP/1.1 299\r\n\r\n") == [head(299, reason: ""), end])
        #expect(read("HTTP/1.1 299 \r\n\r\n") == [head(299, reason: ""), end])
        #expect(read("HTTP/1.1 599 \u{E9}t\u{E9}\r\n\r\n") == [head(599, reason: "\u{E9}t\u{E9}"), end])
    }

    @Test func headerValuesLoseTheirSurroundingWhitespaceAndKeepTheirOrder() {
        #expect(
            read("HTTP/1.1 200 OK\r\nX-A: \t padded \t\r\nX-B:tight\r\nX-A: again\r\nX-Empty:\r\nContent-Length: 0\r\n\r\n") == [
                head(200, [("X-A", "padded"), ("X-B", "tight"), ("X-A", "again"), ("X-Empty", ""), ("Content-Length", "0")]), end,
            ]
        )
    }

    @Test func garbageIsNoStatusLine() {
        let garbage: [UInt8] = [0x16, 0x03, 0x01, 0x02, 0x00, 0xFF, 0xFE, 0x0D, 0x0A, 0x0D, 0x0A]
        #expect(read(garbage) == [.failed(.invalidStatusLine)])
    }

    // MARK: The connection's end

    @Test(arguments: ["H", "HTTP/1.1 200 OK", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n", "HTTP/1.1 200 OK\r\n\r"])
    func aCloseInTheMiddleOfTheHeadIsAnError(_ response: String) {
        #expect(read(response) == [.failed(.closedMidHead)])
    }

    @Test(arguments: [
        ("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello", "hello"),
        (chunkedHead + "5\r\nhel", "hel"),
        (chunkedHead + "5\r\nhello", "hello"),
        (chunkedHead + "5\r\nhello\r", "hello"),
        (chunkedHead + "5\r\nhello\r\n", "hello"),
        (chunkedHead + "5\r\nhello\r\n1", "hello"),
        (chunkedHead + "0\r\n", ""),
        (chunkedHead + "0\r\nX-T: t\r\n", ""),
        (chunkedHead + "0\r\nX-T: t\r\n\r", ""),
    ])
    func aCloseInTheMiddleOfTheBodyIsAnError(_ response: String, _ received: String) {
        let expected: [Event] = received.isEmpty ? [.failed(.closedMidBody)] : [body(received), .failed(.closedMidBody)]
        #expect(read(response).dropFirst() == expected[...])
    }

    // MARK: After an error

    @Test func afterAnErrorNothingMoreIsRead() throws {
        var parser = UpstreamResponseParser()
        parser.expectResponse(toHEAD: false)
        parser.feed(ByteBuffer(string: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"))
        #expect(try parser.next() != nil)
        #expect(throws: ParseError.invalidChunkSize) { try parser.next() }
        #expect(!parser.isMidResponse && !parser.hasResponseBytes)
        #expect(try parser.next() == nil)
        parser.feed(ByteBuffer(string: "5\r\nhello\r\n0\r\n\r\nHTTP/1.1 200 OK\r\n\r\n"))
        #expect(try parser.next() == nil)
        #expect(try parser.inputEnded() == nil)
    }

    @Test func whetherAResponseIsUnderWayAndHasBytes() throws {
        var parser = UpstreamResponseParser()
        #expect(!parser.isMidResponse && !parser.hasResponseBytes)
        parser.expectResponse(toHEAD: false)
        #expect(parser.isMidResponse && !parser.hasResponseBytes)
        parser.feed(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-"))
        #expect(try parser.next() == nil)
        #expect(parser.isMidResponse && parser.hasResponseBytes)
        parser.feed(ByteBuffer(string: "Length: 2\r\n\r\nh"))
        #expect(try parser.next() != nil)
        #expect(try parser.next() == .body(ByteBuffer(string: "h")))
        #expect(parser.isMidResponse && parser.hasResponseBytes)
        parser.feed(ByteBuffer(string: "i"))
        #expect(try parser.next() == .body(ByteBuffer(string: "i")))
        #expect(try parser.next() == .end(nil))
        #expect(!parser.isMidResponse && !parser.hasResponseBytes)
    }

    // MARK: Helpers

    /// A response head of exactly `length` bytes (Content-Length: 2), padded by one header.
    static func head(ofLength length: Int) -> String {
        let start = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Pad: "
        return start + String(repeating: "p", count: length - start.utf8.count - 4) + "\r\n\r\n"
    }

    enum Cuts {
        /// Two pieces at every cut, and one byte at a time.
        case every
        /// A few two-piece cuts and reads of 1 KiB, for long inputs.
        case few

        func pieces(_ count: Int) -> [[Range<Int>]] {
            switch self {
            case .every:
                (0...count).map { [0..<$0, $0..<count] } + [(0..<count).map { $0..<($0 + 1) }]
            case .few:
                [1, count / 2, count - 1].map { [0..<$0, $0..<count] }
                    + [stride(from: 0, to: count, by: 1024).map { $0..<min($0 + 1024, count) }]
            }
        }
    }

    /// The events of `response` on a connection carrying `requests` (true: HEAD), closed after it unless
    /// `closes` is false: read whole, after checking that each of `cuts` reads the same and keeps every invariant.
    func read(
        _ response: String, requests: [Bool] = [false], closes: Bool = true, cuts: Cuts = .every,
        sourceLocation: SourceLocation = #_sourceLocation
    ) -> [Event] {
        read(Array(response.utf8), requests: requests, closes: closes, cuts: cuts, sourceLocation: sourceLocation)
    }

    func read(
        _ bytes: [UInt8], requests: [Bool] = [false], closes: Bool = true, cuts: Cuts = .every,
        sourceLocation: SourceLocation = #_sourceLocation
    ) -> [Event] {
        let plan = UpstreamResponseInvariants.Plan(requests: requests, closes: closes)
        do {
            return try UpstreamResponseInvariants.check(bytes, plan: plan, cuts: cuts.pieces(bytes.count))
        } catch {
            Issue.record("\(error.description)", sourceLocation: sourceLocation)
            return []
        }
    }

    func head(
        _ code: Int, _ fields: KeyValuePairs<String, String> = [:], version: HTTPVersion = .http1_1, reason: String? = nil
    ) -> Event {
        head(code, fields.map { ($0.key, $0.value) }, version: version, reason: reason)
    }

    func head(_ code: Int, _ fields: [(String, String)], version: HTTPVersion = .http1_1, reason: String? = nil) -> Event {
        let status = reason.map { HTTPResponseStatus(statusCode: code, reasonPhrase: $0) } ?? HTTPResponseStatus(statusCode: code)
        return .head(.init(HTTPResponseHead(version: version, status: status, headers: HTTPHeaders(fields))))
    }

    func body(_ text: String) -> Event { .body(Array(text.utf8)) }

    var end: Event { .end(trailers: nil) }

    func field(_ name: String, _ value: String) -> UpstreamResponseInvariants.Field {
        .init(name: name, value: value)
    }
}
