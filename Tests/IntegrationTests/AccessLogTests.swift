import NIOCore
import NIOHTTP1
import OllamaMetricsProxy
import Testing

/// The access log: one entry per proxied request, inference or not, with what an operator needs and
/// nothing that can carry a secret.
@Suite struct AccessLog {
    @Test func aNativeStreamIsLoggedWithModelTokensTimingsAndBytes() async throws {
        let log = CapturedLog()
        try await ProxyHarness.with(accessLog: log) { harness in
            let body = #"{"model":"llama3.2","messages":[{"role":"user","content":"a secret prompt"}]}"#
            let response = try await harness.viaProxy(
                .POST, "/api/chat", headers: [("X-Sim-Tokens", "5"), ("X-Sim-Prompt-Tokens", "11"), ("X-Sim-Token-Delay-Ms", "20")],
                body: body
            )
            #expect(response.status == 200)
            let entry = try #require(try await log.entries(count: 1).first)
            #expect(entry.label == "ollama-metrics-proxy.access")
            #expect(entry.level == .info)
            #expect(entry.message == "request")
            #expect(entry["method"] == "POST" && entry["path"] == "/api/chat" && entry["status"] == "200")
            #expect(entry["outcome"] == "completed")
            #expect(entry["endpoint"] == "/api/chat" && entry["model"] == "llama3.2" && entry["stream"] == "true")
            #expect(entry["prompt_tokens"] == "11" && entry["completion_tokens"] == "5")
            #expect(entry["bytes_in"] == String(body.utf8.count))
            #expect(entry["bytes_out"] == String(response.body.readableBytes))
            #expect(entry["client"] == "127.0.0.1")
            let duration = try #require(entry["duration_s"].flatMap(Double.init))
            let ttft = try #require(entry["ttft_s"].flatMap(Double.init))
            #expect(ttft > 0 && ttft <= duration, "ttft \(ttft), duration \(duration)")
            #expect(duration >= 0.08, "five tokens 20 ms apart: \(duration)")
            #expect(!"\(entry.metadata)".contains("secret"), "never the prompt")
        }
    }

    @Test func anOpenAIStreamIsLoggedWithoutItsQueryStringOrHeaders() async throws {
        let log = CapturedLog()
        try await ProxyHarness.with(accessLog: log) { harness in
            let body = #"{"model":"llama3.2","messages":[{"role":"user","content":"Hello"}],"stream":true}"#
            let response = try await harness.viaProxy(
                .POST, "/v1/chat/completions?api_key=sk-secret",
                headers: [("Authorization", "Bearer sk-secret"), ("X-Sim-Tokens", "3"), ("X-Sim-Prompt-Tokens", "7")],
                body: body
            )
            #expect(response.status == 200)
            let entry = try #require(try await log.entries(count: 1).first)
            #expect(entry["path"] == "/v1/chat/completions")
            #expect(entry["endpoint"] == "/v1/chat/completions" && entry["stream"] == "true")
            #expect(entry["prompt_tokens"] == "7" && entry["completion_tokens"] == "3")
            #expect(entry["outcome"] == "completed" && entry["status"] == "200")
            // The body Ollama got carries the usage option the proxy added; the client got the withheld stream.
            #expect(entry["bytes_in"] == String(body.utf8.count + #","stream_options":{"include_usage":true}"#.utf8.count))
            #expect(entry["bytes_out"] == String(response.body.readableBytes))
            #expect(entry["ttft_s"] != nil)
            #expect(!"\(entry.metadata)".contains("secret"), "never a query string or a header value")
        }
    }

    @Test func failuresAreLoggedWithTheStatusTheClientGotAndTheReason() async throws {
        let log = CapturedLog()
        try await ProxyHarness.with(accessLog: log) { harness in
            let response = try await harness.viaProxy(
                .POST, "/api/generate", headers: [("X-Sim-Status", "500")], body: #"{"model":"llama3.2","prompt":"hi"}"#
            )
            #expect(response.status == 500)
            let entry = try #require(try await log.entries(count: 1).first)
            #expect(entry["status"] == "500" && entry["outcome"] == "http_5xx")
            #expect(entry["model"] == "llama3.2" && entry["endpoint"] == "/api/generate")
            #expect(entry["prompt_tokens"] == nil && entry["ttft_s"] == nil)
        }
        let unreachable = CapturedLog()
        try await ProxyHarness.with(upstreamURL: "http://127.0.0.1:\(unreachablePort)", accessLog: unreachable) { harness in
            #expect(try await harness.viaProxy(.GET, "/api/tags").status == 502)
            let entry = try #require(try await unreachable.entries(count: 1).first)
            #expect(entry["method"] == "GET" && entry["path"] == "/api/tags")
            #expect(entry["status"] == "502" && entry["outcome"] == "upstream_unreachable")
            #expect(entry["endpoint"] == nil, "not an inference request")
        }
    }

    @Test func aClientThatHangsUpMidStreamIsLoggedClientDisconnected() async throws {
        let log = CapturedLog()
        try await ProxyHarness.with(accessLog: log) { harness in
            let connection = try await TestHTTPConnection.connect(to: harness.proxyAddress)
            try await connection.send(
                .POST, "/api/generate", headers: [("X-Sim-Tokens", "500"), ("X-Sim-Token-Delay-Ms", "20")],
                body: ByteBuffer(string: #"{"model":"llama3.2","prompt":"hi"}"#)
            )
            _ = await connection.nextPart()
            _ = await connection.nextPart()
            await connection.close()
            let entry = try #require(try await log.entries(count: 1).first)
            #expect(entry["status"] == "200" && entry["outcome"] == "client_disconnected")
            #expect(entry["model"] == "llama3.2" && entry["completion_tokens"] == nil)
            #expect((entry["bytes_out"].flatMap(Int.init) ?? 0) > 0)
        }
    }

    @Test func everyPassThroughRequestIsLoggedToo() async throws {
        let log = CapturedLog()
        try await ProxyHarness.with(accessLog: log) { harness in
            let tags = try await harness.viaProxy(.GET, "/api/tags?verbose=1")
            _ = try await harness.viaProxy(.HEAD, "/")
            let entries = try await log.entries(count: 2)
            #expect(entries.count == 2)
            let first = try #require(entries.first)
            #expect(first["method"] == "GET" && first["path"] == "/api/tags" && first["status"] == "200")
            #expect(first["outcome"] == "completed" && first["bytes_in"] == "0")
            #expect(first["bytes_out"] == String(tags.body.readableBytes))
            #expect(first["model"] == nil && first["endpoint"] == nil && first["ttft_s"] == nil)
            #expect(entries.last?["method"] == "HEAD")
        }
    }
}
