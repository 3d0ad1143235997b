import Testing
@testable import OllamaMetricsProxy

/// Once content was seen, native NDJSON lines are screened and most go unread (`NativeUsageReader.canDismissLine`).
/// Screening must never change an outcome: every line below, however malformed, gives exactly what reading
/// it member by member gives, whole or cut anywhere.
@Suite("NDJSON line screening")
struct LineScreeningTests {
    /// The reference: the same dialect reader, with every line read member by member.
    struct ReadingEveryLine: ObjectMemberConsumer {
        var reader: DialectReader
        mutating func objectDidBegin() { reader.objectDidBegin() }
        func memberID(forKey key: UnsafeRawBufferPointer) -> UInt8? { reader.memberID(forKey: key) }
        func capturesPrefixOnly(_ id: UInt8) -> Bool { reader.capturesPrefixOnly(id) }
        mutating func member(_ id: UInt8, value: UnsafeRawBufferPointer) -> Bool { reader.member(id, value: value) }
        mutating func objectDidEnd() { reader.objectDidEnd() }
    }

    struct Observation: Equatable {
        var usage: Usage?
        var error: String?
        var finishReason: FinishReason?
        var sawContent: Bool
    }

    static func observe(_ reader: inout DialectReader) -> Observation {
        Observation(
            usage: reader.outcome.takeCompletedUsage(), error: reader.outcome.errorMessage,
            finishReason: reader.finishReason, sawContent: reader.hasSeenContent
        )
    }

    /// What is observed after each piece and after the end, screened and read in full.
    static func observations(_ endpoint: InferenceEndpoint, _ pieces: [[UInt8]]) -> (screened: [Observation], read: [Observation]) {
        var screenedObjects = StreamingObjectReader(isLineDelimited: true)
        var screened = DialectReader(endpoint: endpoint)
        var readObjects = StreamingObjectReader(isLineDelimited: true)
        var read = ReadingEveryLine(reader: DialectReader(endpoint: endpoint))
        var result: (screened: [Observation], read: [Observation]) = ([], [])
        for piece in pieces {
            piece.withUnsafeBytes { screenedObjects.feed($0, into: &screened) }
            piece.withUnsafeBytes { readObjects.feed($0, into: &read) }
            result.screened.append(observe(&screened))
            result.read.append(observe(&read.reader))
        }
        screenedObjects.finish(into: &screened)
        readObjects.finish(into: &read)
        result.screened.append(observe(&screened))
        result.read.append(observe(&read.reader))
        return result
    }

    static let contentLine = #"{"model":"m","created_at":"2025-06-01T12:00:00.02Z","response":"Hi","done":false}"# + "\n"
    static let finalLine = #"{"model":"m","created_at":"t","response":"","done":true,"done_reason":"stop","eval_count":2}"# + "\n"

    /// A line after the first content (so that it is screened), then a final line.
    static func body(_ line: String, lineEnd: String = "\n") -> [UInt8] {
        Array((contentLine + line + lineEnd + finalLine).utf8)
    }

