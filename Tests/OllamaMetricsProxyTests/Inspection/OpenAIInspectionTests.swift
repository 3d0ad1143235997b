import NIOCore
import Testing
@testable import OllamaMetricsProxy

@Suite("OpenAI-compatible /v1/chat/completions, /v1/completions, /v1/embeddings")
struct OpenAIInspectionTests {
    private func observe(withhold: Bool = false, contentType: String = WireFixtures.eventStream, _ pieces: [String]) -> InspectionObservation {
        InspectionHarness.observe(
            endpoint: .chatCompletions, request: InferenceRequest(model: "requested", isStreaming: true, withholdUsageChunks: withhold),
            contentType: contentType, pieces: pieces.map { InspectionHarness.buffer($0) }
        )
    }

    private static let usageChunk = WireFixtures.chatCompletionUsageEvent
    private static let usage = Usage(model: "llama3.2", promptTokens: 9, completionTokens: 2)

    @Test func openAIStreamWithheldUsageChunkIsNeverSeenByClient() {
        let observed = InspectionHarness.observe(WireFixtures.chatCompletionsWithheldUsage)
        let forwarded = String(decoding: observed.forwarded, as: UTF8.self)
        #expect(!forwarded.contains(#""choices":[]"#))
        #expect(forwarded == WireFixtures.chatCompletionChunks.joined() + WireFixtures.done)
        #expect(observed.usages == [Self.usage])
    }

    @Test func clientThatAskedForUsageGetsTheChunkExactlyOnce() {
        let observed = InspectionHarness.observe(WireFixtures.chatCompletionsClientAskedUsage)
        let forwarded = String(decoding: observed.forwarded, as: UTF8.self)
        #expect(forwarded.ranges(of: #""choices":[]"#).count == 1)
        #expect(observed.forwarded == WireFixtures.chatCompletionsClientAskedUsage.body)
        #expect(observed.usages == [Self.usage])
    }

    @Test func completionsClientThatAskedForUsageKeepsTheZeroUsagesAndOnlyTheFinalUsageCounts() {
        let observed = InspectionHarness.observe(WireFixtures.completionsClientAskedUsage)
        let forwarded = String(decoding: observed.forwarded, as: UTF8.self)
        #expect(observed.forwarded == WireFixtures.completionsClientAskedUsage.body)
        #expect(forwarded.ranges(of: #""usage":{"prompt_tokens":0,"completion_tokens":0,"total_tokens":0}"#).count == 3)
        #expect(observed.usages == [Usage(model: "llama3.2", promptTokens: 5, completionTokens: 2)])
    }

    @Test func usageIsReadBeforeDoneSoAClientHangingUpRightAfterIsCounted() {
        let request = InferenceRequest(model: nil, isStreaming: true, withholdUsageChunks: true)
        var inspector = ResponseInspector(endpoint: .chatCompletions, request: request, contentType: WireFixtures.eventStream)
        for chunk in WireFixtures.chatCompletionChunks {
            _ = inspector.inspect(InspectionHarness.buffer(chunk))
            #expect(inspector.takeCompletedUsage() == nil)
        }
        let forwarded = inspector.inspect(InspectionHarness.buffer(Self.usageChunk))
        #expect(forwarded.readableBytes == 0)
        #expect(inspector.takeCompletedUsage() == Self.usage)
        #expect(inspector.takeCompletedUsage() == nil)
    }

