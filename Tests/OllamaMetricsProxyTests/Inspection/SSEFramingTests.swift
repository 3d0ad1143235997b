import NIOCore
import Testing
@testable import OllamaMetricsProxy

/// Records what an `SSEEventSplitter` dispatches.
private struct RecordingConsumer: SSEEventConsumer {
    var events: [(type: String, data: String)] = []
    /// Events whose data is exactly this are reported as usage-only.
    var usageOnlyData = "U"

    mutating func event(type: UnsafeRawBufferPointer, data: UnsafeRawBufferPointer) -> SSEEventKind {
        let data = String(decoding: data, as: UTF8.self)
        events.append((String(decoding: type, as: UTF8.self), data))
        return data == usageOnlyData ? .usageOnly : .ordinary
    }
}

@Suite("Server-sent event framing")
struct SSEFramingTests {
    /// Feeds `pieces` to a splitter; returns the dispatched events and the forwarded bytes.
    private func split(
        _ pieces: [String], withholding: Bool = false, sizeLimit: Int = SSEEventSplitter.defaultSizeLimit
    ) -> (events: [String], forwarded: String) {
        var splitter = SSEEventSplitter(isWithholding: withholding, sizeLimit: sizeLimit)
        var consumer = RecordingConsumer()
        var forwarded: [UInt8] = []
        for piece in pieces {
            let bytes = Array(piece.utf8)
            let forwarding = bytes.withUnsafeBytes { splitter.feed($0, into: &consumer) }
            switch forwarding {
            case .everything: forwarded += bytes
            case .range(let range): forwarded += bytes[range]
            case .assembled(let buffer): forwarded += InspectionHarness.bytes(buffer)
            }
        }
        if let rest = splitter.finish(into: &consumer) { forwarded += InspectionHarness.bytes(rest) }
        return (consumer.events.map { "\($0.type)|\($0.data)" }, String(decoding: forwarded, as: UTF8.self))
    }

    @Test(arguments: [
        ("data: a\n\n", ["|a"]),
        ("data:a\n\n", ["|a"]),
        ("data:  a\n\n", ["| a"]),
        ("data: a\r\n\r\n", ["|a"]),
        ("data: a\r\rdata: b\r\r", ["|a", "|b"]),
        ("data: a\ndata: b\n\n", ["|a\nb"]),
        ("data\n\n", ["|"]),
        ("data:\n\n", ["|"]),
        ("event: t\ndata: a\n\n", ["t|a"]),
        ("event: t\nevent: u\ndata: a\n\n", ["u|a"]),
        (": comment\nid: 7\nretry: 5\nfoo: bar\ndata: a\n\n", ["|a"]),
        ("event: t\n\ndata: a\n\n", ["|a"]),
        ("\n\n\ndata: a\n\n", ["|a"]),
        ("data: a\n", ["|a"]),
        ("data: a", ["|a"]),
        ("event: only\n\n", []),
        ("data: a\n\ndata: b\r\n\r\ndata: c\r\r", ["|a", "|b", "|c"]),
    ])
    func framingRules(_ body: String, _ expected: [String]) {
        let whole = split([body])
        #expect(whole.events == expected)
        #expect(whole.forwarded == body)
        let bytes = Array(body.utf8)
        for cut in 0...bytes.count {
            let pieces = [String(decoding: bytes[..<cut], as: UTF8.self), String(decoding: bytes[cut...], as: UTF8.self)]
            #expect(split(pieces).events == expected, "cut at \(cut)")
            #expect(split(pieces, withholding: true).forwarded == body, "cut at \(cut)")
        }
    }

    @Test(arguments: [
        ("data: a\n\ndata: U\n\ndata: b\n\n", "data: a\n\ndata: b\n\n"),
        ("data: U\n\n", ""),
        ("data: a\r\rdata: U\r\rdata: b\r\r", "data: a\r\rdata: b\r\r"),
        ("data: a\r\n\r\ndata: U\r\n\r\ndata: b\r\n\r\n", "data: a\r\n\r\ndata: b\r\n\r\n"),
        (": hi\ndata: U\n\n: bye\n", ": bye\n"),
        ("data: a\n\ndata: U", "data: a\n\n"),
        ("data: a\n\ndata: U\n", "data: a\n\n"),
        ("data: a\n\ndata: Ux", "data: a\n\ndata: Ux"),
    ])
    func withholdingRemovesExactlyTheUsageOnlyEvents(_ body: String, _ expected: String) {
        #expect(split([body], withholding: true).forwarded == expected)
        let bytes = Array(body.utf8)
        for cut in 0...bytes.count {
            let pieces = [String(decoding: bytes[..<cut], as: UTF8.self), String(decoding: bytes[cut...], as: UTF8.self)]
            #expect(split(pieces, withholding: true).forwarded == expected, "cut at \(cut)")
        }
        #expect(split(bytes.map { String(decoding: [$0], as: UTF8.self) }, withholding: true).forwarded == expected)
    }

    @Test func crlfSplitBetweenPiecesAfterAWithheldEventLosesNoOtherByte() {
        #expect(split(["data: U\r\n\r", "\ndata: b\r\n\r", "\n"], withholding: true).forwarded == "data: b\r\n\r\n")
        #expect(split(["data: a\r\n\r", "\ndata: U\r\n\r", "\n"], withholding: true).forwarded == "data: a\r\n\r\n")
        #expect(split(["data: a\r", "\n\r", "\n"], withholding: true).forwarded == "data: a\r\n\r\n")
    }

    @Test func eventSpanningManyPiecesIsHeldThenForwardedInOrder() {
        let pieces = ["da", "ta: ", "hello", "\n", "\n", "data: U", "\n\n", "data: z\n\n"]
        let result = split(pieces, withholding: true)
        #expect(result.forwarded == "data: hello\n\ndata: z\n\n")
        #expect(result.events == ["|hello", "|U", "|z"])
    }

    @Test func oversizedLineIsForwardedButNotInspected() {
        let body = "data: 0123456789abcdefghij\n\ndata: ok\n\n"
        let bytes = Array(body.utf8)
        for cut in 0...bytes.count {
            let pieces = [String(decoding: bytes[..<cut], as: UTF8.self), String(decoding: bytes[cut...], as: UTF8.self)]
            let result = split(pieces, withholding: true, sizeLimit: 16)
            #expect(result.events == ["|ok"], "cut at \(cut)")
            #expect(result.forwarded == body, "cut at \(cut)")
        }
    }

    @Test func oversizedDataAcrossLinesIsNotInspected() {
        let result = split(["data: 0123456789\ndata: 0123456789\n\n", "data: ok\n\n"], sizeLimit: 16)
        #expect(result.events == ["|ok"])
    }

    @Test func heldEventOutgrowingTheLimitIsPassedThroughInOrder() {
        let pieces = ["data: a\n\n: 0123456789", "0123456789\n", ": more\n", "data: U\n\ndata: b\n\n"]
        let result = split(pieces, withholding: true, sizeLimit: 16)
        // Too big to hold: forwarded as it arrives, usage-only or not.
        #expect(result.forwarded == pieces.joined())
        #expect(result.events == ["|a", "|U", "|b"])
    }

    @Test func utf8SplitAcrossPiecesIsReassembled() {
        let bytes = Array("data: é日😀\n\n".utf8)
        var splitter = SSEEventSplitter(isWithholding: false)
        var consumer = RecordingConsumer()
        for byte in bytes {
            _ = [byte].withUnsafeBytes { splitter.feed($0, into: &consumer) }
        }
        #expect(consumer.events.map(\.data) == ["é日😀"])
    }
}
