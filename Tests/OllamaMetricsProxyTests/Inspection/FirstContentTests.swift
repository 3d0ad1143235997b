import NIOCore
import Testing
@testable import OllamaMetricsProxy

/// `ResponseInspector.hasSeenContent` turns true with the first piece carrying generated content (the
/// future "time to first token"), never earlier, whichever way the body is cut.
@Suite("First content")
struct FirstContentTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var fixture: ResponseFixture
        /// The index of the first part carrying content; nil when none does.
        var firstContentPart: Int?
        var testDescription: String { fixture.name }
    }

    static func fixture(_ name: String, _ endpoint: InferenceEndpoint, _ contentType: String, _ parts: [String]) -> ResponseFixture {
        ResponseFixture(name, endpoint, contentType: contentType, streaming: true, parts.map { .init($0) }, usage: nil)
    }

    static func chatChunk(_ delta: String, finish: String = "null") -> String {
        #"data: {"id":"chatcmpl-7","object":"chat.completion.chunk","created":1748779200,"model":"m","system_fingerprint":"fp_ollama","choices":[{"index":0,"delta":"# + delta + #","finish_reason":"# + finish + "}]}\n\n"
    }

    static func nativeChat(_ message: String, done: Bool = false) -> String {
        #"{"model":"m","created_at":"2025-06-01T12:00:00.02Z","message":"# + message + #","done":"# + (done ? "true" : "false") + "}\n"
    }

    static let cases: [Case] = [
        // Native.
        Case(fixture: WireFixtures.generateStream, firstContentPart: 0),
        Case(fixture: WireFixtures.chatStream, firstContentPart: 0),
        Case(fixture: WireFixtures.chatDocument, firstContentPart: 0),
        Case(fixture: WireFixtures.generateLoad, firstContentPart: nil),
        Case(fixture: WireFixtures.chatUnload, firstContentPart: nil),
        Case(fixture: WireFixtures.embedDocument, firstContentPart: nil),
        Case(fixture: fixture("native generate, empty then thinking", .generate, WireFixtures.ndjson, [
            #"{"model":"m","created_at":"2025-06-01T12:00:00.02Z","response":"","done":false}"# + "\n",
            #"{"model":"m","created_at":"2025-06-01T12:00:00.03Z","response":"","thinking":"Hmm","done":false}"# + "\n",
        ]), firstContentPart: 1),
        Case(fixture: fixture("native chat, empty, thinking", .chat, WireFixtures.ndjson, [
            nativeChat(#"{"role":"assistant","content":""}"#),
            nativeChat(#"{"role":"assistant","content":"","thinking":"Let me see"}"#),
        ]), firstContentPart: 1),
        Case(fixture: fixture("native chat, tool call", .chat, WireFixtures.ndjson, [
            nativeChat(#"{"role":"assistant","content":"","tool_calls":[]}"#),
            nativeChat(#"{"role":"assistant","content":"","tool_calls":[{"function":{"name":"f","arguments":{}}}]}"#),
        ]), firstContentPart: 1),
        // OpenAI.
        Case(fixture: WireFixtures.chatCompletionsWithheldUsage, firstContentPart: 0),
        Case(fixture: WireFixtures.completionsWithheldUsage, firstContentPart: 0),
        Case(fixture: WireFixtures.chatCompletionsDocument, firstContentPart: 0),
        Case(fixture: WireFixtures.completionsDocument, firstContentPart: 0),
        Case(fixture: WireFixtures.openAIEmbeddingsDocument, firstContentPart: nil),
        Case(fixture: fixture("openai chat, role-only first chunk", .chatCompletions, WireFixtures.eventStream, [
            chatChunk(#"{"role":"assistant","content":""}"#),
            chatChunk(#"{"content":"Hi"}"#),
            chatChunk("{}", finish: #""stop""#),
        ]), firstContentPart: 1),
        Case(fixture: fixture("openai chat, reasoning", .chatCompletions, WireFixtures.eventStream, [
            chatChunk(#"{"role":"assistant"}"#),
            chatChunk(#"{"reasoning":"So"}"#),
        ]), firstContentPart: 1),
        Case(fixture: fixture("openai chat, tool call", .chatCompletions, WireFixtures.eventStream, [
            chatChunk(#"{"role":"assistant","content":"","tool_calls":[]}"#),
            chatChunk(#"{"tool_calls":[{"id":"call_1","index":0,"type":"function","function":{"name":"f","arguments":"{}"}}]}"#),
        ]), firstContentPart: 1),
        Case(fixture: fixture("openai completions, empty first text", .completions, WireFixtures.eventStream, [
            #"data: {"id":"cmpl-3","object":"text_completion","created":1,"choices":[{"text":"","index":0,"finish_reason":null}],"model":"m","system_fingerprint":"fp_ollama"}"# + "\n\n",
            #"data: {"id":"cmpl-3","object":"text_completion","created":1,"choices":[{"text":"Hi","index":0,"finish_reason":null}],"model":"m","system_fingerprint":"fp_ollama"}"# + "\n\n",
        ]), firstContentPart: 1),
        // Anthropic: message_start and content_block_start carry none.
        Case(fixture: WireFixtures.anthropicStream, firstContentPart: 2),
        Case(fixture: WireFixtures.anthropicDocument, firstContentPart: 0),
        // Responses: response.created … content_part.added carry none.
        Case(fixture: WireFixtures.responsesStream, firstContentPart: 4),
        Case(fixture: WireFixtures.responsesDocument, firstContentPart: 0),
    ]

    static let allCases: [Case] = cases + cases.map {
        Case(fixture: $0.fixture.withLineEnds([0x0D, 0x0A], suffix: "(CRLF)"), firstContentPart: $0.firstContentPart)
    }

    /// Feeds `pieces`, returning the flag after each.
    static func flags(_ fixture: ResponseFixture, _ pieces: [[UInt8]]) -> [Bool] {
        var inspector = ResponseInspector(endpoint: fixture.endpoint, request: fixture.request, contentType: fixture.contentType)
        var flags: [Bool] = []
        for piece in pieces {
            _ = inspector.inspect(InspectionHarness.buffer(piece))
            flags.append(inspector.hasSeenContent)
        }
        _ = inspector.finish()
        flags.append(inspector.hasSeenContent)
        return flags
    }

    @Test(arguments: allCases)
    func flagTurnsTrueWithTheFirstContentPart(_ testCase: Case) {
        let parts = testCase.fixture.parts.map(\.bytes)
        let flags = Self.flags(testCase.fixture, parts)
        if let first = testCase.firstContentPart {
            #expect(Array(flags.prefix(first)) == Array(repeating: false, count: first), "before part \(first)")
            #expect(flags[first], "with part \(first)")
            #expect(flags.last == true)
        } else {
            #expect(!flags.contains(true))
        }
    }

    @Test(arguments: allCases)
    func cutAnywhereTheFlagNeverComesEarlyNorLate(_ testCase: Case) {
        let body = testCase.fixture.body
        let parts = testCase.fixture.parts.map(\.bytes)
        let contentStart = testCase.firstContentPart.map { parts[..<$0].reduce(0) { $0 + $1.count } }
        let contentEnd = testCase.firstContentPart.map { parts[...$0].reduce(0) { $0 + $1.count } }
        for (offset, pieces) in InspectionHarness.twoPieceSplits(body).enumerated() {
            let flags = Self.flags(testCase.fixture, pieces)
            guard let contentStart, let contentEnd else {
                #expect(!flags.contains(true), "split at \(offset)")
                continue
            }
            if offset <= contentStart { #expect(!flags[0], "split at \(offset)") }
            if offset >= contentEnd { #expect(flags[0], "split at \(offset)") }
            #expect(flags[1], "split at \(offset)")
        }
        if let first = testCase.firstContentPart {
            #expect(Self.flags(testCase.fixture, InspectionHarness.byteByByte(body)).last == true)
            #expect(first >= 0)
        }
    }

    @Test func contentLargerThanTheCaptureLimitIsSeenAndUsageStillRead() {
        let text = String(repeating: "word ", count: (StreamingObjectReader.captureLimit / 5) + 10)
        let document = #"{"model":"m","created_at":"2025-06-01T12:00:01Z","message":{"role":"assistant","content":""#
            + text + #""},"done":true,"done_reason":"stop","prompt_eval_count":3,"eval_count":4}"#
        for endpoint in [InferenceEndpoint.chat] {
            let request = InferenceRequest(model: nil, isStreaming: false, withholdUsageChunks: false)
            for pieces in [[Array(document.utf8)], InspectionHarness.chunks(Array(document.utf8), of: 1000)] {
                var inspector = ResponseInspector(endpoint: endpoint, request: request, contentType: WireFixtures.ginJSON)
                for piece in pieces { _ = inspector.inspect(InspectionHarness.buffer(piece)) }
                _ = inspector.finish()
                #expect(inspector.hasSeenContent)
                #expect(inspector.takeCompletedUsage() == Usage(model: "m", promptTokens: 3, completionTokens: 4))
            }
        }
        let completion = #"{"id":"cmpl-3","object":"text_completion","created":1,"model":"m","system_fingerprint":"fp_ollama","choices":[{"text":""#
            + text + #"","index":0,"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}"# + "\n"
        let request = InferenceRequest(model: nil, isStreaming: false, withholdUsageChunks: false)
        var inspector = ResponseInspector(endpoint: .completions, request: request, contentType: WireFixtures.encoderJSON)
        for piece in InspectionHarness.chunks(Array(completion.utf8), of: 4096) { _ = inspector.inspect(InspectionHarness.buffer(piece)) }
        _ = inspector.finish()
        #expect(inspector.hasSeenContent)
        #expect(inspector.takeCompletedUsage() == Usage(model: "m", promptTokens: 5, completionTokens: 2))
    }
}