    @Test func withholdingForwardsUntouchedPiecesWithoutCopying() {
        let request = InferenceRequest(model: nil, isStreaming: true, withholdUsageChunks: true)
        var inspector = ResponseInspector(endpoint: .chatCompletions, request: request, contentType: WireFixtures.eventStream)
        let chunk = InspectionHarness.buffer(WireFixtures.chatCompletionChunks[0])
        let forwarded = inspector.inspect(chunk)
        #expect(forwarded == chunk)
        #expect(InspectionHarness.storageAddress(forwarded) == InspectionHarness.storageAddress(chunk))

        // An event and the start of the next: the complete event is a slice of the piece, the rest is held.
        let twoHalves = InspectionHarness.buffer(WireFixtures.chatCompletionChunks[1] + "data: {\"id\"")
        let firstPart = inspector.inspect(twoHalves)
        #expect(InspectionHarness.string(firstPart) == WireFixtures.chatCompletionChunks[1])
        #expect(InspectionHarness.storageAddress(firstPart) == InspectionHarness.storageAddress(twoHalves))
        #expect(InspectionHarness.string(inspector.finish() ?? ByteBuffer()) == "data: {\"id\"")
    }

    @Test func usageChunkSharingAPieceWithOtherEventsIsCutOutExactly() {
        let observed = observe(withhold: true, [
            WireFixtures.chatCompletionChunks[2] + Self.usageChunk + WireFixtures.done,
        ])
        #expect(String(decoding: observed.forwarded, as: UTF8.self) == WireFixtures.chatCompletionChunks[2] + WireFixtures.done)
        #expect(observed.usages == [Self.usage])
    }

    @Test func withheldUsageEventWithCommentsAndCRLFIsRemovedWhole() {
        let usage = Self.usageChunk.replacing("\n", with: "\r\n")
        let observed = observe(withhold: true, [
            ": keep-alive\r\n\r\n", usage, "data: [DONE]\r\n\r\n",
        ])
        #expect(String(decoding: observed.forwarded, as: UTF8.self) == ": keep-alive\r\n\r\ndata: [DONE]\r\n\r\n")
        #expect(observed.usages == [Self.usage])
    }

    @Test func errorEventSetsTheStreamErrorAndBlocksLaterUsage() {
        let observed = InspectionHarness.observe(WireFixtures.chatCompletionsErrorEvent)
        #expect(observed.error == "model runner has unexpectedly stopped")
        #expect(observed.usages.isEmpty)
    }

