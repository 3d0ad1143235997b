import NIOCore
import NIOHTTP1
import Testing

/// The endpoints beyond chat and generate: embeddings, legacy completions and the Responses API.
@Suite struct EndpointCoverage {
    @Test func nativeEmbedCountsPromptTokensAndLoadTime() async throws {
        try await ProxyHarness.with { harness in
            let response = try await harness.viaProxy(
                .POST, "/api/embed", body: #"{"model":"nomic-embed-text","input":["one","two","three"]}"#
            )
            #expect(response.status == 200)
            let metrics = try await harness.scrape()
            #expect(metrics.value("ollama_requests_total", ["model": "nomic-embed-text", "endpoint": "/api/embed"]) == 1)
            #expect(metrics.value("ollama_prompt_tokens_total", ["model": "nomic-embed-text"]) == 21)
            #expect(metrics.value("ollama_model_load_seconds_total", ["model": "nomic-embed-text"]) == 0.25)
            #expect(metrics.value("ollama_completion_tokens_total", ["model": "nomic-embed-text"]) == nil)
        }
    }

    @Test func legacyEmbeddingsCountTheRequestWithoutTokens() async throws {
        try await ProxyHarness.with { harness in
            let response = try await harness.viaProxy(
                .POST, "/api/embeddings", body: #"{"model":"nomic-embed-text","prompt":"hello"}"#
            )
            #expect(response.status == 200)
            let metrics = try await harness.scrape()
            #expect(metrics.value("ollama_requests_total", ["model": "nomic-embed-text", "endpoint": "/api/embeddings"]) == 1)
            #expect(metrics.value("ollama_prompt_tokens_total", ["model": "nomic-embed-text"]) == nil)
        }
    }

    @Test func openAIEmbeddingsCountPromptTokens() async throws {
        try await ProxyHarness.with { harness in
            let response = try await harness.viaProxy(
                .POST, "/v1/embeddings", body: #"{"model":"e","input":["a","b"]}"#
            )
            #expect(response.status == 200)
            let metrics = try await harness.scrape()
            #expect(metrics.value("ollama_requests_total", ["model": "e", "endpoint": "/v1/embeddings"]) == 1)
            #expect(metrics.value("ollama_prompt_tokens_total", ["model": "e"]) == 14)
        }
    }

    @Test func legacyCompletionsStreamCountsOnlyTheFinalUsageAndHidesIt() async throws {
        try await ProxyHarness.with { harness in
            let body = #"{"model":"m","prompt":"Say hi","stream":true}"#
            let response = try await harness.viaProxy(.POST, "/v1/completions", headers: [("X-Sim-Tokens", "4")], body: body)
            #expect(response.status == 200)
            #expect(!response.bodyString.contains(#""choices":[]"#))
            // Ollama's zero usage on every chunk comes from the injected option; the client sees it as Ollama sent it.
            #expect(response.bodyString.hasSuffix("data: [DONE]\n\n"))
            let metrics = try await harness.scrape()
            #expect(metrics.value("ollama_requests_total", ["model": "m", "endpoint": "/v1/completions"]) == 1)
            #expect(metrics.value("ollama_prompt_tokens_total", ["model": "m"]) == 7)
            #expect(metrics.value("ollama_completion_tokens_total", ["model": "m"]) == 4)
        }
    }

    @Test func legacyCompletionsWithIncludeUsageAreByteIdenticalAndCountedOnce() async throws {
        try await ProxyHarness.with { harness in
            let body = #"{"model":"m","prompt":"Say hi","stream":true,"stream_options":{"include_usage":true}}"#
            let viaProxy = try await harness.viaProxy(.POST, "/v1/completions", body: body)
            let direct = try await harness.direct(.POST, "/v1/completions", body: body)
            #expect(normalizeOpenAI(viaProxy.bodyString) == normalizeOpenAI(direct.bodyString))
            #expect(viaProxy.bodyString.occurrences(of: #""choices":[]"#) == 1)
            #expect(viaProxy.bodyString.occurrences(of: #""prompt_tokens":0"#) >= 3)
            let metrics = try await harness.scrape()
            #expect(metrics.value("ollama_requests_total", ["model": "m", "endpoint": "/v1/completions"]) == 1)
            #expect(metrics.value("ollama_completion_tokens_total", ["model": "m"]) == 3)
        }
    }

    @Test func responsesStreamAndDocumentAreCounted() async throws {
        try await ProxyHarness.with { harness in
            let streaming = try await harness.viaProxy(
                .POST, "/v1/responses", headers: [("X-Sim-Tokens", "5")],
                body: #"{"model":"m","input":"Say hi","stream":true}"#
            )
            #expect(streaming.status == 200)
            #expect(streaming.bodyString.contains("event: response.completed"))
            #expect(try #require(harness.simulator.requests.last).bodyText == #"{"model":"m","input":"Say hi","stream":true}"#)
            let document = try await harness.viaProxy(.POST, "/v1/responses", body: #"{"model":"m","input":"Say hi"}"#)
            #expect(document.status == 200)
            let metrics = try await harness.scrape()
            #expect(metrics.value("ollama_requests_total", ["model": "m", "endpoint": "/v1/responses"]) == 2)
            #expect(metrics.value("ollama_prompt_tokens_total", ["model": "m"]) == 14)
            #expect(metrics.value("ollama_completion_tokens_total", ["model": "m"]) == 8)
        }
    }
}
