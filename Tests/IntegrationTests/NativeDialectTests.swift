import NIOCore
import NIOHTTP1
import Testing

/// Ollama's native API through the proxy, with the metric values read back from `/metrics`.
/// Simulator defaults: 7 prompt tokens, 3 completion tokens, load 0.25 s, prompt eval 0.05 s,
/// 0.02 s per generated token.
@Suite struct NativeDialect {
    @Test func streamingGenerateRecordsEveryNativeMetric() async throws {
        try await ProxyHarness.with { harness in
            let response = try await harness.viaProxy(
                .POST, "/api/generate", body: #"{"model":"llama3.2","prompt":"Why is the sky blue?"}"#
            )
            #expect(response.status == 200)
            #expect(response.header("content-type") == "application/x-ndjson")
            #expect(response.bodyString.contains(#""done":true"#))

            let metrics = try await harness.scrape()
            let series = ["model": "llama3.2", "endpoint": "/api/generate"]
            #expect(metrics.value("ollama_requests_total", series) == 1)
            #expect(metrics.value("ollama_active_requests", series) == 0)
            #expect(metrics.value("ollama_request_duration_seconds_count", series) == 1)
            #expect(metrics.value("ollama_prompt_tokens_total", ["model": "llama3.2"]) == 7)
            #expect(metrics.value("ollama_completion_tokens_total", ["model": "llama3.2"]) == 3)
            #expect(metrics.value("ollama_model_load_seconds_total", ["model": "llama3.2"]) == 0.25)
            #expect(metrics.value("ollama_prompt_eval_seconds_total", ["model": "llama3.2"]) == 0.05)
            #expect(isClose(metrics.value("ollama_token_generation_seconds_total", ["model": "llama3.2"]), 0.06))
            #expect(isClose(metrics.value("ollama_tokens_per_second", ["model": "llama3.2"]), 50))
        }
    }

    @Test func nonStreamingChatIsOneObjectAndCountsTheSame() async throws {
        try await ProxyHarness.with { harness in
            let response = try await harness.viaProxy(
                .POST, "/api/chat", headers: [("X-Sim-Tokens", "5"), ("X-Sim-Prompt-Tokens", "26")],
                body: #"{"model":"qwen3:8b","messages":[{"role":"user","content":"hi"}],"stream":false}"#
            )
            #expect(response.status == 200)
            #expect(response.header("content-type") == "application/json; charset=utf-8")
            #expect(!response.bodyString.hasSuffix("\n"))

            let metrics = try await harness.scrape()
            #expect(metrics.value("ollama_requests_total", ["model": "qwen3:8b", "endpoint": "/api/chat"]) == 1)
            #expect(metrics.value("ollama_prompt_tokens_total", ["model": "qwen3:8b"]) == 26)
            #expect(metrics.value("ollama_completion_tokens_total", ["model": "qwen3:8b"]) == 5)
        }
    }

    @Test func countersAddUpOverRequestsAndTokensPerSecondIsTheLatest() async throws {
        try await ProxyHarness.with { harness in
            for tokens in [2, 4, 10] {
                _ = try await harness.viaProxy(
                    .POST, "/api/chat", headers: [("X-Sim-Tokens", "\(tokens)")],
                    body: #"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#
                )
            }
            let metrics = try await harness.scrape()
            #expect(metrics.value("ollama_requests_total", ["model": "m", "endpoint": "/api/chat"]) == 3)
            #expect(metrics.value("ollama_completion_tokens_total", ["model": "m"]) == 16)
            #expect(metrics.value("ollama_prompt_tokens_total", ["model": "m"]) == 21)
            #expect(isClose(metrics.value("ollama_token_generation_seconds_total", ["model": "m"]), 0.32))
            #expect(isClose(metrics.value("ollama_tokens_per_second", ["model": "m"]), 50))
        }
    }

