import Testing

@testable import OllamaSimulator

/// The `X-Sim-*` controls: delays and gates, injected statuses, mid-stream errors, dropped connections, sizes.
@Suite struct ControlTests {
    static let chat = #"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#

    @Test func noByteIsSentBeforeTheFirstEvent() async throws {
        try await withSimulator { ollama in
            let connection = try await RawConnection.connect(port: ollama.port)
            try await connection.send(
                httpRequest("POST", "/api/chat", port: ollama.port, body: Self.chat, headers: [("X-Sim-Gate", "load")])
            )
            #expect(await ollama.waitForHeld(atGate: "load"))
            // The request is in (recorded, active) but held before its first event: no status line, no header.
            #expect(ollama.activeResponses == 1)
            try await Task.sleep(for: .milliseconds(50))
            #expect(connection.receivedBytes.isEmpty)

            ollama.openGate("load")
            let response = try await connection.readResponse()
            #expect(response.status == 200)
            #expect(response.chunks?.count == 4)
            await connection.close()
        }
    }

    @Test func headerDelayHoldsTheWholeResponse() async throws {
        try await withSimulator { ollama in
            let start = ContinuousClock.now
            let response = try await ollama.post("/api/generate", #"{"model":"m","prompt":"p"}"#, headers: [("X-Sim-Header-Delay-Ms", "200")])
            #expect(ContinuousClock.now - start >= .milliseconds(200))
            #expect(response.chunks?.count == 4)
        }
    }

    @Test func gateAfterTokensHoldsMidStream() async throws {
        try await withSimulator { ollama in
            let connection = try await RawConnection.connect(port: ollama.port)
            try await connection.send(
                httpRequest(
                    "POST", "/api/generate", port: ollama.port, body: #"{"model":"m","prompt":"p"}"#,
                    headers: [("X-Sim-Gate", "mid"), ("X-Sim-Gate-After", "2")]
                )
            )
            #expect(await ollama.waitForHeld(atGate: "mid"))
            let head = try await connection.readUntil("\r\n\r\n", timeout: .seconds(10))
            #expect(head.hasPrefix("HTTP/1.1 200 OK\r\n"))
            _ = try await connection.readUntil(#""done":false}"#, timeout: .seconds(10))
            _ = try await connection.readUntil(#""done":false}"#, timeout: .seconds(10))
            try await Task.sleep(for: .milliseconds(30))
            let held = String(decoding: connection.receivedBytes, as: UTF8.self)
            #expect(held.split(separator: "\"done\":false").count == 3)  // two token lines, nothing more
            #expect(!held.contains(#""done":true"#))
            ollama.openGate("mid")
            _ = try await connection.readUntil("0\r\n\r\n", timeout: .seconds(10))
            #expect(String(decoding: connection.receivedBytes, as: UTF8.self).contains(#""done":true"#))
            await connection.close()
        }
    }

    @Test(arguments: [
        ("/api/chat", ControlTests.chat, #"{"error":"simulated error (status 500)"}"#, "application/json; charset=utf-8"),
        (
            "/v1/chat/completions", ControlTests.chat,
            #"{"error":{"message":"simulated error (status 500)","type":"api_error","param":null,"code":null}}"# + "\n",
            "application/json"
        ),
    ])
    func forcedStatusAnswersWithTheDialectsError(path: String, body: String, expected: String, contentType: String)
        async throws
    {
        try await withSimulator { ollama in
            let response = try await ollama.post(path, body, headers: [("X-Sim-Status", "500")])
            #expect(response.status == 500)
            #expect(response.statusLine == "HTTP/1.1 500 Internal Server Error")
            #expect(response.header("Content-Type") == contentType)
            #expect(response.bodyText == expected)
        }
    }

    @Test func forcedStatusesUseOllamasTextsAndGoStatusLines() async throws {
        try await withSimulator { ollama in
            let busy = try await ollama.post("/api/chat", Self.chat, headers: [("X-Sim-Status", "503")])
            #expect(busy.bodyText == #"{"error":"server busy, please try again.  maximum pending requests exceeded"}"#)
            let canceled = try await ollama.post("/api/chat", Self.chat, headers: [("X-Sim-Status", "499")])
            #expect(canceled.statusLine == "HTTP/1.1 499 status code 499")
            #expect(canceled.bodyText == #"{"error":"request canceled"}"#)
            let custom = try await ollama.post(
                "/v1/messages",
                #"{"model":"m","max_tokens":3,"messages":[{"role":"user","content":"x"}]}"#,
                headers: [("X-Sim-Status", "529"), ("X-Sim-Error-Message", "Overloaded")]
            )
            #expect(custom.status == 529)
            #expect(custom.bodyText.hasPrefix(#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}"#))
        }
    }

    @Test func nativeMidStreamErrorIsAnExtraLineAndNoDoneLine() async throws {
        try await withSimulator { ollama in
            let response = try await ollama.post("/api/chat", Self.chat, headers: [("X-Sim-Error-After", "2")])
            #expect(response.status == 200)
            #expect(response.isComplete)
            let lines = response.chunkTexts
            #expect(lines.count == 3)
            #expect(lines[2] == #"{"error":"an error was encountered while running the model: unexpected EOF"}"# + "\n")
            #expect(!response.bodyText.contains(#""done":true"#))
        }
    }

    @Test func errorAfterAllTokensReplacesTheFinalEvent() async throws {
        try await withSimulator { ollama in
            let response = try await ollama.post("/api/generate", #"{"model":"m","prompt":"p"}"#, headers: [("X-Sim-Error-After", "99")])
            #expect(response.chunks?.count == 4)
            #expect(response.chunkTexts.last?.hasPrefix(#"{"error":"#) == true)
        }
    }

    // Ollama's compatibility writers have no mid-stream error event: the `{"error":…}` object is decoded as an
    // empty response (OpenAI: an empty chunk; Anthropic and Responses: nothing) and the stream just ends early.

    @Test func openAIMidStreamErrorIsAnEmptyChunkAndNoDone() async throws {
        try await withSimulator { ollama in
            let response = try await ollama.post(
                "/v1/chat/completions",
                #"{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":true}}"#,
                headers: [("X-Sim-Error-After", "1"), ("X-Sim-Error-Message", "boom")]
            )
            #expect(response.isComplete)
            #expect(response.chunks?.count == 2)
            #expect(response.chunkTexts.last?.contains(#""delta":{"content":""}"#) == true)
            #expect(!response.bodyText.contains("boom"))
            #expect(!response.bodyText.contains("[DONE]"))
            #expect(!response.bodyText.contains(#""usage""#))
        }
    }

    @Test func anthropicMidStreamErrorEndsTheStreamWithoutAnErrorEvent() async throws {
        try await withSimulator { ollama in
            let response = try await ollama.post(
                "/v1/messages",
                #"{"model":"m","max_tokens":3,"messages":[{"role":"user","content":"x"}],"stream":true}"#,
                headers: [("X-Sim-Error-After", "0")]
            )
            #expect(response.isComplete)
            #expect(sseEventNames(response.bodyText) == ["message_start"])
        }
    }

    @Test func responsesMidStreamErrorEndsTheStreamWithoutCompletion() async throws {
        try await withSimulator { ollama in
            let response = try await ollama.post(
                "/v1/responses",
                #"{"model":"m","input":"x","stream":true}"#,
                headers: [("X-Sim-Error-After", "1")]
            )
            #expect(response.isComplete)
            #expect(
                sseEventNames(response.bodyText) == [
                    "response.created", "response.in_progress", "response.output_item.added",
                    "response.content_part.added", "response.output_text.delta",
                ]
            )
        }
    }

    @Test func nonStreamingErrorAfterAnswers500() async throws {
        try await withSimulator { ollama in
            let response = try await ollama.post(
                "/api/chat",
                #"{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":false}"#,
                headers: [("X-Sim-Error-After", "1")]
            )
            #expect(response.status == 500)
            #expect(response.bodyText == #"{"error":"an error was encountered while running the model: unexpected EOF"}"#)
        }
    }

    @Test func dropAfterClosesTheConnectionWithoutTerminator() async throws {
        try await withSimulator { ollama in
            let connection = try await RawConnection.connect(port: ollama.port)
            try await connection.send(
                httpRequest("POST", "/api/chat", port: ollama.port, body: Self.chat, headers: [("X-Sim-Drop-After", "2")])
            )
            let response = try await connection.readResponse()
            #expect(response.status == 200)
            #expect(!response.isComplete)
            #expect(response.chunks?.count == 2)
            #expect(connection.isClosedByPeer)
            #expect(await ollama.waitForIdle())
            #expect(ollama.requests.first?.outcome == .dropped)
            #expect(ollama.cancellationCount == 0)
            await connection.close()
        }
    }

    @Test func dropBeforeAnyTokenSendsNothingAtAll() async throws {
        try await withSimulator { ollama in
            let connection = try await RawConnection.connect(port: ollama.port)
            try await connection.send(
                httpRequest(
                    "POST", "/v1/chat/completions", port: ollama.port, body: Self.chat,
                    headers: [("X-Sim-Drop-After", "0")]
                )
            )
            #expect(await connection.waitForClose())
            #expect(connection.receivedBytes.isEmpty)
            await connection.close()
        }
    }

    @Test func contextSizeMakesAMegabyteFinalLine() async throws {
        try await withSimulator { ollama in
            let response = try await ollama.post(
                "/api/generate",
                #"{"model":"m","prompt":"p"}"#,
                headers: [("X-Sim-Context-Size", "150000")]
            )
            let last = try #require(response.chunks?.last)
            #expect(last.count > 1_000_000)
            #expect(last.last == UInt8(ascii: "\n"))
            let object = try parseJSON(String(decoding: last, as: UTF8.self))
            #expect(object[field: "context"]?.arrayValue?.count == 150_000)
            #expect(object[field: "eval_count"] == .number("3"))
        }
    }

    @Test func tokenBytesMakeBigTokens() async throws {
        try await withSimulator { ollama in
            let response = try await ollama.post(
                "/api/generate",
                #"{"model":"m","prompt":"p","stream":false}"#,
                headers: [("X-Sim-Token-Bytes", "100000"), ("X-Sim-Tokens", "30")]
            )
            #expect(response.header("Transfer-Encoding") == "chunked")
            let object = try parseJSON(response.bodyText)
            let text = try #require(object[field: "response"]?.stringValue)
            #expect(text.utf8.count == 3_000_000)
            #expect(text == SimulatedText.completion(tokens: 30, tokenBytes: 100_000))
        }
    }

    @Test func goChunkingCoalescesOneFlushIntoOneChunk() async throws {
        try await withSimulator { ollama in
            let response = try await ollama.post(
                "/v1/chat/completions",
                #"{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":true}}"#,
                headers: [("X-Sim-Go-Chunking", "1")]
            )
            #expect(response.chunks?.count == 4)
            let last = try #require(response.chunkTexts.last)
            #expect(last.hasSuffix("data: [DONE]\n\n"))
            #expect(last.contains(#""finish_reason":"stop""#) && last.contains(#""usage""#))

            // Ollama's Anthropic writer flushes every event: nothing to coalesce.
            let anthropic = try await ollama.post(
                "/v1/messages",
                #"{"model":"m","max_tokens":3,"messages":[{"role":"user","content":"x"}],"stream":true}"#,
                headers: [("X-Sim-Go-Chunking", "1")]
            )
            #expect(anthropic.chunks?.count == 8)
        }
    }

    @Test func tokenDelayStretchesTheStream() async throws {
        try await withSimulator { ollama in
            let start = ContinuousClock.now
            let response = try await ollama.post("/api/chat", Self.chat, headers: [("X-Sim-Token-Delay-Ms", "40")])
            #expect(ContinuousClock.now - start >= .milliseconds(80))
            #expect(response.chunks?.count == 4)
        }
    }

    @Test func invalidControlHeaderIsA400() async throws {
        try await withSimulator { ollama in
            let response = try await ollama.post("/api/chat", Self.chat, headers: [("x-sim-tokens", "lots")])
            #expect(response.status == 400)
            #expect(response.bodyText == #"{"error":"invalid X-Sim-Tokens header: 'lots'"}"#)
        }
    }

    @Test func instanceDefaultsApplyUntilAHeaderOverridesThem() async throws {
        try await withSimulator { ollama in
            ollama.defaults.completionTokens = 5
            ollama.defaults.promptTokens = 11
            let defaults = try await ollama.post("/api/chat", Self.chat)
            #expect(defaults.chunks?.count == 6)
            #expect(defaults.bodyText.contains(#""prompt_eval_count":11"#))
            let overridden = try await ollama.post("/api/chat", Self.chat, headers: [("X-Sim-Tokens", "1")])
            #expect(overridden.chunks?.count == 2)
            #expect(overridden.bodyText.contains(#""eval_count":1,"eval_duration":20000000"#))
        }
    }
}
