import Testing

@testable import OllamaMetricsProxy

/// The access log prints the model the client named: bounded in bytes whatever the client sends.
@Suite struct AccessLogModelTests {
    @Test func shortNamesArePrintedWhole() {
        #expect(AccessLogRecorder.loggable(model: "llama3.2") == "llama3.2")
        let limit = String(repeating: "m", count: AccessLogRecorder.maxModelBytes)
        #expect(AccessLogRecorder.loggable(model: limit) == limit)
    }

    @Test func longNamesAreCutAtTwoHundredBytesAndMarkedWithTheirLength() {
        let huge = String(repeating: "x", count: 4 << 20)
        #expect(AccessLogRecorder.loggable(model: huge) == String(repeating: "x", count: 200) + "…[4194304 bytes]")
    }

    @Test func theCutNeverSplitsACharacterAndCountsBytesNotCharacters() {
        // 'é' is two bytes: 200 bytes end inside the 101st (an odd offset), so the cut falls before it.
        let accents = "a" + String(repeating: "é", count: 150)
        #expect(AccessLogRecorder.loggable(model: accents) == "a" + String(repeating: "é", count: 99) + "…[301 bytes]")
        // One character of a million combining marks: a `prefix(200)` of characters would keep all of it.
        let combining = "a" + String(repeating: "\u{301}", count: 1_000_000)
        let logged = AccessLogRecorder.loggable(model: combining)
        #expect(logged.utf8.count <= 200 + "…[2000001 bytes]".utf8.count)
        #expect(logged.hasSuffix("…[2000001 bytes]"))
    }
}