    @Test(arguments: [
        (#"data: {"error":"plain message"}"#, "plain message"),
        (#"data: {"error":{"type":"api_error"}}"#, "error"),
        (#"data: {"error":{"message":"\u003cb\u003e"}}"#, "<b>"),
    ])
    func errorShapesAreRead(_ line: String, _ message: String) {
        #expect(observe([line + "\n\n"]).error == message)
    }

    @Test func nullErrorIsNotAnError() {
        #expect(observe([#"data: {"error":null,"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2}}"# + "\n\n"]).error == nil)
    }

    @Test func streamWithoutIncludeUsageHasNoUsage() {
        #expect(InspectionHarness.observe(WireFixtures.chatCompletionsWithoutUsage).usages.isEmpty)
    }

    @Test(arguments: [
        #"data: {"choices":[],"usage":null}"#,
        #"data: {"choices":[],"usage":"9"}"#,
        #"data: {"choices":[{"index":0}],"usage":{"prompt_tokens":9,"completion_tokens":2}}"#,
        #"data: {"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":2}"#,
        #"data: {"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":2}} trailing"#,
        #"data: not json "usage""#,
    ])
    func chunkThatIsNotAWellFormedUsageOnlyChunkIsNeitherCountedNorWithheld(_ line: String) {
        let observed = observe(withhold: true, [line + "\n\n"])
        #expect(observed.usages.isEmpty)
        #expect(String(decoding: observed.forwarded, as: UTF8.self) == line + "\n\n")
    }

    @Test func usageChunkWithoutChoicesKeyOrWithNullChoicesIsUsageOnly() {
        for line in [#"data: {"usage":{"prompt_tokens":3,"completion_tokens":4}}"#, #"data: {"choices":null,"usage":{"prompt_tokens":3,"completion_tokens":4}}"#] {
            let observed = observe(withhold: true, [line + "\n\n", WireFixtures.done])
            #expect(observed.usages == [Usage(promptTokens: 3, completionTokens: 4)])
            #expect(String(decoding: observed.forwarded, as: UTF8.self) == WireFixtures.done)
        }
    }

    @Test func usageCountsOfTheWrongTypeAreAbsent() {
        let observed = observe([#"data: {"model":"m","choices":[],"usage":{"prompt_tokens":"9","completion_tokens":2.5,"total_tokens":11}}"# + "\n\n"])
        #expect(observed.usages == [Usage(model: "m")])
    }

    @Test func secondUsageChunkIsWithheldButNotCountedAgain() {
        let observed = observe(withhold: true, [Self.usageChunk, Self.usageChunk.replacing("9", with: "8"), WireFixtures.done])
        #expect(observed.usages == [Self.usage])
        #expect(String(decoding: observed.forwarded, as: UTF8.self) == WireFixtures.done)
    }

    @Test func multiLineDataAndFieldVariantsAreJoinedAndRead() {
        let event = "id: 1\r\n: comment\r\nretry: 10\r\nevent: message\r\ndata:{\"model\":\"m\",\r\ndata: \"choices\":[],\r\ndata:  \"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2}}\r\n\r\n"
        let observed = observe(withhold: true, [event, WireFixtures.done])
        #expect(observed.usages == [Usage(model: "m", promptTokens: 1, completionTokens: 2)])
        #expect(String(decoding: observed.forwarded, as: UTF8.self) == WireFixtures.done)
    }

    @Test func doneMarkerAndUnterminatedLastEventAreForwarded() {
        let observed = observe(withhold: true, [WireFixtures.chatCompletionChunks[0], "data: [DONE]"])
        #expect(String(decoding: observed.forwarded, as: UTF8.self) == WireFixtures.chatCompletionChunks[0] + "data: [DONE]")
    }

    @Test func unterminatedUsageEventAtTheEndIsStillReadAndWithheld() {
        let observed = observe(withhold: true, [WireFixtures.chatCompletionChunks[2], String(Self.usageChunk.dropLast(2))])
        #expect(observed.usages == [Self.usage])
        #expect(String(decoding: observed.forwarded, as: UTF8.self) == WireFixtures.chatCompletionChunks[2])
    }

    @Test func nonStreamingDocumentsComplete() {
        for fixture in [WireFixtures.chatCompletionsDocument, WireFixtures.completionsDocument, WireFixtures.openAIEmbeddingsDocument] {
            let observed = InspectionHarness.observe(fixture)
            #expect(observed.usages == [fixture.expectedUsage!], "\(fixture.name)")
            #expect(observed.usageBeforeFinish, "\(fixture.name)")
        }
    }

    @Test func errorDocumentInA2xxBodyIsAnError() {
        let observed = observe(contentType: WireFixtures.encoderJSON, [
            #"{"error":{"message":"model 'x' not found","type":"not_found_error","param":null,"code":null}}"# + "\n",
        ])
        #expect(observed.error == "model 'x' not found")
        #expect(observed.usages.isEmpty)
    }

    @Test func eventStreamWithoutContentTypeFallsBackOnTheRequest() {
        let observed = InspectionHarness.observe(
            endpoint: .chatCompletions, request: InferenceRequest(model: nil, isStreaming: true, withholdUsageChunks: true),
            contentType: nil, pieces: [InspectionHarness.buffer(WireFixtures.chatCompletionsWithheldUsage.body)]
        )
        #expect(observed.usages == [Self.usage])
        #expect(observed.forwarded == WireFixtures.chatCompletionsWithheldUsage.expectedForwarded)
    }

    @Test func contentTypeIsMatchedCaseInsensitivelyWithParameters() {
        let observed = observe(withhold: true, contentType: "Text/Event-Stream; charset=utf-8", [Self.usageChunk])
        #expect(observed.usages == [Self.usage])
        #expect(observed.forwarded.isEmpty)
    }
}
