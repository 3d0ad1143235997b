import Testing
@testable import OllamaMetricsProxy

/// `SSEEventSplitter` reads the common event (`data: …\n\n` within one piece) without its general line
/// machinery. Whatever the body, the events, their kinds and the forwarded bytes must be those of the general
/// path, which is what a body fed a byte at a time goes through.
@Suite("Single data line events")
struct SingleDataLineEventTests {
    /// Records events; data `U` is usage-only, data starting with `R` is forwarded without its first byte.
    struct Recorder: SSEEventConsumer {
        var events: [String] = []
        mutating func event(type: UnsafeRawBufferPointer, data: UnsafeRawBufferPointer) -> SSEEventKind {
            let text = String(decoding: data, as: UTF8.self)
            events.append(String(decoding: type, as: UTF8.self) + "|" + text)
            if text == "U" { return .usageOnly }
            if text.hasPrefix("R") { return .ordinaryWithout(0..<1) }
            return .ordinary
        }
    }

    static func run(_ pieces: [[UInt8]], withholding: Bool) -> (events: [String], forwarded: [UInt8]) {
        var splitter = SSEEventSplitter(isWithholding: withholding)
        var recorder = Recorder()
        var forwarded: [UInt8] = []
        for piece in pieces {
            switch piece.withUnsafeBytes({ splitter.feed($0, into: &recorder) }) {
            case .everything: forwarded += piece
            case .range(let range): forwarded += piece[range]
            case .assembled(let buffer): forwarded += InspectionHarness.bytes(buffer)
            }
        }
        if let rest = splitter.finish(into: &recorder) { forwarded += InspectionHarness.bytes(rest) }
        return (recorder.events, forwarded)
    }

    /// (With the default size limit: a small one is outgrown by held-back events only when they are cut.)
    @Test func everyBodyGivesWhatTheGeneralPathGives() {
        let fragments = [
            "data: a\n\n", "data:U\n\n", "data: U\n\n", "data: R1\n\n", "data: Rxy\n\n", "data: x\r\n\r\n", "data: x\n\r\n",
            "data: x\r\n\n", "data: a\ndata: b\n\n", "event: t\n", "data: e\n", ": c\n", "\n", "\r", "data:\n\n", "data\n\n",
            "data: [DONE]\n\n", "datum: x\n\n", "data: ", "U", "\n", "data: long long long long value\n\n",
        ]
        var random = InspectionRandom(seed: 21)
        for round in 0..<1500 {
            let body = Array((0..<(1 + Int(random.next() % 8))).map { _ in fragments[Int(random.next() % UInt64(fragments.count))] }.joined().utf8)
            for withholding in [true, false] {
                let general = Self.run(InspectionHarness.byteByByte(body), withholding: withholding)
                var cuts = [[body]] + InspectionHarness.randomSplits(body, count: 3, seed: UInt64(round))
                cuts.append(InspectionHarness.chunks(body, of: 9))
                for pieces in cuts {
                    let observed = Self.run(pieces, withholding: withholding)
                    #expect(observed.events == general.events, "\(String(decoding: body, as: UTF8.self)) in \(pieces.map(\.count))")
                    #expect(observed.forwarded == general.forwarded, "\(String(decoding: body, as: UTF8.self)) in \(pieces.map(\.count))")
                }
            }
        }
    }
}
