import NIOCore
import Testing
@testable import OllamaMetricsProxy

@Suite("Native /api/* responses")
struct NativeInspectionTests {
    private func observe(_ endpoint: InferenceEndpoint = .generate, contentType: String? = WireFixtures.ndjson, _ lines: [String]) -> InspectionObservation {
        InspectionHarness.observe(
            endpoint: endpoint, request: InferenceRequest(model: nil, isStreaming: true, withholdUsageChunks: false),
            contentType: contentType, pieces: [InspectionHarness.buffer(lines.joined())]
        )
    }

    private static func finalLine(_ metrics: String) -> String {
        #"{"model":"llama3.2","created_at":"2025-06-01T12:00:00Z","response":"","done":true,"done_reason":"stop""# + metrics + "}\n"
    }

    @Test func generateFinalLineWithThreeHundredThousandContextTokensIsRead() {
        let context = (0..<300_000).map { String(($0 &* 7919) % 128_256) }.joined(separator: ",")
        let line = #"{"model":"llama3.2","created_at":"2025-06-01T12:00:00Z","response":"","done":true,"done_reason":"stop","context":["#
            + context + #"],"total_duration":4935886791,"load_duration":534986708,"prompt_eval_count":299000,"prompt_eval_duration":107345000,"eval_count":1000,"eval_duration":4289432000}"# + "\n"
        let body = Array((#"{"model":"llama3.2","created_at":"2025-06-01T12:00:00Z","response":"x","done":false}"# + "\n" + line).utf8)
        #expect(body.count > 1_800_000)
        let expected = Usage(
            model: "llama3.2", promptTokens: 299_000, completionTokens: 1000, totalDurationNanos: 4_935_886_791,
            loadDurationNanos: 534_986_708, promptEvalDurationNanos: 107_345_000, evalDurationNanos: 4_289_432_000
        )
        let request = InferenceRequest(model: nil, isStreaming: true, withholdUsageChunks: false)
        for pieceSize in [body.count, 65_536, 4096, 1000, 7] {
            let pieces = InspectionHarness.chunks(body, of: pieceSize).map { InspectionHarness.buffer($0) }
            let observed = InspectionHarness.observe(endpoint: .generate, request: request, contentType: WireFixtures.ndjson, pieces: pieces)
            #expect(observed.usages == [expected], "pieces of \(pieceSize) bytes")
            #expect(observed.forwarded == body)
            #expect(observed.usageBeforeFinish)
        }
    }

    @Test func finalLineCountsOnlyWhenTopLevelDoneIsTrue() {
        let observed = observe(.generate, contentType: WireFixtures.ndjson, [
            #"{"model":"m","created_at":"t","response":"\"done\":true}","done":false}"# + "\n",
            #"{"model":"m","created_at":"t","message":{"role":"assistant","content":"","done":true},"done":false,"eval_count":3}"# + "\n",
            #"{"model":"m","nested":{"done":true,"eval_count":4},"eval_count":5}"# + "\n",
        ])
        #expect(observed.usages.isEmpty)
    }

    @Test func stringsWithEscapesAndBracesDoNotConfuseTheReader() {
        let observed = observe(.generate, contentType: WireFixtures.ndjson, [
            #"{"model":"m\"}{\\","created_at":"t","response":"\\\"{[}]\u0022","context":[{"a":"]}"},[[],{}]],"done":true,"eval_count":3}"# + "\n",
        ])
        #expect(observed.usages == [Usage(model: #"m"}{\"#, completionTokens: 3)])
    }

    @Test func keysWithEscapedQuotesAreSkippedCorrectly() {
        let observed = observe(.generate, contentType: WireFixtures.ndjson, [
            #"{"we\"ird\\":"\"","done\"":false,"model":"m","done":true,"eval_count":3}"# + "\n",
        ])
        #expect(observed.usages == [Usage(model: "m", completionTokens: 3)])
    }

    @Test(arguments: [
        (#","eval_count":"12""#, "a count sent as a string"),
        (#","eval_count":-12"#, "a negative count"),
        (#","eval_count":12.0"#, "a count with a fraction"),
        (#","eval_count":1e3"#, "a count with an exponent"),
        (#","eval_count":99999999999999999999"#, "a count beyond 64 bits"),
        (#","eval_count":null"#, "a null count"),
        (#","eval_count":[12]"#, "a count in an array"),
        (#","eval_count":{"value":12}"#, "a count in an object"),
        (#","eval_count":true"#, "a boolean count"),
    ])
    func fieldOfTheWrongTypeIsTreatedAsAbsent(_ metrics: String, _ description: String) {
        let observed = observe(.generate, contentType: WireFixtures.ndjson, [Self.finalLine(metrics + #","prompt_eval_count":26"#)])
        #expect(observed.usages == [Usage(model: "llama3.2", promptTokens: 26)], "\(description)")
    }

    @Test(arguments: [
        #","eval_count":012"#, #","eval_count":12x"#, #","eval_count":-"#, #","eval_count":tru"#, #","eval_count":"12"#,
        #","eval_count":12,"#, #","eval_count" 12"#, #","eval_count":12]"#, #","context":[1,2}"#,
    ])
    func malformedFinalLineGivesNoUsage(_ metrics: String) {
        #expect(observe(.generate, contentType: WireFixtures.ndjson, [Self.finalLine(metrics)]).usages.isEmpty)
    }

    @Test func largestDurationThatFitsIsRead() {
        let observed = observe(.generate, contentType: WireFixtures.ndjson, [Self.finalLine(#","total_duration":9223372036854775807,"eval_duration":9223372036854775808"#)])
        #expect(observed.usages == [Usage(model: "llama3.2", totalDurationNanos: Int64.max)])
    }

    @Test func whitespaceInsideTheObjectIsAccepted() {
        let observed = observe(.generate, contentType: WireFixtures.ndjson, ["  { \"model\" : \"m\" ,\t\"done\" : true , \"eval_count\" : 7 }  \r\n"])
        #expect(observed.usages == [Usage(model: "m", completionTokens: 7)])
    }

    @Test func objectFollowedByGarbageOnItsLineIsNotUsage() {
        #expect(observe(.generate, contentType: WireFixtures.ndjson, [#"{"model":"m","done":true,"eval_count":7} x"# + "\n"]).usages.isEmpty)
        #expect(observe(.generate, contentType: WireFixtures.ndjson, [#"{"model":"m","done":true,"eval_count":7}{"#]).usages.isEmpty)
    }

    @Test func finalLineWithoutTrailingNewlineIsReadAtFinish() {
        let request = InferenceRequest(model: nil, isStreaming: true, withholdUsageChunks: false)
        var inspector = ResponseInspector(endpoint: .chat, request: request, contentType: WireFixtures.ndjson)
        _ = inspector.inspect(InspectionHarness.buffer(#"{"model":"m","done":true,"eval_count":7}"#))
        #expect(inspector.takeCompletedUsage() == nil)
        #expect(inspector.finish() == nil)
        #expect(inspector.takeCompletedUsage() == Usage(model: "m", completionTokens: 7))
    }

    @Test func onlyTheFirstFinalLineCounts() {
        let observed = observe(.generate, contentType: WireFixtures.ndjson, [
            #"{"model":"a","done":true,"eval_count":1}"# + "\n",
            #"{"model":"b","done":true,"eval_count":2}"# + "\n",
        ])
        #expect(observed.usages == [Usage(model: "a", completionTokens: 1)])
    }

    @Test func errorAfterTheFinalLineIsReportedButTheUsageStands() {
        let observed = observe(.generate, contentType: WireFixtures.ndjson, [
            #"{"model":"a","done":true,"eval_count":1}"# + "\n",
            #"{"error":"late"}"# + "\n",
        ])
        #expect(observed.usages == [Usage(model: "a", completionTokens: 1)])
        #expect(observed.error == "late")
    }

    @Test func finalLineAfterAnErrorIsNotCounted() {
        let observed = observe(.generate, contentType: WireFixtures.ndjson, [
            #"{"error":"model runner crashed"}"# + "\n",
            #"{"model":"a","done":true,"eval_count":1}"# + "\n",
        ])
        #expect(observed.usages.isEmpty)
        #expect(observed.error == "model runner crashed")
    }

    @Test func errorMessageIsUnescaped() {
        let observed = observe(.generate, contentType: WireFixtures.ndjson, [#"{"error":"model \u0027x\u0027 \u003cnot\u003e found: \"é\" \/ \ud83d\ude00"}"# + "\n"])
        #expect(observed.error == "model 'x' <not> found: \"é\" / 😀")
    }

    @Test func modelNameIsUnescaped() {
        let observed = observe(.generate, contentType: WireFixtures.ndjson, [#"{"model":"hf.co\/org\/m\u00e9:Q4","done":true}"# + "\n"])
        #expect(observed.usages == [Usage(model: "hf.co/org/mé:Q4")])
    }

    @Test func embedReplyCompletesWithPromptTokensAndTimings() {
        let observed = observe(.embed, contentType: WireFixtures.ginJSON, [WireFixtures.embedDocument.parts[0].bytes].map {
            String(decoding: $0, as: UTF8.self)
        })
        #expect(observed.usages == [WireFixtures.embedDocument.expectedUsage!])
        #expect(observed.usageBeforeFinish)
    }

    @Test func prettyPrintedDocumentIsRead() {
        let observed = observe(.chat, contentType: WireFixtures.ginJSON, [
            "{\n  \"model\": \"m\",\n  \"message\": {\n    \"content\": \"a\\nb\"\n  },\n  \"done\": true,\n  \"eval_count\": 3\n}\n",
        ])
        #expect(observed.usages == [Usage(model: "m", completionTokens: 3)])
    }

    @Test func documentThatIsNotAnObjectGivesNothing() {
        #expect(observe(.chat, contentType: WireFixtures.ginJSON, ["[1,2,3]"]).usages.isEmpty)
        #expect(observe(.embed, contentType: WireFixtures.ginJSON, ["Internal Server Error"]).usages.isEmpty)
        #expect(observe(.embed, contentType: WireFixtures.ginJSON, [""]).usages.isEmpty)
    }

    @Test func missingContentTypeFallsBackOnTheRequest() {
        let streaming = InspectionHarness.observe(
            endpoint: .chat, request: InferenceRequest(model: nil, isStreaming: true, withholdUsageChunks: false),
            contentType: nil, pieces: [InspectionHarness.buffer(WireFixtures.chatStream.body)]
        )
        #expect(streaming.usages == [WireFixtures.chatStream.expectedUsage!])
        let single = InspectionHarness.observe(
            endpoint: .chat, request: InferenceRequest(model: nil, isStreaming: false, withholdUsageChunks: false),
            contentType: nil, pieces: [InspectionHarness.buffer(WireFixtures.chatDocument.body)]
        )
        #expect(single.usages == [WireFixtures.chatDocument.expectedUsage!])
    }

    @Test func forwardedChunkIsTheSameBuffer() {
        let request = InferenceRequest(model: nil, isStreaming: true, withholdUsageChunks: false)
        var inspector = ResponseInspector(endpoint: .generate, request: request, contentType: WireFixtures.ndjson)
        let chunk = InspectionHarness.buffer(WireFixtures.generateStream.body)
        let forwarded = inspector.inspect(chunk)
        #expect(forwarded == chunk)
        #expect(InspectionHarness.storageAddress(forwarded) == InspectionHarness.storageAddress(chunk))
    }

    @Test func deeplyNestedValuesDoNotCrash() {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        let observed = observe(.generate, contentType: WireFixtures.ndjson, [#"{"model":"m","context":"# + deep + #","done":true,"eval_count":2}"# + "\n"])
        #expect(observed.usages == [Usage(model: "m", completionTokens: 2)])
        let unbalanced = String(repeating: "{\"a\":[", count: 50_000)
        #expect(observe(.generate, contentType: WireFixtures.ndjson, [#"{"model":"m","context":"# + unbalanced + "\n", #"{"done":true}"# + "\n"]).usages == [Usage()])
    }

    @Test func oversizedModelValueAbandonsTheObject() {
        let huge = String(repeating: "m", count: StreamingObjectReader.captureLimit + 10)
        let observed = observe(.generate, contentType: WireFixtures.ndjson, [#"{"model":""# + huge + #"","done":true,"eval_count":2}"# + "\n", #"{"model":"n","done":true}"# + "\n"])
        #expect(observed.usages == [Usage(model: "n")])
    }
}
