import NIOCore
import NIOHTTP1
import Testing

/// The serving-insight families through real sockets: time to first token, time per output token, tokens
/// per request, prompt and generation speeds, finish reasons, in every dialect.
/// Simulator defaults: 7 prompt tokens, 3 completion tokens, prompt eval 0.05 s, 0.02 s per generated token.
@Suite struct ServingInsight {
    @Test func nativeStreamRecordsLatencySizesSpeedsAndFinishReason() async throws {
        try await ProxyHarness.with { harness in
            let response = try await harness.viaProxy(
                .POST, "/api/generate", headers: [("X-Sim-Header-Delay-Ms", "300")],
                body: #"{"model":"llama3.2","prompt":"Why is the sky blue?"}"#
            )
            #expect(response.status == 200)
            let metrics = try await harness.scrape()
            let series = ["model": "llama3.2", "endpoint": "/api/generate"]
            // The first token came after the 300 ms Ollama took to answer.
            #expect(metrics.value("ollama_time_to_first_token_seconds_count", series) == 1)
            let firstToken = try #require(metrics.value("ollama_time_to_first_token_seconds_sum", series))
            #expect(firstToken >= 0.3 && firstToken < 30, "\(firstToken)")
            #expect(metrics.value("ollama_time_to_first_token_seconds_bucket", series.merging(["le": "0.25"]) { $1 }) == 0)
            #expect(metrics.value("ollama_time_to_first_token_seconds_bucket", series.merging(["le": "+Inf"]) { $1 }) == 1)
            // Native: eval_duration / eval_count, exactly.
            #expect(metrics.value("ollama_time_per_output_token_seconds_count", series) == 1)
            #expect(isClose(metrics.value("ollama_time_per_output_token_seconds_sum", series), 0.02))
            #expect(metrics.value("ollama_request_prompt_tokens_sum", series) == 7)
            #expect(metrics.value("ollama_request_prompt_tokens_bucket", series.merging(["le": "8.0"]) { $1 }) == 1)
            #expect(metrics.value("ollama_request_prompt_tokens_bucket", series.merging(["le": "1.0"]) { $1 }) == 0)
            #expect(metrics.value("ollama_request_completion_tokens_sum", series) == 3)
            #expect(metrics.value("ollama_request_completion_tokens_count", series) == 1)
            // 7 tokens in 0.05 s; 3 tokens in 0.06 s.
            #expect(isClose(metrics.value("ollama_prompt_tokens_per_second", ["model": "llama3.2"]), 140))
            #expect(isClose(metrics.value("ollama_request_prompt_tokens_per_second_sum", ["model": "llama3.2"]), 140))
            #expect(isClose(metrics.value("ollama_request_generation_tokens_per_second_sum", ["model": "llama3.2"]), 50))
            #expect(metrics.value("ollama_request_generation_tokens_per_second_bucket", ["model": "llama3.2", "le": "50.0"]) == 1)
            #expect(metrics.value("ollama_request_generation_tokens_per_second_bucket", ["model": "llama3.2", "le": "20.0"]) == 0)
            #expect(metrics.value("ollama_request_finish_reasons_total", series.merging(["finish_reason": "stop"]) { $1 }) == 1)
            #expect(metrics.type["ollama_time_to_first_token_seconds"] == "histogram")
            #expect(metrics.type["ollama_request_finish_reasons_total"] == "counter")
            #expect(metrics.type["ollama_prompt_tokens_per_second"] == "gauge")
        }
    }

    @Test func openAIStreamTimesTokensFromFirstContentToUsage() async throws {
        try await ProxyHarness.with { harness in
            let response = try await harness.viaProxy(
                .POST, "/v1/chat/completions", headers: [("X-Sim-Tokens", "5"), ("X-Sim-Token-Delay-Ms", "100")],
                body: #"{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true}"#
            )
            #expect(response.status == 200)
            let metrics = try await harness.scrape()
            let series = ["model": "m", "endpoint": "/v1/chat/completions"]
            #expect(metrics.value("ollama_time_to_first_token_seconds_count", series) == 1)
            let firstToken = try #require(metrics.value("ollama_time_to_first_token_seconds_sum", series))
            #expect(firstToken >= 0 && firstToken < 30, "\(firstToken)")
            // Four gaps of at least 100 ms between the first and the last of five tokens.
            #expect(metrics.value("ollama_time_per_output_token_seconds_count", series) == 1)
            let perToken = try #require(metrics.value("ollama_time_per_output_token_seconds_sum", series))
            #expect(perToken >= 0.095 && perToken < 30, "\(perToken)")
            #expect(metrics.value("ollama_request_completion_tokens_sum", series) == 5)
            #expect(metrics.value("ollama_request_prompt_tokens_sum", series) == 7)
            #expect(metrics.value("ollama_request_finish_reasons_total", series.merging(["finish_reason": "stop"]) { $1 }) == 1)
            // No native timings: no speeds.
            #expect(metrics.value("ollama_prompt_tokens_per_second", ["model": "m"]) == nil)
        }
    }

