import NIOCore
import NIOHTTP1
import Testing

/// `/v1/completions` through the proxy is byte for byte what Ollama sends a direct client. With
/// `include_usage`, Ollama puts a zero `usage` on every chunk and adds a usage-only chunk; the proxy sets
/// `include_usage` for clients that did not, so it must take both out again for them.
@Suite struct CompletionsTransparency {
    static let body = #"{"model":"llama3.2","prompt":"Say hello","stream":true}"#

    @Test(arguments: [false, true])
    func streamForAClientThatDidNotAskForUsageIsWhatOllamaSendsIt(goChunking: Bool) async throws {
        try await ProxyHarness.with { harness in
            let headers = [("X-Sim-Tokens", "5")] + (goChunking ? [("X-Sim-Go-Chunking", "1")] : [])
            let viaProxy = try await harness.viaProxy(.POST, "/v1/completions", headers: headers, body: Self.body)
            // The proxy asked Ollama for usage…
            let sent = try #require(harness.simulator.requests.last)
            #expect(sent.bodyText == #"{"model":"llama3.2","prompt":"Say hello","stream":true,"stream_options":{"include_usage":true}}"#)
            // …and the client still gets exactly what Ollama sends a client that did not ask for it.
            let direct = try await harness.direct(.POST, "/v1/completions", headers: headers, body: Self.body)
            #expect(viaProxy.status == 200)
            #expect(viaProxy.header("content-type") == direct.header("content-type"))
            #expect(!direct.bodyString.contains(#""usage""#))
            #expect(!viaProxy.bodyString.contains(#""usage""#))
            #expect(normalizeOpenAI(viaProxy.bodyString) == normalizeOpenAI(direct.bodyString))

            let metrics = try await harness.scrape()
            #expect(metrics.value("ollama_requests_total", ["model": "llama3.2", "endpoint": "/v1/completions"]) == 1)
            #expect(metrics.value("ollama_completion_tokens_total", ["model": "llama3.2"]) == 5)
        }
    }

    @Test func clientThatAskedForUsageGetsTheZeroUsagesAndTheUsageChunkAsOllamaSendsThem() async throws {
        try await ProxyHarness.with { harness in
            let body = #"{"model":"llama3.2","prompt":"Say hello","stream":true,"stream_options":{"include_usage":true}}"#
            let viaProxy = try await harness.viaProxy(.POST, "/v1/completions", body: body)
            #expect(try #require(harness.simulator.requests.last).bodyText == body, "no edit")
            let direct = try await harness.direct(.POST, "/v1/completions", body: body)
            #expect(normalizeOpenAI(viaProxy.bodyString) == normalizeOpenAI(direct.bodyString))
            #expect(viaProxy.bodyString.occurrences(of: #""usage":{"prompt_tokens":0,"completion_tokens":0,"total_tokens":0}"#) == 4,
                    "three tokens and the finish chunk")
            #expect(viaProxy.bodyString.occurrences(of: #""choices":[]"#) == 1)

            let metrics = try await harness.scrape()
            #expect(metrics.value("ollama_requests_total", ["model": "llama3.2", "endpoint": "/v1/completions"]) == 1)
            #expect(metrics.value("ollama_completion_tokens_total", ["model": "llama3.2"]) == 3)
        }
    }
}
