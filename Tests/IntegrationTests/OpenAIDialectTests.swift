import NIOCore
import NIOHTTP1
import Testing

/// The OpenAI-compatible API through the proxy: usage injection, withholding, exact counts.
@Suite struct OpenAIDialect {
    static let chatBody = #"{"model":"llama3.2","messages":[{"role":"user","content":"Hello"}],"stream":true}"#

    @Test func streamingChatWithoutIncludeUsageIsCountedAndTheUsageChunkNeverReachesTheClient() async throws {
        try await ProxyHarness.with { harness in
            let response = try await harness.viaProxy(.POST, "/v1/chat/completions", body: Self.chatBody)
            #expect(response.status == 200)
            #expect(response.header("content-type") == "text/event-stream")
            let text = response.bodyString
            #expect(!text.contains(#""choices":[]"#), "the injected usage chunk must be withheld")
            #expect(!text.contains(#""usage""#))
            #expect(text.hasSuffix("data: [DONE]\n\n"))
            #expect(text.occurrences(of: "data: ") == 3 + 1 + 1, "three tokens, the finish chunk, [DONE]")

            // Ollama was asked for usage by a minimal edit of the body.
            let sent = try #require(harness.simulator.requests.last)
            #expect(sent.bodyText == #"{"model":"llama3.2","messages":[{"role":"user","content":"Hello"}],"stream":true,"stream_options":{"include_usage":true}}"#)

            let metrics = try await harness.scrape()
            #expect(metrics.value("ollama_requests_total", ["model": "llama3.2", "endpoint": "/v1/chat/completions"]) == 1)
            #expect(metrics.value("ollama_prompt_tokens_total", ["model": "llama3.2"]) == 7)
            #expect(metrics.value("ollama_completion_tokens_total", ["model": "llama3.2"]) == 3)
            #expect(metrics.samples(named: "ollama_tokens_per_second").isEmpty, "native only")
        }
    }

    @Test func clientThatAskedForUsageGetsItExactlyOnceAndItsBodyUntouched() async throws {
        try await ProxyHarness.with { harness in
            let body = #"{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Hi"}]}"#
            let viaProxy = try await harness.viaProxy(.POST, "/v1/chat/completions", body: body)
            #expect(viaProxy.bodyString.occurrences(of: #""choices":[]"#) == 1)
            #expect(try #require(harness.simulator.requests.last).bodyText == body)
            let direct = try await harness.direct(.POST, "/v1/chat/completions", body: body)
            #expect(normalizeOpenAI(viaProxy.bodyString) == normalizeOpenAI(direct.bodyString))

            let metrics = try await harness.scrape()
            #expect(metrics.value("ollama_requests_total", ["model": "m", "endpoint": "/v1/chat/completions"]) == 1)
            #expect(metrics.value("ollama_completion_tokens_total", ["model": "m"]) == 3)
        }
    }

    @Test(arguments: [false, true])
    func usageChunkSharingAFlushWithFinishAndDoneIsHandled(clientAsked: Bool) async throws {
        // Real Ollama writes the finish chunk, the usage chunk and `[DONE]` in one flush.
        try await ProxyHarness.with { harness in
            let options = clientAsked ? #","stream_options":{"include_usage":true}"# : ""
            let body = #"{"model":"m","stream":true\#(options),"messages":[{"role":"user","content":"Hi"}]}"#
            let headers = [("X-Sim-Go-Chunking", "1")]
            let viaProxy = try await harness.viaProxy(.POST, "/v1/chat/completions", headers: headers, body: body)
            #expect(viaProxy.bodyString.occurrences(of: #""choices":[]"#) == (clientAsked ? 1 : 0))
            #expect(viaProxy.bodyString.hasSuffix("data: [DONE]\n\n"))
            let metrics = try await harness.scrape()
            #expect(metrics.value("ollama_requests_total", ["model": "m", "endpoint": "/v1/chat/completions"]) == 1)
            #expect(metrics.value("ollama_completion_tokens_total", ["model": "m"]) == 3)
        }
    }

    @Test func clientsOtherStreamOptionsAreKept() async throws {
        try await ProxyHarness.with { harness in
            let body = #"{"model":"m","stream":true,"stream_options":{"include_obfuscation":false},"messages":[{"role":"user","content":"Hi"}],"seed":9007199254740993}"#
            let response = try await harness.viaProxy(.POST, "/v1/chat/completions", body: body)
            #expect(response.status == 200)
            #expect(!response.bodyString.contains(#""choices":[]"#))
            let sent = try #require(harness.simulator.requests.last).bodyText
            #expect(sent == #"{"model":"m","stream":true,"stream_options":{"include_usage":true,"include_obfuscation":false},"messages":[{"role":"user","content":"Hi"}],"seed":9007199254740993}"#)
            let metrics = try await harness.scrape()
            #expect(metrics.value("ollama_completion_tokens_total", ["model": "m"]) == 3)
        }
    }

    @Test func nonStreamingChatIsCountedFromItsUsageObject() async throws {
        try await ProxyHarness.with { harness in
            let body = #"{"model":"m","messages":[{"role":"user","content":"Hi"}]}"#
            let response = try await harness.viaProxy(
                .POST, "/v1/chat/completions", headers: [("X-Sim-Tokens", "4")], body: body
            )
            #expect(response.status == 200)
            #expect(response.bodyString.contains(#""usage":{"prompt_tokens":7,"completion_tokens":4,"total_tokens":11}"#))
            #expect(try #require(harness.simulator.requests.last).bodyText == body, "no edit when not streaming")
            let metrics = try await harness.scrape()
            #expect(metrics.value("ollama_requests_total", ["model": "m", "endpoint": "/v1/chat/completions"]) == 1)
            #expect(metrics.value("ollama_prompt_tokens_total", ["model": "m"]) == 7)
            #expect(metrics.value("ollama_completion_tokens_total", ["model": "m"]) == 4)
        }
    }

    @Test func usageIsRecordedBeforeTheClientHangsUpAfterDone() async throws {
        try await ProxyHarness.with { harness in
            // What the openai SDK does: read until `data: [DONE]`, then close the connection.
            let connection = try await TestHTTPConnection.connect(to: harness.proxyAddress)
            try await connection.send(.POST, "/v1/chat/completions", body: ByteBuffer(string: Self.chatBody))
            var text = ""
            while !text.contains("data: [DONE]"), let part = await connection.nextPart() {
                if case .body(let buffer) = part { text += String(buffer: buffer) }
            }
            await connection.close()
            let metrics = try await harness.scrape { $0.value("ollama_active_requests", ["model": "llama3.2", "endpoint": "/v1/chat/completions"]) == 0 }
            #expect(metrics.value("ollama_requests_total", ["model": "llama3.2", "endpoint": "/v1/chat/completions"]) == 1)
            #expect(metrics.value("ollama_completion_tokens_total", ["model": "llama3.2"]) == 3)
        }
    }
}

/// OpenAI chunks carry a per-request id and creation time; two runs differ only there.
func normalizeOpenAI(_ text: String) -> String {
    var out = text
    for key in [#""id":""#, #""created":"#] {
        var result = ""
        var rest = Substring(out)
        while let range = rest.firstRange(of: key) {
            result += rest[..<range.upperBound]
            rest = rest[range.upperBound...]
            if let end = rest.firstIndex(where: { $0 == "\"" || $0 == "," }) { rest = rest[end...] }
        }
        out = result + rest
    }
    return out
}
