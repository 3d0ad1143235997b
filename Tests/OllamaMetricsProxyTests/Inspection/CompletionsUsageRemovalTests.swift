import NIOCore
import Testing
@testable import OllamaMetricsProxy

/// `/v1/completions` with `include_usage` puts `"usage":{"prompt_tokens":0,…}` on every chunk. When the
/// proxy set `include_usage` for a client that did not, that client must receive exactly what Ollama would
/// have sent it without `include_usage`: the chunks without their `usage` member, no usage-only chunk.
@Suite("/v1/completions zero usages removed when withholding")
struct CompletionsUsageRemovalTests {
    private static let withheld = WireFixtures.completionsWithheldUsage
    private static let direct = WireFixtures.completionsWithoutUsage

    private static var variants: [(withheld: ResponseFixture, direct: ResponseFixture)] {
        [
            (withheld, direct),
            (withheld.withLineEnds([0x0D, 0x0A], suffix: "(CRLF)"), direct.withLineEnds([0x0D, 0x0A], suffix: "(CRLF)")),
            (withheld.withLineEnds([0x0D], suffix: "(CR)"), direct.withLineEnds([0x0D], suffix: "(CR)")),
        ]
    }

    @Test func clientReceivesByteForByteWhatOllamaSendsWithoutIncludeUsage() {
        for (withheld, direct) in Self.variants {
            let observed = InspectionHarness.observe(withheld)
            #expect(observed.forwarded == direct.body, "\(withheld.name)")
            #expect(observed.usages == [Usage(model: "llama3.2", promptTokens: 5, completionTokens: 2)])
            #expect(!String(decoding: observed.forwarded, as: UTF8.self).contains("usage"))
        }
    }

    @Test func everyTwoPieceSplitGivesTheSameBytes() {
        for (withheld, direct) in Self.variants {
            for (offset, pieces) in InspectionHarness.twoPieceSplits(withheld.body).enumerated() {
                let observed = InspectionHarness.observe(withheld, pieces: pieces)
                #expect(observed.forwarded == direct.body, "\(withheld.name) split at \(offset)")
                if observed.forwarded != direct.body { return }
            }
        }
    }

    @Test func byteByByteAndRandomPiecesGiveTheSameBytes() {
        for (withheld, direct) in Self.variants {
            let splits = [InspectionHarness.byteByByte(withheld.body)]
                + InspectionHarness.randomSplits(withheld.body, count: 40, seed: 7)
            for pieces in splits {
                let observed = InspectionHarness.observe(withheld, pieces: pieces)
                #expect(observed.forwarded == direct.body, "\(withheld.name) pieces \(pieces.map(\.count))")
                if observed.forwarded != direct.body { return }
            }
        }
    }

    @Test func aChunkArrivingWholeLosesOnlyItsUsageMember() {
        let request = InferenceRequest(model: nil, isStreaming: true, withholdUsageChunks: true)
        var inspector = ResponseInspector(endpoint: .completions, request: request, contentType: WireFixtures.eventStream)
        let forwarded = inspector.inspect(InspectionHarness.buffer(WireFixtures.completionChunks[0]))
        #expect(InspectionHarness.string(forwarded) == WireFixtures.completionChunksWithoutUsage[0])
    }

    @Test(arguments: [
        // Not last: the member goes with the comma before it.
        (#"data: {"choices":[{"text":"a"}],"usage":{"prompt_tokens":0},"model":"m"}"#, #"data: {"choices":[{"text":"a"}],"model":"m"}"#),
        // First: the member goes with the comma after it.
        (#"data: {"usage":{"prompt_tokens":0},"choices":[{"text":"a"}]}"#, #"data: {"choices":[{"text":"a"}]}"#),
        // Whitespace the upstream wrote elsewhere stays.
        (#"data: { "choices" : [ {"text":"a"} ] , "usage" : { "total_tokens" : 0 } }"#, #"data: { "choices" : [ {"text":"a"} ] }"#),
        // Nested zero details are still a zero usage.
        (#"data: {"choices":[{"text":"a"}],"usage":{"prompt_tokens":0,"prompt_tokens_details":{"cached_tokens":0}}}"#, #"data: {"choices":[{"text":"a"}]}"#),
        // Not a zero usage: real counts, null, another type. Not what include_usage adds; forwarded as is.
        (#"data: {"choices":[{"text":"a"}],"usage":{"prompt_tokens":9,"completion_tokens":0}}"#, #"data: {"choices":[{"text":"a"}],"usage":{"prompt_tokens":9,"completion_tokens":0}}"#),
        (#"data: {"choices":[{"text":"a"}],"usage":null}"#, #"data: {"choices":[{"text":"a"}],"usage":null}"#),
        (#"data: {"choices":[{"text":"a"}],"usage":0}"#, #"data: {"choices":[{"text":"a"}],"usage":0}"#),
        // Two usage members: not a shape Ollama writes; forwarded as is.
        (#"data: {"choices":[{"text":"a"}],"usage":{},"usage":{}}"#, #"data: {"choices":[{"text":"a"}],"usage":{},"usage":{}}"#),
        // A "usage" inside a string is text, not a member.
        (#"data: {"choices":[{"text":"\"usage\":{}"}]}"#, #"data: {"choices":[{"text":"\"usage\":{}"}]}"#),
    ])
    func memberRemovalKeepsTheRestOfTheChunk(_ chunk: String, _ expected: String) {
        let request = InferenceRequest(model: nil, isStreaming: true, withholdUsageChunks: true)
        let observed = InspectionHarness.observe(
            endpoint: .completions, request: request, contentType: WireFixtures.eventStream,
            pieces: [InspectionHarness.buffer(chunk + "\n\n")]
        )
        #expect(String(decoding: observed.forwarded, as: UTF8.self) == expected + "\n\n")
    }

    @Test func aChunkWithSeveralDataLinesIsForwardedUnchanged() {
        let chunk = "data: {\"choices\":[{\"text\":\"a\"}],\ndata: \"usage\":{\"prompt_tokens\":0}}\n\n"
        let request = InferenceRequest(model: nil, isStreaming: true, withholdUsageChunks: true)
        let observed = InspectionHarness.observe(
            endpoint: .completions, request: request, contentType: WireFixtures.eventStream,
            pieces: [InspectionHarness.buffer(chunk)]
        )
        #expect(String(decoding: observed.forwarded, as: UTF8.self) == chunk)
    }

    @Test func chatCompletionChunksAreNeverEdited() {
        // Ollama's ChatWriter puts usage only on the usage-only chunk.
        let observed = InspectionHarness.observe(WireFixtures.chatCompletionsWithheldUsage)
        #expect(observed.forwarded == WireFixtures.chatCompletionsWithoutUsage.body)
    }
}
