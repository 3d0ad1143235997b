import NIOCore
import NIOHTTP1
import Testing

/// The Anthropic-compatible API through the proxy.
@Suite struct AnthropicDialect {
    @Test func streamingMessagesCountTheRealInputTokensNotTheEstimate() async throws {
        try await ProxyHarness.with { harness in
            // A long prompt makes Ollama's bytes/4 estimate in message_start far from the real count.
            let prompt = String(repeating: "tell me more ", count: 40)
            let body = #"{"model":"llama3.2","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"\#(prompt)"}]}"#
            let response = try await harness.viaProxy(
                .POST, "/v1/messages", headers: [("X-Sim-Prompt-Tokens", "31")], body: body
            )
            #expect(response.status == 200)
            #expect(response.header("content-type") == "text/event-stream")
            #expect(response.bodyString.contains("event: message_delta"))
            #expect(try #require(harness.simulator.requests.last).bodyText == body, "never edited")

            let metrics = try await harness.scrape()
            #expect(metrics.value("ollama_requests_total", ["model": "llama3.2", "endpoint": "/v1/messages"]) == 1)
            #expect(metrics.value("ollama_prompt_tokens_total", ["model": "llama3.2"]) == 31)
            #expect(metrics.value("ollama_completion_tokens_total", ["model": "llama3.2"]) == 3)
        }
    }

    @Test func nonStreamingMessagesAreCountedFromTheirUsage() async throws {
        try await ProxyHarness.with { harness in
            let body = #"{"model":"m","max_tokens":64,"messages":[{"role":"user","content":"hi"}]}"#
            let viaProxy = try await harness.viaProxy(.POST, "/v1/messages", headers: [("X-Sim-Tokens", "6")], body: body)
            #expect(viaProxy.status == 200)
            #expect(viaProxy.bodyString.contains(#""usage":{"input_tokens":7,"output_tokens":6}"#))
            let metrics = try await harness.scrape()
            #expect(metrics.value("ollama_requests_total", ["model": "m", "endpoint": "/v1/messages"]) == 1)
            #expect(metrics.value("ollama_prompt_tokens_total", ["model": "m"]) == 7)
            #expect(metrics.value("ollama_completion_tokens_total", ["model": "m"]) == 6)
        }
    }

    @Test func streamIsByteIdenticalToOllamasOwn() async throws {
        try await ProxyHarness.with { harness in
            let body = #"{"model":"m","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#
            let viaProxy = try await harness.viaProxy(.POST, "/v1/messages", body: body)
            let direct = try await harness.direct(.POST, "/v1/messages", body: body)
            #expect(normalizeAnthropic(viaProxy.bodyString) == normalizeAnthropic(direct.bodyString))
            #expect(viaProxy.header("cache-control") == "no-cache")
            #expect(viaProxy.header("connection") == "keep-alive")
        }
    }
}

/// Anthropic message ids are random per request.
func normalizeAnthropic(_ text: String) -> String {
    var result = ""
    var rest = Substring(text)
    while let range = rest.firstRange(of: #""id":"msg_"#) {
        result += rest[..<range.upperBound]
        rest = rest[range.upperBound...]
        if let end = rest.firstIndex(of: "\"") { rest = rest[end...] }
    }
    return result + rest
}
