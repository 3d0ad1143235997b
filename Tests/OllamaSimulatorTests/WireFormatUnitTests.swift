import Testing

@testable import OllamaSimulator

/// The pure pieces: Go JSON writing and reading, Go time formats, the usage numbers, controls, the host check.
@Suite struct WireFormatUnitTests {
    @Test(arguments: [
        ("a<b>&c", #""a\u003cb\u003e\u0026c""#),
        ("quote\" back\\ slash", #""quote\" back\\ slash""#),
        ("\n\r\t\u{08}\u{0C}", #""\n\r\t\b\f""#),
        ("\u{01}\u{1F}", #""\u0001\u001f""#),
        ("line\u{2028}para\u{2029}", #""line\u2028para\u2029""#),
        ("é😀\u{7F}", "\"é😀\u{7F}\""),
    ])
    func stringsAreEscapedLikeEncodingJSON(input: String, expected: String) {
        #expect(GoJSON.encodeString(.string(input)) == expected)
    }

    @Test(arguments: [
        (1.0, "1"), (0.7, "0.7"), (-2.5, "-2.5"), (1e20, "100000000000000000000"), (1e21, "1e+21"),
        (1e-7, "1e-7"), (0.000001, "0.000001"), (123456.789, "123456.789"), (3.0e-10, "3e-10"), (0, "0"),
    ])
    func floatsAreFormattedLikeEncodingJSON(value: Double, expected: String) {
        #expect(GoJSON.formatFloat64(value) == expected)
    }

    @Test func mapsSortKeysAndStructsKeepTheirOrder() {
        let map = JSONValue.map(["type": "x", "sequence_number": 1, "item_id": "i", "delta": "d"])
        #expect(GoJSON.encodeString(map) == #"{"delta":"d","item_id":"i","sequence_number":1,"type":"x"}"#)
        let object: JSONValue = ["z": 1, "a": [true, nil], "m": [:]]
        #expect(GoJSON.encodeString(object) == #"{"z":1,"a":[true,null],"m":{}}"#)
    }

    @Test(arguments: [
        ("", GoJSONDecodingError.empty),
        ("   ", .empty),
        ("{", .unexpectedEnd),
        (#"{"a":tru"#, .unexpectedEnd),
        ("nope", .syntax("invalid character 'o' in literal null (expecting 'u')")),
        ("{1}", .syntax("invalid character '1' looking for beginning of object key string")),
        (#"{"a" 1}"#, .syntax("invalid character '1' after object key")),
        (#"{"a":1 "b":2}"#, .syntax(#"invalid character '"' after object key:value pair"#)),
        ("[1 2]", .syntax("invalid character '2' after array element")),
        ("[1,]", .syntax("invalid character ']' looking for beginning of value")),
        ("{\"a\":\"\u{01}\"}", .syntax(#"invalid character '\x01' in string literal"#)),
        (#"{"a":"\q"}"#, .syntax("invalid character 'q' in string escape code")),
        ("-x", .syntax("invalid character 'x' in numeric literal")),
        ("1.e", .syntax("invalid character 'e' after decimal point in numeric literal")),
        ("{'a':1}", .syntax(#"invalid character '\'' looking for beginning of object key string"#)),
    ])
    func decodingErrorsCarryGosMessages(input: String, expected: GoJSONDecodingError) {
        #expect(throws: expected) { try GoJSONDecoder.decode(Array(input.utf8)) }
    }

    @Test func decodingKeepsOrderLiteralsAndIgnoresTrailingData() throws {
        let value = try GoJSONDecoder.decode(Array(#"{"b":1.50,"a":"\u00e9\ud83d\ude00","B":2} trailing"#.utf8))
        #expect(GoJSON.encodeString(value) == #"{"b":1.50,"a":"é😀","B":2}"#)
        #expect(value[field: "b"] == .number("2"))  // Go matches field names case-insensitively; the last wins
    }

    @Test func typeErrorsNameTheGoStructField() {
        let schema = OpenAIChat.requestSchema
        let cases: [(String, String)] = [
            (#"{"model":5}"#, "json: cannot unmarshal number into Go struct field ChatCompletionRequest.model of type string"),
            (#"{"max_tokens":1.5}"#, "json: cannot unmarshal number 1.5 into Go struct field ChatCompletionRequest.max_tokens of type int"),
            (#"{"messages":{}}"#, "json: cannot unmarshal object into Go struct field ChatCompletionRequest.messages of type []openai.Message"),
            (#""text""#, "json: cannot unmarshal string into Go value of type openai.ChatCompletionRequest"),
        ]
        for (input, message) in cases {
            #expect(throws: GoJSONDecodingError.type(message)) { try decodeGoRequest(Array(input.utf8), as: schema) }
        }
        #expect(throws: Never.self) { try decodeGoRequest(Array(#"{"model":null,"stream":true}"#.utf8), as: schema) }
    }

    @Test func timestampsUseGosFormats() {
        let instant = SimulatedInstant(seconds: 1_748_779_200, nanoseconds: 20_000_000)
        #expect(instant.rfc3339Nano == "2025-06-01T12:00:00.02Z")
        #expect(instant.httpDate == "Sun, 01 Jun 2025 12:00:00 GMT")
        #expect(SimulatedInstant(seconds: 0, nanoseconds: 1).rfc3339Nano == "1970-01-01T00:00:00.000000001Z")
        #expect(SimulatedInstant(seconds: 951_782_400, nanoseconds: 0).httpDate == "Tue, 29 Feb 2000 00:00:00 GMT")
    }

    @Test func usageNumbersFollowTheDocumentedFormulas() {
        let usage = SimulatorBehaviour().usage
        #expect(usage.promptTokens == 7)
        #expect(usage.completionTokens == 3)
        #expect(usage.loadDurationNanoseconds == 250_000_000)
        #expect(usage.promptEvalDurationNanoseconds == 50_000_000)
        #expect(usage.evalDurationNanoseconds == 60_000_000)
        #expect(usage.totalDurationNanoseconds == 370_000_000)
        #expect(usage.tokensPerSecond == 50)
        #expect(SimulatedText.completion(SimulatorBehaviour()) == "Hello world!")
        #expect(SimulatedText.token(27, tokenBytes: 3) == "bbb")
    }

    @Test func controlHeadersOverrideTheDefaults() throws {
        let behaviour = try SimulatorBehaviour().applying(headers: [
            ("X-SIM-TOKENS", "12"), ("x-sim-token-delay-ms", " 5 "), ("X-Sim-Status", "503"),
            ("X-Sim-Gate", "g"), ("Content-Type", "ignored"), ("X-Sim-Go-Chunking", "true"),
        ])
        #expect(behaviour.completionTokens == 12)
        #expect(behaviour.tokenDelay == .milliseconds(5))
        #expect(behaviour.forcedStatus == 503)
        #expect(behaviour.gate == "g")
        #expect(behaviour.coalescesEventsLikeGo)
        let usage = try SimulatorBehaviour().applying(headers: ["X-Sim-Tokens": "5", "X-Sim-Load-Duration-Ns": "0"]).usage
        #expect(usage.totalDurationNanoseconds == 50_000_000 + 100_000_000 + 10_000_000)
        #expect(throws: SimulatorControlError(header: "X-Sim-Drop-After", value: "-1")) {
            try SimulatorBehaviour().applying(headers: [("X-Sim-Drop-After", "-1")])
        }
    }

    @Test func anthropicEstimateCountsSystemRolesTextAndTools() {
        let body = #"{"system":[{"type":"text","text":"abcd"}],"messages":[{"role":"user","content":[{"type":"text","text":"efgh"}]}],"tools":[{"name":"t","description":"d","input_schema":{"type":"object"}}]}"#
        // 4 + 4 + 4 + 1 + 1 + 17 = 31 → 7
        #expect(SimulatedUsage.anthropicInputTokenEstimate(requestBody: Array(body.utf8)) == 7)
        #expect(SimulatedUsage.anthropicInputTokenEstimate(requestBody: Array(#"{"messages":[{"role":"","content":""}]}"#.utf8)) == 1)
    }

    @Test(arguments: [
        ("127.0.0.1:11434", "GET", HostCheck.Verdict.allowed),
        ("localhost", "OPTIONS", .preflight),
        ("example.com", "GET", .forbidden),
        ("192.168.1.9:80", "GET", .allowed),
        ("172.32.0.1", "GET", .forbidden),
        ("8.8.8.8", "GET", .forbidden),
        ("[fd00::1]:1", "GET", .allowed),
        ("api.ollama.localhost", "GET", .allowed),
        ("", "GET", .allowed),
    ])
    func hostCheckFollowsOllamasRules(host: String, method: String, verdict: HostCheck.Verdict) {
        #expect(HostCheck.verdict(hostHeader: host, method: method) == verdict)
    }
}