    static let trickyLines: [String] = [
        // Ollama's own lines.
        #"{"model":"m","created_at":"t","response":"lo","done":false}"#,
        #"{"model":"m","created_at":"t","message":{"role":"assistant","content":"lo"},"done":false}"#,
        #"{"model":"m","created_at":"t","response":"lo","done":false,"logprobs":[{"token":"lo","logprob":-0.1}]}"#,
        #"{"model":"m","created_at":"t","response":"","done":true,"done_reason":"length","eval_count":7}"#,
        #"{"error":"an error was encountered while running the model"}"#,
        // Keys inside texts.
        #"{"model":"m","response":"say \"done\":true","done":false}"#,
        #"{"model":"m","response":"x,\"done\":false}","done":true,"eval_count":1}"#,
        #"{"model":"m","response":"\"error\":\"x\"","done":false}"#,
        #"{"model":"m","response":"a\\","done":false}"#,
        // Unusual spacing and order.
        #"{"model":"m","done" : false}"#, #"{"model":"m","done": true}"#, #"{"done":false , "eval_count":1}"#,
        #"{"done":true,"done":false}"#, #"{"done":false,"done":true}"#, #"{"done":false}"#, #"{"done":true}"#,
        #" {"model":"m","done":false} "#, "{\"model\":\"m\",\"done\":false}\t",
        // Malformed lines that still end like an ordinary chunk.
        #"{"error":"boom","x":"a,"done":false}"#, #"{"error":"boom","x":[1,"done":false}"#,
        #"{"error":"boom","x":{"a":1,"done":false}"#, #"{"error":"boom","x":1"done":false}"#,
        #"{"error":"boom","x":1{"done":false}"#, #"{"error":"boom","a\"done":false}"#,
        #"{"error":"boom","done":false}"#, #"{"error":"boom","done":falsey}"#, #"{"error":"boom"}"#,
        #"{"error":null,"done":false}"#, #"{"error":"boom","x":"\\","done":false}"#,
        #"{"model":"m","done":false}}"#, #"{"model":"m","done":false}x"#, #"x{"model":"m","done":false}"#,
        #"{"model":"m","done":false"#, "", " ", "garbage", #","done":false}"#, #""done":false}"#,
    ]

    @Test(arguments: trickyLines)
    func screeningChangesNothingWholeOrCutAnywhere(_ line: String) {
        for lineEnd in ["\n", "\r\n"] {
            let bytes = Self.body(line, lineEnd: lineEnd)
            var cuts = InspectionHarness.twoPieceSplits(bytes)
            cuts.append([bytes])
            cuts += InspectionHarness.randomSplits(bytes, count: 8, seed: 11)
            for pieces in cuts {
                let (screened, read) = Self.observations(.generate, pieces)
                #expect(screened == read, "\(line) in \(pieces.map(\.count))")
            }
        }
    }

    /// Lines assembled from JSON's significant bytes and the keys that matter, most of them malformed.
    @Test func screeningChangesNothingForRandomLines() {
        let fragments = [
            "{", "}", "[", "]", ",", ":", "\"", "\\", " ", "\r", "1", "true", "false", "null", "\"x\"", "\"done\"",
            "\"error\"", "\"done\":false", "\"done\":true", ",\"done\":false}", "\"done\":f", "\"error\":\"boom\"",
            "\"eval_count\":3", "\"done_reason\":\"stop\"", "\"model\":\"m\"", "\"response\":\"t\"", "{\"model\":\"m\",",
        ]
        var random = InspectionRandom(seed: 4)
        for round in 0..<3000 {
            var line = ""
            for _ in 0..<(1 + Int(random.next() % 10)) {
                line += fragments[Int(random.next() % UInt64(fragments.count))]
            }
            if round % 2 == 0 {
                line += ",\"done\":false}"
            }
            let bytes = Self.body(line)
            for pieces in [[bytes]] + InspectionHarness.randomSplits(bytes, count: 2, seed: UInt64(round)) {
                let (screened, read) = Self.observations(.chat, pieces)
                #expect(screened == read, "\(line)")
            }
        }
    }

    @Test func ordinaryChunksAreDismissedFinalAndErrorLinesAreNot() {
        let dismissed = [
            #"{"model":"m","created_at":"t","response":"lo","done":false}"#,
            #"{"model":"m","created_at":"t","message":{"role":"assistant","content":"lo"},"done":false}"# + "\r",
            #"{"model":"m","created_at":"t","response":"lo","done":false,"logprobs":[]}"#,
            #"{"model":"m","response":"\"done\":true","done":false}"#,
        ]
        let read = [
            #"{"model":"m","done":true,"eval_count":1}"#, #"{"error":"boom"}"#, #"{"model":"m","done" : false}"#,
            #"{"model":"m","response":"a\"done","done":false,"x":1}"#,
        ]
        for line in dismissed {
            #expect(Array(line.utf8).withUnsafeBytes { NativeUsageReader.endsAsOrdinaryChunk($0) || NativeUsageReader.hasNeitherTrueDoneNorError($0) }, "\(line)")
        }
        for line in read {
            #expect(!Array(line.utf8).withUnsafeBytes { NativeUsageReader.endsAsOrdinaryChunk($0) || NativeUsageReader.hasNeitherTrueDoneNorError($0) }, "\(line)")
        }
    }