    @Test func omittedZeroTimingsAreNotRequired() async throws {
        try await ProxyHarness.with { harness in
            _ = try await harness.viaProxy(
                .POST, "/api/generate", headers: [("X-Sim-Load-Duration-Ns", "0")],
                body: #"{"model":"warm","prompt":"hi"}"#
            )
            let metrics = try await harness.scrape()
            #expect(metrics.value("ollama_requests_total", ["model": "warm", "endpoint": "/api/generate"]) == 1)
            #expect(metrics.value("ollama_completion_tokens_total", ["model": "warm"]) == 3)
            #expect((metrics.value("ollama_model_load_seconds_total", ["model": "warm"]) ?? 0) == 0)
        }
    }

    @Test func multiMegabyteFinalLineIsForwardedWholeAndCounted() async throws {
        try await ProxyHarness.with { harness in
            let request = #"{"model":"big","prompt":"hi"}"#
            let headers = [("X-Sim-Context-Size", "300000")]
            let viaProxy = try await harness.viaProxy(.POST, "/api/generate", headers: headers, body: request)
            let direct = try await harness.direct(.POST, "/api/generate", headers: headers, body: request)
            #expect(viaProxy.body.readableBytes > 1_000_000)
            #expect(stripCreatedAt(viaProxy.bodyString) == stripCreatedAt(direct.bodyString))
            let metrics = try await harness.scrape()
            #expect(metrics.value("ollama_requests_total", ["model": "big", "endpoint": "/api/generate"]) == 1)
            #expect(metrics.value("ollama_completion_tokens_total", ["model": "big"]) == 3)
        }
    }

    @Test func errorInsideA200StreamIsNotACompletedRequest() async throws {
        try await ProxyHarness.with { harness in
            let response = try await harness.viaProxy(
                .POST, "/api/chat", headers: [("X-Sim-Tokens", "5"), ("X-Sim-Error-After", "2")],
                body: #"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#
            )
            #expect(response.status == 200)
            #expect(response.bodyString.contains(#"{"error":"#))
            let metrics = try await harness.scrape()
            let series = ["model": "m", "endpoint": "/api/chat"]
            #expect((metrics.value("ollama_requests_total", series) ?? 0) == 0)
            #expect(metrics.value("ollama_active_requests", series) == 0)
            #expect(metrics.value("ollama_request_duration_seconds_count", series) == 1)
        }
    }

    @Test func unknownModelPassesOllamas404Through() async throws {
        try await ProxyHarness.with { harness in
            let response = try await harness.viaProxy(
                .POST, "/api/generate", body: #"{"model":"missing-model","prompt":"hi"}"#
            )
            #expect(response.status == 404)
            #expect(response.bodyString == #"{"error":"model 'missing-model' not found"}"#)
            let metrics = try await harness.scrape()
            let series = ["model": "missing-model", "endpoint": "/api/generate"]
            #expect((metrics.value("ollama_requests_total", series) ?? 0) == 0)
            #expect((metrics.value("ollama_active_requests", series) ?? 0) == 0)
        }
    }

    @Test func malformedJSONReachesOllamaAndItsAnswerReachesTheClient() async throws {
        try await ProxyHarness.with { harness in
            let response = try await harness.viaProxy(.POST, "/api/chat", body: #"{"model": oops"#)
            #expect(response.status == 400)
            #expect(response.bodyString.contains(#"{"error":"#))
            let metrics = try await harness.scrape()
            let series = ["model": "unknown", "endpoint": "/api/chat"]
            #expect((metrics.value("ollama_requests_total", series) ?? 0) == 0)
            #expect(metrics.value("ollama_active_requests", series) == 0)
            #expect(metrics.value("ollama_request_duration_seconds_count", series) == 1)
        }
    }
}

func isClose(_ value: Double?, _ expected: Double, tolerance: Double = 1e-9) -> Bool {
    guard let value else { return false }
    return abs(value - expected) <= tolerance * max(1, abs(expected))
}

/// Ollama stamps each chunk with the time it was made; two runs of the same request differ only there.
func stripCreatedAt(_ text: String) -> String {
    var out = ""
    var rest = Substring(text)
    let key = #""created_at":""#
    while let range = rest.firstRange(of: key) {
        out += rest[..<range.upperBound]
        rest = rest[range.upperBound...]
        if let quote = rest.firstIndex(of: "\"") { rest = rest[quote...] }
    }
    return out + rest
}
