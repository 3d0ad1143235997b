import Testing

@testable import OllamaSimulator

/// `/api/generate`, `/api/chat`, `/api/embed`, `/api/embeddings`: exact bytes under the fixture clock.
@Suite struct NativeEndpointTests {
    static let metrics =
        #""total_duration":370000000,"load_duration":250000000,"prompt_eval_count":7,"# + #""prompt_eval_duration":50000000,"eval_count":3,"eval_duration":60000000"#

    @Test func generateStreamsOneNDJSONLinePerChunk() async throws {
        try await withSimulator { ollama in
            let response = try await ollama.post("/api/generate", #"{"model":"llama3.2","prompt":"Why?"}"#)
            #expect(
                response.head
                    == expectedHead(
                        "HTTP/1.1 200 OK",
                        [
                            ("Content-Type", "application/x-ndjson"), ("Date", fixtureDate),
                            ("Transfer-Encoding", "chunked"),
                        ]
                    )
            )
            let prefix = #"{"model":"llama3.2","created_at":"2025-06-01T12:00:00Z","response":"#
            #expect(
                response.chunkTexts == [
                    prefix + #""Hello","done":false}"# + "\n",
                    prefix + #"" world","done":false}"# + "\n",
                    prefix + #""!","done":false}"# + "\n",
                    prefix + #""","done":true,"done_reason":"stop","#
                        + #""context":[128000,128001,128002,128003,128004,128005,128006,128007,128008,128009],"#
                        + Self.metrics + "}\n",
                ]
            )
            #expect(response.isComplete)
        }
    }

    @Test func chatStreamsMessagesAndAFinalMetricsLine() async throws {
        try await withSimulator { ollama in
            let response = try await ollama.post(
                "/api/chat",
                #"{"model":"llama3.2","messages":[{"role":"user","content":"hi"}]}"#
            )
            let prefix = #"{"model":"llama3.2","created_at":"2025-06-01T12:00:00Z","message":{"role":"assistant","content":"#
            #expect(
                response.chunkTexts == [
                    prefix + #""Hello"},"done":false}"# + "\n",
                    prefix + #"" world"},"done":false}"# + "\n",
                    prefix + #""!"},"done":false}"# + "\n",
                    prefix + #"""},"done":true,"done_reason":"stop","# + Self.metrics + "}\n",
                ]
            )
        }
    }

    @Test func chatWithStreamFalseIsOneGinJSONObjectWithoutNewline() async throws {
        try await withSimulator { ollama in
            let response = try await ollama.post(
                "/api/chat",
                #"{"model":"llama3.2","messages":[{"role":"user","content":"hi"}],"stream":false}"#
            )
            let body =
                #"{"model":"llama3.2","created_at":"2025-06-01T12:00:00Z","message":{"role":"assistant","content":"Hello world!"},"done":true,"done_reason":"stop","#
                + Self.metrics + "}"
            #expect(
                response.head
                    == expectedHead(
                        "HTTP/1.1 200 OK",
                        [
                            ("Content-Type", "application/json; charset=utf-8"), ("Date", fixtureDate),
                            ("Content-Length", String(body.utf8.count)),
                        ]
                    )
            )
            #expect(response.bodyText == body)
        }
    }

    @Test func generateWithStreamFalseCarriesTheWholeTextContextAndMetrics() async throws {
        try await withSimulator { ollama in
            let response = try await ollama.post(
                "/api/generate",
                #"{"model":"llama3.2","prompt":"p","stream":false}"#,
                headers: [("X-Sim-Tokens", "2"), ("X-Sim-Prompt-Tokens", "1")]
            )
            #expect(
                response.bodyText
                    == #"{"model":"llama3.2","created_at":"2025-06-01T12:00:00Z","response":"Hello world","done":true,"done_reason":"stop","context":[128000,128001,128002],"total_duration":350000000,"load_duration":250000000,"prompt_eval_count":1,"prompt_eval_duration":50000000,"eval_count":2,"eval_duration":40000000}"#
            )
        }
    }

    @Test func rawGenerateHasNoContext() async throws {
        try await withSimulator { ollama in
            let response = try await ollama.post("/api/generate", #"{"model":"m","prompt":"p","raw":true}"#)
            #expect(!response.bodyText.contains("context"))
        }
    }

    @Test func zeroMetricsAreOmittedNotZero() async throws {
        try await withSimulator { ollama in
            let response = try await ollama.post(
                "/api/chat",
                #"{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":false}"#,
                headers: [("X-Sim-Load-Duration-Ns", "0"), ("X-Sim-Prompt-Tokens", "0")]
            )
            #expect(!response.bodyText.contains("load_duration"))
            #expect(!response.bodyText.contains("prompt_eval_count"))
            #expect(response.bodyText.contains(#""total_duration":120000000,"prompt_eval_duration":50000000,"eval_count":3"#))
        }
    }

    @Test func emptyPromptOrMessagesLoadTheModel() async throws {
        try await withSimulator { ollama in
            let generate = try await ollama.post("/api/generate", #"{"model":"m"}"#)
            #expect(
                generate.bodyText
                    == #"{"model":"m","created_at":"2025-06-01T12:00:00Z","response":"","done":true,"done_reason":"load"}"#
            )
            #expect(generate.header("Content-Type") == "application/json; charset=utf-8")
            let unload = try await ollama.post("/api/chat", #"{"model":"m","messages":[],"keep_alive":0}"#)
            #expect(
                unload.bodyText
                    == #"{"model":"m","created_at":"2025-06-01T12:00:00Z","message":{"role":"assistant","content":""},"done":true,"done_reason":"unload"}"#
            )
        }
    }

    @Test(arguments: [
        ("/api/generate", #"{"model":"missing-model","prompt":"p"}"#, 404, #"{"error":"model 'missing-model' not found"}"#),
        ("/api/generate", #"{"prompt":"p"}"#, 404, #"{"error":"model '' not found"}"#),
        ("/api/chat", #"{"model":"missing-x","messages":[]}"#, 404, #"{"error":"model 'missing-x' not found"}"#),
        ("/api/chat", #"{"messages":[]}"#, 400, #"{"error":"model is required"}"#),
        ("/api/chat", "", 400, #"{"error":"missing request body"}"#),
        ("/api/chat", "  \n", 400, #"{"error":"missing request body"}"#),
        ("/api/chat", "xyz", 400, #"{"error":"invalid character 'x' looking for beginning of value"}"#),
        ("/api/chat", #"{"model":"m","#, 400, #"{"error":"unexpected EOF"}"#),
        ("/api/chat", #"{"model" "m"}"#, 400, #"{"error":"invalid character '\"' after object key"}"#),
        (
            "/api/chat", #"{"model":"m","stream":"yes"}"#, 400,
            #"{"error":"json: cannot unmarshal string into Go struct field ChatRequest.stream of type bool"}"#
        ),
        ("/api/chat", "[1]", 400, #"{"error":"json: cannot unmarshal array into Go value of type api.ChatRequest"}"#),
        (
            "/api/generate", #"{"model":"m","prompt":"p","raw":true,"system":"s"}"#, 400,
            #"{"error":"raw mode does not support template, system, or context"}"#
        ),
        ("/api/embed", #"{"model":"missing-e","input":"x"}"#, 404, #"{"error":"model \"missing-e\" not found, try pulling it first"}"#),
        ("/api/embed", #"{"model":"m","input":[1]}"#, 400, #"{"error":"invalid input type"}"#),
        ("/api/embeddings", #"{"prompt":"x"}"#, 400, #"{"error":"model is required"}"#),
    ])
    func requestErrorsHaveOllamasStatusAndMessage(path: String, body: String, status: Int, expected: String) async throws {
        try await withSimulator { ollama in
            let response = try await ollama.post(path, body)
            #expect(response.status == status)
            #expect(response.bodyText == expected)
            #expect(response.header("Content-Type") == "application/json; charset=utf-8")
        }
    }

    @Test func embedReturnsVectorsAndMetrics() async throws {
        try await withSimulator { ollama in
            let response = try await ollama.post("/api/embed", #"{"model":"nomic-embed-text","input":["a","b"]}"#)
            let vector = "[0.1,-0.2,0.3,-0.4,0.05,-0.06,0.07,-0.08]"
            #expect(
                response.bodyText
                    == #"{"model":"nomic-embed-text","embeddings":["# + vector + "," + vector
                    + #"],"total_duration":310000000,"load_duration":250000000,"prompt_eval_count":14}"#
            )
            let empty = try await ollama.post("/api/embed", #"{"model":"e","input":""}"#)
            #expect(empty.bodyText == #"{"model":"e","embeddings":[]}"#)
            let sized = try await ollama.post("/api/embed", #"{"model":"e","input":"x","dimensions":3}"#)
            #expect(sized.bodyText.hasPrefix(#"{"model":"e","embeddings":[[0.1,-0.2,0.3]]"#))
        }
    }

    @Test func legacyEmbeddingsWidenFloat32ToFloat64() async throws {
        try await withSimulator { ollama in
            let response = try await ollama.post("/api/embeddings", #"{"model":"e","prompt":"x"}"#)
            #expect(response.bodyText.hasPrefix(#"{"embedding":[0.10000000149011612,-0.20000000298023224,"#))
            let empty = try await ollama.post("/api/embeddings", #"{"model":"e","prompt":""}"#)
            #expect(empty.bodyText == #"{"embedding":[]}"#)
        }
    }
}
