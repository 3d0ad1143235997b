import NIOCore
import Testing
@testable import OllamaMetricsProxy

@Suite("Request bodies: model, streaming, and the minimal include_usage edit")
struct RequestInspectorTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var endpoint: InferenceEndpoint
        var body: String
        var model: String?
        var isStreaming: Bool
        /// The body Ollama must receive, or nil when the client's body is forwarded untouched.
        var rewritten: String?
        var testDescription: String { name }

        init(_ name: String, _ body: String, model: String?, streaming: Bool, rewritten: String?) {
            self.init(name, .chatCompletions, body, model: model, streaming: streaming, rewritten: rewritten)
        }

        init(_ name: String, _ endpoint: InferenceEndpoint, _ body: String, model: String?, streaming: Bool, rewritten: String?) {
            self.name = name
            self.endpoint = endpoint
            self.body = body
            self.model = model
            self.isStreaming = streaming
            self.rewritten = rewritten
        }
    }

    static let cases: [Case] = [
        Case(
            "no stream_options: inserted before the closing brace",
            #"{"model":"llama3.2","messages":[{"role":"user","content":"hi"}],"stream":true}"#,
            model: "llama3.2", streaming: true,
            rewritten: #"{"model":"llama3.2","messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":true}}"#
        ),
        Case(
            "formatting and a look-alike key inside a string are preserved",
            #"{ "model" : "m", "stream" : true , "messages":[{"content":"}{\"stream_options\""}] }"#,
            model: "m", streaming: true,
            rewritten: #"{ "model" : "m", "stream" : true , "messages":[{"content":"}{\"stream_options\""}] ,"stream_options":{"include_usage":true}}"#
        ),
        Case(
            "big integers and floats are preserved byte for byte",
            "{\"model\":\"m\",\"seed\":12345678901234567890,\"temperature\":0.1000000000000000055511151231257827,\"stream\":true,\n\t\"max_tokens\":1e400}\n",
            model: "m", streaming: true,
            rewritten: "{\"model\":\"m\",\"seed\":12345678901234567890,\"temperature\":0.1000000000000000055511151231257827,\"stream\":true,\n\t\"max_tokens\":1e400,\"stream_options\":{\"include_usage\":true}}\n"
        ),
        Case(
            "stream_options without include_usage keeps the client's keys",
            #"{"model":"m","stream":true,"stream_options":{"x_custom":[1,{"a":null}]},"n":1}"#,
            model: "m", streaming: true,
            rewritten: #"{"model":"m","stream":true,"stream_options":{"include_usage":true,"x_custom":[1,{"a":null}]},"n":1}"#
        ),
        Case(
            "empty stream_options object",
            #"{"model":"m","stream_options":{ },"stream":true}"#,
            model: "m", streaming: true,
            rewritten: #"{"model":"m","stream_options":{"include_usage":true },"stream":true}"#
        ),
        Case(
            "include_usage false is replaced",
            #"{"model":"m","stream":true,"stream_options":{"a":1,"include_usage" : false,"b":2}}"#,
            model: "m", streaming: true,
            rewritten: #"{"model":"m","stream":true,"stream_options":{"a":1,"include_usage" : true,"b":2}}"#
        ),
        Case(
            "include_usage null is replaced",
            #"{"model":"m","stream":true,"stream_options":{"include_usage":null}}"#,
            model: "m", streaming: true,
            rewritten: #"{"model":"m","stream":true,"stream_options":{"include_usage":true}}"#
        ),
        Case(
            "stream_options null is replaced",
            #"{"model":"m","stream_options":null,"stream":true}"#,
            model: "m", streaming: true,
            rewritten: #"{"model":"m","stream_options":{"include_usage":true},"stream":true}"#
        ),
        Case(
            "client already asked: no edit, usage chunks are the client's",
            #"{"model":"m","stream":true,"stream_options":{"include_usage":true}}"#,
            model: "m", streaming: true, rewritten: nil
        ),
        Case(
            "last duplicate include_usage wins, as in Go",
            #"{"model":"m","stream":true,"stream_options":{"include_usage":true,"include_usage":false}}"#,
            model: "m", streaming: true,
            rewritten: #"{"model":"m","stream":true,"stream_options":{"include_usage":true,"include_usage":true}}"#
        ),
        Case(
            "keys match case-insensitively and through escapes, as in Go",
            #"{"Model":"m","STREAM":true,"Stream_Options":{"include_\u0075sage":false}}"#,
            model: "m", streaming: true,
            rewritten: #"{"Model":"m","STREAM":true,"Stream_Options":{"include_\u0075sage":true}}"#
        ),
        Case(
            "nested stream_options and stream keys are not the top-level ones",
            #"{"model":"m","stream":true,"metadata":{"stream_options":{"include_usage":true},"stream":false}}"#,
            model: "m", streaming: true,
            rewritten: #"{"model":"m","stream":true,"metadata":{"stream_options":{"include_usage":true},"stream":false},"stream_options":{"include_usage":true}}"#
        ),
        Case(
            "completions endpoint is edited too",
            .completions, #"{"model":"m","prompt":"p","stream":true}"#,
            model: "m", streaming: true,
            rewritten: #"{"model":"m","prompt":"p","stream":true,"stream_options":{"include_usage":true}}"#
        ),
        Case(
            "bytes after the object are ignored, as Go's decoder ignores them",
            "{\"model\":\"m\",\"stream\":true} \n",
            model: "m", streaming: true,
            rewritten: "{\"model\":\"m\",\"stream\":true,\"stream_options\":{\"include_usage\":true}} \n"
        ),
        Case("stream false: no edit", #"{"model":"m","stream":false}"#, model: "m", streaming: false, rewritten: nil),
        Case("stream absent: /v1 does not stream", #"{"model":"m"}"#, model: "m", streaming: false, rewritten: nil),
        Case("stream null: the default", #"{"model":"m","stream":null}"#, model: "m", streaming: false, rewritten: nil),
        Case("stream of the wrong type: the default", #"{"model":"m","stream":"true"}"#, model: "m", streaming: false, rewritten: nil),
        Case(
            "stream_options of the wrong type: no edit",
            #"{"model":"m","stream":true,"stream_options":"yes"}"#, model: "m", streaming: true, rewritten: nil
        ),
        Case(
            "include_usage of the wrong type: no edit",
            #"{"model":"m","stream":true,"stream_options":{"include_usage":1}}"#, model: "m", streaming: true, rewritten: nil
        ),
        Case("malformed JSON: no edit, model best effort", #"{"model":"m","stream":true,"messages":[}"#, model: "m", streaming: true, rewritten: nil),
        Case("truncated JSON: no edit", #"{"model":"m","stream":true"#, model: "m", streaming: true, rewritten: nil),
        Case("not an object", #"["model","m"]"#, model: nil, streaming: false, rewritten: nil),
        Case("empty body", "", model: nil, streaming: false, rewritten: nil),
        Case("model of the wrong type", #"{"model":7,"stream":true,"stream_options":{"include_usage":true}}"#, model: nil, streaming: true, rewritten: nil),
        Case("model unescaped", #"{"model":"llama\u00e9\/x \"q\"","stream":false}"#, model: #"llamaé/x "q""#, streaming: false, rewritten: nil),
        Case("native generate streams by default, never edited", .generate, #"{"model":"m","prompt":"p"}"#, model: "m", streaming: true, rewritten: nil),
        Case("native chat stream false", .chat, #"{"model":"m","messages":[],"stream":false}"#, model: "m", streaming: false, rewritten: nil),
        Case("responses: no injection", .responses, #"{"model":"m","input":"p","stream":true}"#, model: "m", streaming: true, rewritten: nil),
        Case("messages: no injection", .messages, #"{"model":"m","max_tokens":10,"stream":true}"#, model: "m", streaming: true, rewritten: nil),
        Case("embeddings never stream", .openAIEmbeddings, #"{"model":"m","input":"x"}"#, model: "m", streaming: false, rewritten: nil),
        Case("embed", .embed, #"{"model":"all-minilm","input":["a","b"]}"#, model: "all-minilm", streaming: false, rewritten: nil),
    ]

    @Test(arguments: cases)
    func requestBody(_ testCase: Case) {
        let (request, rewritten) = RequestInspector.inspect(endpoint: testCase.endpoint, body: InspectionHarness.buffer(testCase.body))
        #expect(request.model == testCase.model)
        #expect(request.isStreaming == testCase.isStreaming)
        #expect(request.withholdUsageChunks == (testCase.rewritten != nil))
        #expect(rewritten.map(InspectionHarness.string) == testCase.rewritten)
    }

    @Test func emptyTopLevelObjectGetsNoLeadingComma() {
        let reading = Array("{ }".utf8).withUnsafeBytes { RequestBodyReading(reading: $0) }
        let edit = reading.includeUsageEdit
        #expect(edit?.range == 2..<2)
        #expect(edit.map { "\($0.replacement)" } == #""stream_options":{"include_usage":true}"#)
    }

    @Test func bodyWithANonZeroReaderIndexIsEditedCorrectly() {
        var buffer = InspectionHarness.buffer("XXXX" + #"{"model":"m","stream":true}"#)
        buffer.moveReaderIndex(forwardBy: 4)
        let (request, rewritten) = RequestInspector.inspect(endpoint: .chatCompletions, body: buffer)
        #expect(request == InferenceRequest(model: "m", isStreaming: true, withholdUsageChunks: true))
        #expect(rewritten.map(InspectionHarness.string) == #"{"model":"m","stream":true,"stream_options":{"include_usage":true}}"#)
    }

    @Test func rewrittenBodyIsValidForTheResponseSide() {
        // The edited request's response is then withheld: the whole path, end to end.
        let (request, _) = RequestInspector.inspect(
            endpoint: .chatCompletions, body: InspectionHarness.buffer(#"{"model":"llama3.2","stream":true,"messages":[]}"#)
        )
        let observed = InspectionHarness.observe(
            endpoint: .chatCompletions, request: request, contentType: WireFixtures.eventStream,
            pieces: [InspectionHarness.buffer(WireFixtures.chatCompletionsWithheldUsage.body)]
        )
        #expect(observed.forwarded == WireFixtures.chatCompletionsWithheldUsage.expectedForwarded)
        #expect(observed.usages == [WireFixtures.chatCompletionsWithheldUsage.expectedUsage!])
    }

    @Test func garbageNeverCrashes() {
        var generator = InspectionRandom(seed: 7)
        let alphabet = Array(#"{}[]":,\ ntrufalse0123456789-.eE"#.utf8) + [0x00, 0xFF, 0x0A]
        for _ in 0..<2000 {
            let length = Int(generator.next() % 40)
            let bytes = (0..<length).map { _ in alphabet[Int(generator.next() % UInt64(alphabet.count))] }
            let body = Array(#"{"model":"m","stream":true,"#.utf8) + bytes
            _ = RequestInspector.inspect(endpoint: .chatCompletions, body: InspectionHarness.buffer(body))
        }
    }
}