    @Test(arguments: [
        ("/v1/completions", #"{"model":"m","prompt":"hi","stream":true}"#),
        ("/v1/messages", #"{"model":"m","max_tokens":64,"messages":[{"role":"user","content":"hi"}],"stream":true}"#),
        ("/v1/responses", #"{"model":"m","input":"hi","stream":true}"#),
        ("/api/chat", #"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#),
    ])
    func everyStreamingDialectRecordsTheSameFamilies(_ endpoint: String, _ body: String) async throws {
        try await ProxyHarness.with { harness in
            let response = try await harness.viaProxy(.POST, endpoint, headers: [("X-Sim-Tokens", "4")], body: body)
            #expect(response.status == 200)
            let metrics = try await harness.scrape()
            let series = ["model": "m", "endpoint": endpoint]
            #expect(metrics.value("ollama_time_to_first_token_seconds_count", series) == 1)
            #expect(metrics.value("ollama_time_per_output_token_seconds_count", series) == 1)
            #expect(metrics.value("ollama_request_completion_tokens_sum", series) == 4)
            #expect(metrics.value("ollama_request_prompt_tokens_sum", series) == 7)
            #expect(metrics.value("ollama_request_finish_reasons_total", series.merging(["finish_reason": "stop"]) { $1 }) == 1)
        }
    }

    @Test(arguments: [
        ("/v1/chat/completions", #"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#),
        ("/v1/messages", #"{"model":"m","max_tokens":64,"messages":[{"role":"user","content":"hi"}]}"#),
        ("/v1/responses", #"{"model":"m","input":"hi"}"#),
        ("/api/generate", #"{"model":"m","prompt":"hi","stream":false}"#),
    ])
    func nonStreamingRequestsHaveNoTimeToFirstTokenButSizesAndReasons(_ endpoint: String, _ body: String) async throws {
        try await ProxyHarness.with { harness in
            let response = try await harness.viaProxy(.POST, endpoint, headers: [("X-Sim-Tokens", "4")], body: body)
            #expect(response.status == 200)
            let metrics = try await harness.scrape()
            let series = ["model": "m", "endpoint": endpoint]
            #expect((metrics.value("ollama_time_to_first_token_seconds_count", series) ?? 0) == 0)
            #expect(metrics.value("ollama_request_completion_tokens_sum", series) == 4)
            #expect(metrics.value("ollama_request_finish_reasons_total", series.merging(["finish_reason": "stop"]) { $1 }) == 1)
            // Native replies carry eval_duration even when not streamed.
            let perTokenCount = metrics.value("ollama_time_per_output_token_seconds_count", series) ?? 0
            #expect(perTokenCount == (endpoint == "/api/generate" ? 1 : 0))
        }
    }

    @Test func loadRequestsAndEmbeddingsAreCountedByWhatTheyAre() async throws {
        try await ProxyHarness.with { harness in
            _ = try await harness.viaProxy(.POST, "/api/generate", body: #"{"model":"m"}"#)
            _ = try await harness.viaProxy(.POST, "/api/generate", body: #"{"model":"m","keep_alive":0}"#)
            _ = try await harness.viaProxy(.POST, "/api/embed", body: #"{"model":"e","input":"hi"}"#)
            let metrics = try await harness.scrape()
            let generate = ["model": "m", "endpoint": "/api/generate"]
            #expect(metrics.value("ollama_request_finish_reasons_total", generate.merging(["finish_reason": "load"]) { $1 }) == 1)
            #expect(metrics.value("ollama_request_finish_reasons_total", generate.merging(["finish_reason": "unload"]) { $1 }) == 1)
            #expect((metrics.value("ollama_time_to_first_token_seconds_count", generate) ?? 0) == 0, "no content, no first token")
            #expect(metrics.samples(named: "ollama_request_finish_reasons_total").allSatisfy { $0.labels["model"] != "e" })
            #expect(metrics.value("ollama_request_prompt_tokens_sum", ["model": "e", "endpoint": "/api/embed"]) == 7)
            #expect(metrics.samples.allSatisfy { !$0.name.hasPrefix("ollama_time_") || $0.labels["endpoint"] != "/api/embed" }, "no empty latency series")
        }
    }

    @Test func failedAndRejectedRequestsLeaveNoServingSeries() async throws {
        try await ProxyHarness.with { harness in
            _ = try await harness.viaProxy(
                .POST, "/api/chat", headers: [("X-Sim-Status", "500")], body: #"{"model":"m","messages":[]}"#
            )
            let rejected = try await harness.viaProxy(
                .POST, "/api/generate", headers: [("X-Sim-Status", "404")], body: #"{"model":"typo","prompt":"hi"}"#
            )
            #expect(rejected.status == 404)
            let metrics = try await harness.scrape()
            let serving = metrics.samples.filter {
                $0.name.hasPrefix("ollama_time_") || $0.name.hasPrefix("ollama_request_prompt_tokens")
                    || $0.name.hasPrefix("ollama_request_completion_tokens") || $0.name.hasPrefix("ollama_request_finish_reasons")
            }
            #expect(serving.isEmpty, "\(serving.map(\.name))")
            #expect(!metrics.samples.contains { $0.labels["model"] == "typo" })
        }
    }
}
