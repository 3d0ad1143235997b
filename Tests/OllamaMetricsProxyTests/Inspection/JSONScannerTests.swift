import Testing
@testable import OllamaMetricsProxy

@Suite("JSON scanning and unescaping")
struct JSONScannerTests {
    private func withScanner<T>(_ json: String, _ body: (inout JSONScanner) -> T) -> T {
        Array(json.utf8).withUnsafeBytes { bytes in
            var scanner = JSONScanner(bytes)
            return body(&scanner)
        }
    }

    @Test(arguments: [
        (#""plain""#, "plain"),
        (#""quote \" backslash \\ slash \/""#, #"quote " backslash \ slash /"#),
        (#""\b\f\n\r\t""#, "\u{08}\u{0C}\n\r\t"),
        (#""caf\u00e9 caf\u00E9""#, "café café"),
        (#""\u003chtml\u003e \u0026""#, "<html> &"),
        (#""\u2028\u2029""#, "\u{2028}\u{2029}"),
        (#""emoji \ud83d\ude00!""#, "emoji 😀!"),
        (#""lone high \ud83d then""#, "lone high \u{FFFD} then"),
        (#""lone low \ude00""#, "lone low \u{FFFD}"),
        (#""high then escape \ud83d\n""#, "high then escape \u{FFFD}\n"),
        (#""raw UTF-8 é 日本 😀""#, "raw UTF-8 é 日本 😀"),
        (#""\u0000""#, "\u{0}"),
    ])
    func stringsAreUnescaped(_ json: String, _ expected: String) {
        let decoded = withScanner(json) { scanner in scanner.readString() }
        #expect(decoded == expected)
    }

    @Test(arguments: [#""bad \x escape""#, #""short \u12""#, #""unterminated"#, #""\uZZZZ""#])
    func malformedStringsFail(_ json: String) {
        let (decoded, failed) = withScanner(json) { scanner in (scanner.readString(), scanner.failed) }
        #expect(decoded == nil)
        #expect(failed)
    }

    @Test func invalidUTF8IsRepairedNotFatal() {
        let bytes: [UInt8] = [0x22, 0x61, 0xFF, 0xC3, 0x22]
        let decoded = bytes.withUnsafeBytes { buffer -> String? in
            var scanner = JSONScanner(buffer)
            return scanner.readString()
        }
        #expect(decoded == "a\u{FFFD}\u{FFFD}")
    }

    @Test(arguments: [
        ("0", Int64(0)), ("7", 7), ("9223372036854775807", Int64.max), (" 42 ", 42),
    ])
    func countsAreRead(_ json: String, _ expected: Int64) {
        let (count, clean) = withScanner(json) { scanner in (scanner.readCount(), scanner.isCleanlyFinished()) }
        #expect(count == expected)
        #expect(clean)
    }

    @Test(arguments: [
        "9223372036854775808", "-1", "-0", "1.5", "12.0", "1e3", "1E+2", "\"12\"", "null", "true", "[1]", "{}",
    ])
    func nonCountsAreAbsentButConsumed(_ json: String) {
        let (count, clean) = withScanner(json) { scanner in (scanner.readCount(), scanner.isCleanlyFinished()) }
        #expect(count == nil)
        #expect(clean)
    }

    @Test(arguments: ["01", "1.", "1e", "-", "--1", "1.2.3", "tru", "nul", "[1,2", #"{"a":1]"#, "[}", "\"a"])
    func malformedValuesFail(_ json: String) {
        let clean = withScanner(json) { scanner in
            _ = scanner.readCount()
            return scanner.isCleanlyFinished()
        }
        #expect(!clean)
    }

    @Test func nestedValuesAreSkipped() {
        let json = #"{"a":[1,{"b":"}]\"{["},[[[]]],-1.5e-3,true,false,null],"c":"x","target":5}"#
        let found = withScanner(json) { scanner -> Int64? in
            guard scanner.enterObject() else { return nil }
            var target: Int64?
            let ok = scanner.forEachMember { scanner, key in
                if key.hasBytes("target") { target = scanner.readCount() } else { scanner.skipValue() }
            }
            return ok && scanner.isCleanlyFinished() ? target : nil
        }
        #expect(found == 5)
    }

    @Test func objectsNeedProperSeparators() {
        for json in [#"{"a":1 "b":2}"#, #"{"a":1,}"#, #"{,"a":1}"#, #"{"a" 1}"#, #"{a:1}"#] {
            let ok = withScanner(json) { scanner -> Bool in
                guard scanner.enterObject() else { return false }
                return scanner.forEachMember { scanner, _ in scanner.skipValue() }
            }
            #expect(!ok, "\(json)")
        }
    }

    @Test func emptyArrayIsRecognised() {
        let results = ["[ ]", "[0]", "{}"].map { json in withScanner(json) { scanner in scanner.readIsEmptyArray() } }
        #expect(results == [true, false, false])
    }

    @Test(arguments: [
        (#"{"x":1,"usage":2}"#, true), (#"{"error":null}"#, true), (#"{"x":"usage"}"#, true),
        (#"{"x":"\"usage\""}"#, false), (#"{"usages":1}"#, false), (#"{"errors":1,"u":"sage"}"#, false),
        (#""usage""#, true), (#""usag"#, false), ("", false),
    ])
    func usageOrErrorKeyPrefilter(_ json: String, _ expected: Bool) {
        let found = Array(json.utf8).withUnsafeBytes { ByteScan.containsUsageOrErrorKey($0) }
        #expect(found == expected)
    }

    @Test func wordAtATimeSearchFindsEveryPosition() {
        for length in 0..<40 {
            for position in 0...length {
                var bytes = [UInt8](repeating: UInt8(ascii: "a"), count: length)
                if position < length { bytes[position] = 0x0D }
                let (lineEnd, quote) = bytes.withUnsafeBytes {
                    (ByteScan.firstLineEnd(in: $0, from: 0), ByteScan.firstIndex(of: 0x0D, in: $0, from: min(position, length)))
                }
                #expect(lineEnd == position)
                #expect(quote == position)
            }
        }
        let high = [UInt8](repeating: 0x8A, count: 20) + [0x0A]
        #expect(high.withUnsafeBytes { ByteScan.firstLineEnd(in: $0, from: 0) } == 20)
    }
}