    @Test func linesAreNotScreenedBeforeContentNorOnEmbeddingEndpoints() {
        var generate = NativeUsageReader(endpoint: .generate)
        #expect(!generate.screensLines)
        let line = Array(Self.contentLine.utf8)
        var objects = StreamingObjectReader(isLineDelimited: true)
        var reader = DialectReader(endpoint: .generate)
        line.withUnsafeBytes { objects.feed($0, into: &reader) }
        #expect(reader.screensLines)
        generate = NativeUsageReader(endpoint: .embed)
        #expect(!generate.screensLines)
    }

    @Test func aFinalLineLongerThanWhatIsHeldBackIsReadAsItArrives() {
        let context = (0..<(StreamingObjectReader.heldLineLimit / 2)).map(String.init).joined(separator: ",")
        let final = #"{"model":"m","created_at":"t","response":"","done":true,"done_reason":"stop","context":["#
            + context + #"],"prompt_eval_count":5,"eval_count":9}"# + "\n"
        let bytes = Array((Self.contentLine + Self.contentLine + final).utf8)
        for size in [1000, 7, StreamingObjectReader.heldLineLimit + 1] {
            let pieces = InspectionHarness.chunks(bytes, of: size)
            let (screened, read) = Self.observations(.generate, pieces)
            #expect(screened == read)
            #expect(screened.compactMap(\.usage) == [Usage(model: "m", promptTokens: 5, completionTokens: 9)])
        }
    }
}

@Suite("Word-at-a-time key patterns")
struct BytePatternTests {
    static func word(_ text: String) -> UInt64 {
        Array(text.utf8).enumerated().reduce(0) { $0 | UInt64($1.element) << UInt64($1.offset * 8) }
    }

    @Test func patternsAreTheirTexts() {
        #expect(ByteScan.Pattern.usageKey == Self.word(#""usage""#))
        #expect(ByteScan.Pattern.errorKey == Self.word(#""error""#))
        #expect(ByteScan.Pattern.finishReasonStart == Self.word(#""finish_"#))
        #expect(ByteScan.Pattern.finishReasonEnd == Self.word(#"reason""#))
        #expect(ByteScan.Pattern.doneKey == Self.word(#""done""#))
        #expect(ByteScan.Pattern.doneKeyThenF == Self.word(#""done":f"#))
        #expect(ByteScan.Pattern.commaDoneKeyColon == Self.word(#","done":"#))
        #expect(ByteScan.Pattern.quoteColonFalseBrace == Self.word(#"":false}"#))
    }

    @Test func everyTwoConsecutiveQuotesAtEitherDistanceAreVisitedInOrderUntilTheVisitorStops() {
        var random = InspectionRandom(seed: 9)
        for length in (0..<700).map({ $0 % 70 }) {
            let bytes = (0..<length).map { _ in [UInt8(ascii: "\""), UInt8(ascii: "a"), 0xA2, 0x00][Int(random.next() % 4)] }
            let isQuote = { (index: Int) in index < length && bytes[index] == UInt8(ascii: "\"") }
            for (near, far) in [(5, 6), (6, 14), (1, 15), (3, 8)] {
                let quotes = bytes.indices.filter(isQuote)
                let expected = zip(quotes, quotes.dropFirst()).filter { [near, far].contains($1 - $0) }.map { [$0, $1 - $0] }
                var visited: [[Int]] = []
                bytes.withUnsafeBytes { buffer in
                    ByteScan.forEachQuotePair(in: buffer, near: near, far: far) { visited.append([$0, $1]); return true }
                }
                #expect(visited == expected, "\(bytes) \(near) \(far)")
                var firstTwo: [[Int]] = []
                bytes.withUnsafeBytes { buffer in
                    ByteScan.forEachQuotePair(in: buffer, near: near, far: far) { firstTwo.append([$0, $1]); return firstTwo.count < 2 }
                }
                #expect(firstTwo == Array(expected.prefix(2)))
            }
        }
    }

