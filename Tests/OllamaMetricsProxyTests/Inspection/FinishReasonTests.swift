import NIOCore
import Testing
@testable import OllamaMetricsProxy

/// `ResponseInspector.finishReason`: the reason generation stopped, read from the object that completes
/// the request in every dialect, folded into a closed vocabulary, whichever way the body is cut.
@Suite("Finish reasons")
struct FinishReasonTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var fixture: ResponseFixture
        var reason: FinishReason?
        var testDescription: String { fixture.name }
    }

    static func stream(_ name: String, _ endpoint: InferenceEndpoint, _ parts: [String], withhold: Bool = false) -> ResponseFixture {
        ResponseFixture(name, endpoint, contentType: WireFixtures.eventStream, streaming: true, withhold: withhold, parts.map { .init($0) }, usage: nil)
    }

    static func document(_ name: String, _ endpoint: InferenceEndpoint, _ body: String) -> ResponseFixture {
        ResponseFixture(name, endpoint, contentType: WireFixtures.encoderJSON, streaming: false, [.init(body + "\n")], usage: nil)
    }

    static let cases: [Case] = [
        // Native: `done_reason` of the `done:true` object.
        Case(fixture: WireFixtures.generateStream, reason: .stop),
        Case(fixture: WireFixtures.chatStream, reason: .stop),
        Case(fixture: WireFixtures.chatDocument, reason: .stop),
        Case(fixture: WireFixtures.generateDocument, reason: .stop),
        Case(fixture: WireFixtures.generateLoad, reason: .load),
        Case(fixture: WireFixtures.chatUnload, reason: .unload),
        Case(fixture: WireFixtures.embedDocument, reason: nil),
        Case(fixture: WireFixtures.chatMidStreamError, reason: nil),
        Case(fixture: ResponseFixture(
            "native chat cut by num_predict", .chat, contentType: WireFixtures.ndjson, streaming: true,
            [
                .init(#"{"model":"m","created_at":"2025-06-01T12:00:00.02Z","message":{"role":"assistant","content":"Hi"},"done":false}"# + "\n"),
                .init(#"{"model":"m","created_at":"2025-06-01T12:00:00.05Z","message":{"role":"assistant","content":""},"done":true,"done_reason":"length","eval_count":2}"# + "\n"),
            ],
            usage: nil
        ), reason: .length),
        // OpenAI: the chunk with a `finish_reason` string, before the usage chunk.
        Case(fixture: WireFixtures.chatCompletionsWithheldUsage, reason: .stop),
        Case(fixture: WireFixtures.chatCompletionsClientAskedUsage, reason: .stop),
        Case(fixture: WireFixtures.chatCompletionsOldServer, reason: .stop),
        Case(fixture: WireFixtures.completionsWithheldUsage, reason: .stop),
        Case(fixture: WireFixtures.chatCompletionsDocument, reason: .stop),
        Case(fixture: WireFixtures.completionsDocument, reason: .stop),
        Case(fixture: WireFixtures.openAIEmbeddingsDocument, reason: nil),
        Case(fixture: stream("openai chat, tool calls", .chatCompletions, [
            FirstContentTests.chatChunk(#"{"role":"assistant","content":"","tool_calls":[{"id":"call_1","index":0,"type":"function","function":{"name":"f","arguments":"{}"}}]}"#),
            FirstContentTests.chatChunk("{}", finish: #""tool_calls""#),
            WireFixtures.chatCompletionUsageEvent,
        ]), reason: .toolCalls),
        Case(fixture: stream("openai chat, length, spaces around the colon", .chatCompletions, [
            FirstContentTests.chatChunk(#"{"content":"Hi"}"#),
            #"data: {"choices": [{"index": 0, "delta": {}, "finish_reason" : "length"}]}"# + "\n\n",
            WireFixtures.chatCompletionUsageEvent,
        ]), reason: .length),
        Case(fixture: stream("openai chat, a reason outside the vocabulary", .chatCompletions, [
            FirstContentTests.chatChunk("{}", finish: #""eos_token""#),
            WireFixtures.chatCompletionUsageEvent,
        ]), reason: .other),
        Case(fixture: stream("openai chat, \"finish_reason\" inside content is not a reason", .chatCompletions, [
            FirstContentTests.chatChunk(#"{"content":"\"finish_reason\":\"length\""}"#),
            FirstContentTests.chatChunk("{}", finish: #""stop""#),
            WireFixtures.chatCompletionUsageEvent,
        ]), reason: .stop),
        Case(fixture: document("openai chat document, length", .chatCompletions,
            #"{"id":"chatcmpl-7","object":"chat.completion","created":1,"model":"m","system_fingerprint":"fp_ollama","choices":[{"index":0,"message":{"role":"assistant","content":"Hel"},"finish_reason":"length"}],"usage":{"prompt_tokens":9,"completion_tokens":1,"total_tokens":10}}"#
        ), reason: .length),
        // Anthropic: `message_delta.delta.stop_reason`, or the document's `stop_reason`.
        Case(fixture: WireFixtures.anthropicStream, reason: .stop),
        Case(fixture: WireFixtures.anthropicDocument, reason: .stop),
        Case(fixture: WireFixtures.anthropicErrorEvent, reason: nil),
        Case(fixture: stream("anthropic stream, max_tokens", .messages, [
            WireFixtures.anthropicMessageStart, WireFixtures.anthropicContent[1],
            WireFixtures.anthropicEvent("message_delta", #"{"type":"message_delta","delta":{"stop_reason":"max_tokens"},"usage":{"input_tokens":26,"output_tokens":5}}"#),
        ]), reason: .length),
        Case(fixture: document("anthropic document, tool_use", .messages,
            #"{"id":"msg_0123456789abcdef01234567","type":"message","role":"assistant","model":"m","content":[{"type":"tool_use","id":"toolu_1","name":"f","input":{}}],"stop_reason":"tool_use","usage":{"input_tokens":26,"output_tokens":5}}"#
        ), reason: .toolCalls),
        // Responses: the `status` of the response that completed.
        Case(fixture: WireFixtures.responsesStream, reason: .stop),
        Case(fixture: WireFixtures.responsesIncomplete, reason: .length),
        Case(fixture: WireFixtures.responsesDocument, reason: .stop),
        Case(fixture: WireFixtures.responsesFailed, reason: nil),
    ]

    static let allCases: [Case] = cases + cases.map {
        Case(fixture: $0.fixture.withLineEnds([0x0D, 0x0A], suffix: "(CRLF)"), reason: $0.reason)
    }

    /// The reason once the body was fed in `pieces` and ended, and whether a usage completed.
    static func reason(_ fixture: ResponseFixture, _ pieces: [[UInt8]]) -> FinishReason? {
        var inspector = ResponseInspector(endpoint: fixture.endpoint, request: fixture.request, contentType: fixture.contentType)
        var completed = false
        for piece in pieces {
            _ = inspector.inspect(InspectionHarness.buffer(piece))
            if inspector.takeCompletedUsage() != nil { completed = true }
        }
        _ = inspector.finish()
        if inspector.takeCompletedUsage() != nil { completed = true }
        // What the exchange reads: a reason is only ever taken with a usage.
        return completed ? inspector.finishReason : nil
    }

    @Test(arguments: allCases)
    func reasonIsReadWhole(_ testCase: Case) {
        #expect(Self.reason(testCase.fixture, [testCase.fixture.body]) == testCase.reason)
    }

    @Test(arguments: allCases)
    func reasonIsReadHoweverTheBodyIsCut(_ testCase: Case) {
        let body = testCase.fixture.body
        for (offset, pieces) in InspectionHarness.twoPieceSplits(body).enumerated() {
            #expect(Self.reason(testCase.fixture, pieces) == testCase.reason, "split at \(offset)")
        }
        #expect(Self.reason(testCase.fixture, InspectionHarness.byteByByte(body)) == testCase.reason, "byte by byte")
    }

    @Test func everyDialectValueFoldsIntoTheVocabulary() {
        let table: [(String, FinishReason)] = [
            ("stop", .stop), ("end_turn", .stop), ("stop_sequence", .stop), ("completed", .stop),
            ("length", .length), ("max_tokens", .length), ("incomplete", .length),
            ("tool_calls", .toolCalls), ("tool_use", .toolCalls), ("function_call", .toolCalls),
            ("content_filter", .contentFilter), ("refusal", .contentFilter), ("load", .load), ("unload", .unload),
            ("", .other), ("STOP", .other), ("pause_turn", .other), ("a very long reason nobody has", .other),
        ]
        for (raw, expected) in table {
            let reason = Array(raw.utf8).withUnsafeBytes { FinishReason(rawBytes: $0) }
            #expect(reason == expected, "\(raw)")
        }
    }

    @Test(arguments: [
        (#"{"choices":[{"finish_reason":null}]}"#, false), (#"{"choices":[{"finish_reason":"stop"}]}"#, true),
        (#"{"choices":[{"finish_reason" : "stop"}]}"#, true), (#"{"x":"\"finish_reason\":\"stop\""}"#, false),
        (#"{"finish_reason":"#, false), (#""finish_reason""#, false),
    ])
    func finishReasonPrefilter(_ json: String, _ expected: Bool) {
        let keys = Array(json.utf8).withUnsafeBytes { ByteScan.chunkKeys($0) }
        #expect(keys.contains(.finishReason) == expected)
    }

    @Test func longOpenAIDocumentHasNoReasonButStillItsUsage() {
        let text = String(repeating: "word ", count: 400)
        let body = #"{"id":"chatcmpl-7","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":""#
            + text + #""},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":400,"total_tokens":409}}"#
        let fixture = Self.document("long openai document", .chatCompletions, body)
        let observation = InspectionHarness.observe(fixture)
        #expect(observation.usages == [Usage(model: "m", promptTokens: 9, completionTokens: 400)])
        #expect(Self.reason(fixture, [fixture.body]) == nil)
    }
}
