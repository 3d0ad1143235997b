import Testing

@testable import OllamaSimulator

/// `/v1/chat/completions`, `/v1/completions`, `/v1/embeddings`, `/v1/models`.
@Suite struct OpenAIEndpointTests {
    static let chatRequest = #"{"model":"llama3.2","messages":[{"role":"user","content":"hi"}]"#

    /// The id the first request of a simulator gets.
    static let firstChatID = SimulatedIdentifiers.chatCompletion(1)

    @Test func streamingChatWithIncludeUsageHasFinishChunkThenUsageChunkThenDone() async throws {
        try await withSimulator { ollama in
            let response = try await ollama.post(
                "/v1/chat/completions",
                Self.chatRequest + #","stream":true,"stream_options":{"include_usage":true}}"#
            )
            #expect(
                response.head
                    == expectedHead(
                        "HTTP/1.1 200 OK",
                        [
                            ("Content-Type", "text/event-stream"), ("Date", fixtureDate),
                            ("Transfer-Encoding", "chunked"),
                        ]
                    )
            )
            let prefix =
                #"data: {"id":"\#(Self.firstChatID)","object":"chat.completion.chunk","created":1748779200,"model":"llama3.2","system_fingerprint":"fp_ollama","choices":["#
            #expect(
                response.chunkTexts == [
                    prefix + #"{"index":0,"delta":{"role":"assistant","content":"Hello"},"finish_reason":null}]}"# + "\n\n",
                    prefix + #"{"index":0,"delta":{"content":" world"},"finish_reason":null}]}"# + "\n\n",
                    prefix + #"{"index":0,"delta":{"content":"!"},"finish_reason":null}]}"# + "\n\n",
                    prefix + #"{"index":0,"delta":{},"finish_reason":"stop"}]}"# + "\n\n",
                    prefix + #"],"usage":{"prompt_tokens":7,"completion_tokens":3,"total_tokens":10}}"# + "\n\n",
                    "data: [DONE]\n\n",
                ]
            )
        }
    }

    @Test func streamingChatWithoutIncludeUsageHasNoUsageChunk() async throws {
        try await withSimulator { ollama in
            let response = try await ollama.post(
                "/v1/chat/completions",
                Self.chatRequest + #","stream":true,"stream_options":{"include_usage":false}}"#
            )
            #expect(response.chunks?.count == 5)
            #expect(!response.bodyText.contains("usage"))
        }
    }

    @Test func streamingChatWithoutTokensStillOpensWithARoleChunk() async throws {
        try await withSimulator { ollama in
            let response = try await ollama.post(
                "/v1/chat/completions",
                Self.chatRequest + #","stream":true}"#,
                headers: [("X-Sim-Tokens", "0")]
            )
            let payloads = try sseDataPayloads(response.bodyText)
            #expect(payloads.count == 2)
            #expect(GoJSON.encodeString(payloads[0][field: "choices"]!) == #"[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]"#)
        }
    }

    @Test func nonStreamingChatIsOneEncoderObjectWithNewline() async throws {
        try await withSimulator { ollama in
            let response = try await ollama.post("/v1/chat/completions", Self.chatRequest + "}")
            let body =
                #"{"id":"\#(Self.firstChatID)","object":"chat.completion","created":1748779200,"model":"llama3.2","system_fingerprint":"fp_ollama","choices":[{"index":0,"message":{"role":"assistant","content":"Hello world!"},"finish_reason":"stop"}],"usage":{"prompt_tokens":7,"completion_tokens":3,"total_tokens":10}}"#
                + "\n"
            #expect(
                response.head
                    == expectedHead(
                        "HTTP/1.1 200 OK",
                        [
                            ("Content-Type", "application/json"), ("Date", fixtureDate),
                            ("Content-Length", String(body.utf8.count)),
                        ]
                    )
            )
            #expect(response.bodyText == body)
        }
    }

    @Test func completionsWithIncludeUsagePutZeroUsageOnEveryChunk() async throws {
        try await withSimulator { ollama in
            let response = try await ollama.post(
                "/v1/completions",
                #"{"model":"m","prompt":"p","stream":true,"stream_options":{"include_usage":true}}"#
            )
            let id = SimulatedIdentifiers.completion(1)
            let zero = #","usage":{"prompt_tokens":0,"completion_tokens":0,"total_tokens":0}}"#
            func chunk(_ text: String, _ finish: String) -> String {
                #"data: {"id":"\#(id)","object":"text_completion","created":1748779200,"choices":[{"text":"\#(text)","index":0,"finish_reason":\#(finish)}],"model":"m","system_fingerprint":"fp_ollama""#
                    + zero + "\n\n"
            }
            #expect(
                response.chunkTexts == [
                    chunk("Hello", "null"), chunk(" world", "null"), chunk("!", "null"), chunk("", #""stop""#),
                    #"data: {"id":"\#(id)","object":"text_completion","created":1748779200,"choices":[],"model":"m","system_fingerprint":"fp_ollama","usage":{"prompt_tokens":7,"completion_tokens":3,"total_tokens":10}}"#
                        + "\n\n",
                    "data: [DONE]\n\n",
                ]
            )
        }
    }

    @Test func nonStreamingCompletion() async throws {
        try await withSimulator { ollama in
            let response = try await ollama.post("/v1/completions", #"{"model":"m","prompt":"p"}"#)
            let id = SimulatedIdentifiers.completion(1)
            #expect(
                response.bodyText
                    == #"{"id":"\#(id)","object":"text_completion","created":1748779200,"model":"m","system_fingerprint":"fp_ollama","choices":[{"text":"Hello world!","index":0,"finish_reason":"stop"}],"usage":{"prompt_tokens":7,"completion_tokens":3,"total_tokens":10}}"#
                    + "\n"
            )
        }
    }

    @Test func unknownModelIs404NotFoundErrorFromTheWriter() async throws {
        try await withSimulator { ollama in
            let response = try await ollama.post(
                "/v1/chat/completions",
                #"{"model":"missing-gpt","messages":[{"role":"user","content":"hi"}],"stream":true}"#
            )
            #expect(response.status == 404)
            #expect(response.header("Content-Type") == "application/json")
            #expect(
                response.bodyText
                    == #"{"error":{"message":"model 'missing-gpt' not found","type":"not_found_error","param":null,"code":null}}"#
                    + "\n"
            )
        }
    }

    @Test(arguments: [
        ("", "EOF"),
        ("{", "unexpected EOF"),
        (#"{"model":"m","messages":[]}"#, "[] is too short - 'messages'"),
        (#"{"model":"m"}"#, "[] is too short - 'messages'"),
        (
            #"{"model":"m","messages":[{"role":"user","content":"x"}],"stream_options":{"include_usage":1}}"#,
            "json: cannot unmarshal number into Go struct field StreamOptions.stream_options.include_usage of type bool"
        ),
        (
            #"{"model":"m","messages":["hi"]}"#,
            "json: cannot unmarshal string into Go struct field ChatCompletionRequest.messages of type openai.Message"
        ),
        (#"{"model":"m","messages":[{"role":"user","content":3}]}"#, "invalid message content type: float64"),
    ])
    func middlewareValidationErrorsUseGinJSON(body: String, message: String) async throws {
        try await withSimulator { ollama in
            let response = try await ollama.post("/v1/chat/completions", body)
            #expect(response.status == 400)
            #expect(response.header("Content-Type") == "application/json; charset=utf-8")
            let expected = GoJSON.encodeString(OpenAIError.body(status: 400, message: message))
            #expect(response.bodyText == expected)
        }
    }

    @Test func emptyModelIsRefusedByTheHandler() async throws {
        try await withSimulator { ollama in
            let response = try await ollama.post("/v1/chat/completions", #"{"messages":[{"role":"user","content":"hi"}]}"#)
            #expect(response.status == 400)
            #expect(response.header("Content-Type") == "application/json")
            #expect(response.bodyText.hasPrefix(#"{"error":{"message":"model is required","type":"invalid_request_error""#))
        }
    }

    @Test func embeddingsListWithUsage() async throws {
        try await withSimulator { ollama in
            let response = try await ollama.post("/v1/embeddings", #"{"model":"e","input":["a","b"],"dimensions":2}"#)
            #expect(
                response.bodyText
                    == #"{"object":"list","data":[{"object":"embedding","embedding":[0.1,-0.2],"index":0},{"object":"embedding","embedding":[0.1,-0.2],"index":1}],"model":"e","usage":{"prompt_tokens":14,"total_tokens":14}}"#
                    + "\n"
            )
            let base64 = try await ollama.post(
                "/v1/embeddings",
                #"{"model":"e","input":"a","dimensions":1,"encoding_format":"base64"}"#
            )
            #expect(base64.bodyText.contains(#""embedding":"zczMPQ==""#))
            let invalid = try await ollama.post("/v1/embeddings", #"{"model":"e","input":[]}"#)
            #expect(invalid.status == 400)
            #expect(invalid.bodyText.contains(#""message":"invalid input""#))
        }
    }

    @Test func modelsListTheCatalogue() async throws {
        try await withSimulator { ollama in
            let response = try await ollama.exchange("GET", "/v1/models")
            #expect(response.header("Content-Type") == "application/json")
            #expect(
                response.bodyText.hasPrefix(
                    #"{"object":"list","data":[{"id":"llama3.2:latest","object":"model","created":1748779200,"owned_by":"library"},"#
                )
            )
            let one = try await ollama.exchange("GET", "/v1/models/team/m:7b")
            #expect(one.status == 404)  // a path with a slash is not one route segment
            let single = try await ollama.exchange("GET", "/v1/models/qwen2.5:0.5b")
            #expect(
                single.bodyText
                    == #"{"id":"qwen2.5:0.5b","object":"model","created":1748779200,"owned_by":"library"}"# + "\n"
            )
            let missing = try await ollama.exchange("GET", "/v1/models/missing-one")
            #expect(missing.status == 404)
            #expect(missing.bodyText.contains("not_found_error"))
        }
    }
}
