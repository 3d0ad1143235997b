import NIOCore
import Testing
@testable import OllamaMetricsProxy

@Suite("Anthropic-compatible /v1/messages")
struct AnthropicInspectionTests {
    private func observe(contentType: String = WireFixtures.eventStream, _ events: [String]) -> InspectionObservation {
        InspectionHarness.observe(
            endpoint: .messages, request: InferenceRequest(model: nil, isStreaming: true, withholdUsageChunks: false),
            contentType: contentType, pieces: events.map { InspectionHarness.buffer($0) }
        )
    }

    private static func start(_ usage: String) -> String {
        WireFixtures.anthropicEvent(
            "message_start",
            #"{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"m","content":[],"usage":"# + usage + "}}"
        )
    }

    private static func delta(_ usage: String) -> String {
        WireFixtures.anthropicEvent("message_delta", #"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":"# + usage + "}")
    }

    @Test func anthropicUsesLastNonZeroCountsNotTheEstimate() {
        let observed = InspectionHarness.observe(WireFixtures.anthropicStream)
        #expect(observed.usages == [Usage(model: "llama3.2", promptTokens: 26, completionTokens: 5)])
    }

    @Test func zeroInTheDeltaKeepsTheEarlierNonZeroCount() {
        let observed = observe([Self.start(#"{"input_tokens":12,"output_tokens":0}"#), Self.delta(#"{"input_tokens":0,"output_tokens":5}"#)])
        #expect(observed.usages == [Usage(model: "m", promptTokens: 12, completionTokens: 5)])
    }

    @Test func deltaWithoutInputTokensKeepsTheStartCount() {
        let observed = observe([Self.start(#"{"input_tokens":12,"output_tokens":1}"#), Self.delta(#"{"output_tokens":5}"#)])
        #expect(observed.usages == [Usage(model: "m", promptTokens: 12, completionTokens: 5)])
    }

    @Test func zeroCountsAreReportedAsZeroWhenNothingElseWasSeen() {
        let observed = observe([Self.start(#"{"input_tokens":0,"output_tokens":0}"#), Self.delta(#"{"input_tokens":0,"output_tokens":0}"#)])
        #expect(observed.usages == [Usage(model: "m", promptTokens: 0, completionTokens: 0)])
    }

    @Test func cacheTokensCountAsPromptTokens() {
        let observed = observe([
            Self.start(#"{"input_tokens":12,"cache_creation_input_tokens":100,"cache_read_input_tokens":0,"output_tokens":1}"#),
            Self.delta(#"{"input_tokens":26,"cache_read_input_tokens":50,"output_tokens":5}"#),
        ])
        #expect(observed.usages == [Usage(model: "m", promptTokens: 176, completionTokens: 5)])
    }

    @Test func eventTypeIsReadFromTheJSONWhenThereIsNoEventLine() {
        let observed = observe([
            #"data: {"type":"message_start","message":{"model":"m","usage":{"input_tokens":3,"output_tokens":0}}}"# + "\n\n",
            #"data: {"type":"message_delta","usage":{"input_tokens":4,"output_tokens":5}}"# + "\n\n",
        ])
        #expect(observed.usages == [Usage(model: "m", promptTokens: 4, completionTokens: 5)])
    }

    @Test func eventLineWinsOverTheJSONType() {
        let observed = observe([
            "event: content_block_delta\n" + #"data: {"type":"message_delta","usage":{"input_tokens":4,"output_tokens":5}}"# + "\n\n",
        ])
        #expect(observed.usages.isEmpty)
    }

    @Test func errorEventIsReportedAndNoUsageFollows() {
        let observed = InspectionHarness.observe(WireFixtures.anthropicErrorEvent)
        #expect(observed.error == "Overloaded")
        #expect(observed.usages.isEmpty)
    }

    @Test func errorEventWithoutMessageStillCounts() {
        #expect(observe([WireFixtures.anthropicEvent("error", #"{"type":"error"}"#)]).error == "error")
    }

    @Test func streamCutBeforeMessageDeltaHasNoUsage() {
        #expect(InspectionHarness.observe(WireFixtures.anthropicTruncated).usages.isEmpty)
    }

    @Test func malformedMessageStartIsIgnoredEntirely() {
        let observed = observe([
            WireFixtures.anthropicEvent("message_start", #"{"type":"message_start","message":{"model":"bad","usage":{"input_tokens":99}"#),
            Self.delta(#"{"output_tokens":5}"#),
        ])
        #expect(observed.usages == [Usage(completionTokens: 5)])
    }

    @Test func nonStreamingReplyCompletes() {
        let observed = InspectionHarness.observe(WireFixtures.anthropicDocument)
        #expect(observed.usages == [Usage(model: "llama3.2", promptTokens: 26, completionTokens: 5)])
    }

    @Test func nonStreamingReplyWithCacheTokens() {
        let observed = observe(contentType: WireFixtures.encoderJSON, [
            #"{"id":"msg_1","type":"message","model":"m","usage":{"input_tokens":26,"cache_creation_input_tokens":4,"cache_read_input_tokens":6,"output_tokens":5}}"# + "\n",
        ])
        #expect(observed.usages == [Usage(model: "m", promptTokens: 36, completionTokens: 5)])
    }

    @Test func errorDocumentIsAnError() {
        let observed = observe(contentType: WireFixtures.encoderJSON, [
            #"{"type":"error","error":{"type":"not_found_error","message":"model 'x' not found"},"request_id":"req_0123456789abcdef01234567"}"# + "\n",
        ])
        #expect(observed.error == "model 'x' not found")
        #expect(observed.usages.isEmpty)
    }
}

@Suite("OpenAI Responses /v1/responses")
struct ResponsesInspectionTests {
    private func observe(contentType: String = WireFixtures.eventStream, _ events: [String]) -> InspectionObservation {
        InspectionHarness.observe(
            endpoint: .responses, request: InferenceRequest(model: nil, isStreaming: true, withholdUsageChunks: false),
            contentType: contentType, pieces: events.map { InspectionHarness.buffer($0) }
        )
    }

    @Test func completedEventGivesUsageAndModel() {
        #expect(InspectionHarness.observe(WireFixtures.responsesStream).usages == [Usage(model: "llama3.2", promptTokens: 9, completionTokens: 2)])
    }

    @Test func incompleteEventStillCountsItsTokens() {
        #expect(InspectionHarness.observe(WireFixtures.responsesIncomplete).usages == [Usage(model: "llama3.2", promptTokens: 9, completionTokens: 16)])
    }

    @Test func failedEventIsAnErrorWithItsMessage() {
        let observed = InspectionHarness.observe(WireFixtures.responsesFailed)
        #expect(observed.error == "web search failed")
        #expect(observed.usages.isEmpty)
    }

    @Test func failedEventWithoutMessageIsStillAnError() {
        let observed = observe([WireFixtures.anthropicEvent("response.failed", #"{"response":{"error":null,"status":"failed"},"type":"response.failed"}"#)])
        #expect(observed.error == "response.failed")
    }

    @Test func errorEventIsAnError() {
        let observed = observe([
            WireFixtures.anthropicEvent("error", #"{"code":"server_error","message":"boom","param":null,"sequence_number":3,"type":"error"}"#),
            WireFixtures.responsesStream.parts.last.map { String(decoding: $0.bytes, as: UTF8.self) }!,
        ])
        #expect(observed.error == "boom")
        #expect(observed.usages.isEmpty)
    }

    @Test func createdEventWithNullUsageDoesNotComplete() {
        #expect(observe(Array(WireFixtures.responsesEvents.prefix(2))).usages.isEmpty)
    }

    @Test func nonStreamingReplyCompletes() {
        let observed = InspectionHarness.observe(WireFixtures.responsesDocument)
        #expect(observed.usages == [Usage(model: "llama3.2", promptTokens: 9, completionTokens: 2)])
        #expect(observed.error == nil)
    }

    @Test func nonStreamingFailedReplyIsAnError() {
        let observed = observe(contentType: WireFixtures.encoderJSON, [
            #"{"id":"resp_1","status":"failed","model":"m","error":{"code":"api_error","message":"no"},"usage":null}"# + "\n",
        ])
        #expect(observed.error == "no")
        #expect(observed.usages.isEmpty)
    }
}