    /// The pre-filter agrees with a plain search for the keys it looks for, on bytes made of their pieces.
    @Test func chunkKeysAgreeWithAPlainSearch() {
        let fragments = ["\"", "usage", "error", "finish_reason", "\":", ":", " ", "\"stop\"", "null", "\\", "x", "{", "}"]
        var random = InspectionRandom(seed: 12)
        for _ in 0..<5000 {
            let text = (0..<(1 + Int(random.next() % 12))).map { _ in fragments[Int(random.next() % UInt64(fragments.count))] }.joined()
            let bytes = Array(text.utf8)
            var expected: ByteScan.ChunkKeys = []
            for index in bytes.indices where bytes[index] == UInt8(ascii: "\"") {
                let rest = String(decoding: bytes[index...], as: UTF8.self)
                if rest.hasPrefix("\"usage\"") || rest.hasPrefix("\"error\"") { expected.insert(.usageOrError) }
                if rest.hasPrefix("\"finish_reason\"") {
                    let value = rest.dropFirst(15).drop { $0 == " " }
                    if value.hasPrefix(":"), value.dropFirst().drop(while: { $0 == " " }).hasPrefix("\"") { expected.insert(.finishReason) }
                }
            }
            #expect(bytes.withUnsafeBytes { ByteScan.chunkKeys($0) } == expected, "\(text)")
        }
    }

    @Test func patternsMatchAtEveryPositionIncludingTheLastBytes() {
        let key = Array(#""usage""#.utf8)
        for length in 7..<24 {
            for position in 0...(length - 7) {
                var bytes = [UInt8](repeating: UInt8(ascii: "u"), count: length)
                bytes.replaceSubrange(position..<(position + 7), with: key)
                let found = bytes.withUnsafeBytes { buffer in
                    (0..<length).filter { ByteScan.hasPattern(ByteScan.Pattern.usageKey, count: 7, in: buffer, at: $0) }
                }
                #expect(found == [position], "\(length) \(position)")
                #expect(bytes.withUnsafeBytes { ByteScan.chunkKeys($0) } == .usageOrError)
            }
        }
    }
}

extension BytePatternTests {
    @Test func searchesFindTheFirstMatchFromEveryStart() {
        var random = InspectionRandom(seed: 5)
        for length in (0..<400).map({ $0 % 40 }) {
            let bytes = (0..<length).map { _ in [UInt8(ascii: "a"), 0x0A, 0x0D, 0x8A, 0x00, 0x09, 0x0E, 0x0B][Int(random.next() % 8)] }
            for start in 0...length {
                let (lineFeed, lineEnd, firstLineFeed) = bytes.withUnsafeBytes {
                    (ByteScan.firstIndex(of: 0x0A, in: $0, from: start), ByteScan.firstLineEnd(in: $0, from: start),
                     ByteScan.firstLineFeed(in: $0, from: start))
                }
                #expect(lineFeed == (bytes[start...].firstIndex(of: 0x0A) ?? length), "\(bytes) from \(start)")
                #expect(firstLineFeed == lineFeed, "\(bytes) from \(start)")
                #expect(lineEnd == (bytes[start...].firstIndex { $0 == 0x0A || $0 == 0x0D } ?? length), "\(bytes) from \(start)")
            }
        }
    }
}
