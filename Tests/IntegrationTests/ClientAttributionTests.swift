import NIOCore
import OllamaMetricsProxy
import Testing

/// `--client-header`: per-client counters, bounded, with credentials never exposed.
@Suite struct ClientAttribution {
    static let chat = #"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#

    @Test func theHeadersValueLabelsPerClientCounters() async throws {
        try await ProxyHarness.with(clientHeader: "X-OpenWebUI-User-Email") { harness in
            for (user, tokens) in [("alice@example.com", 2), ("alice@example.com", 4), ("bob@example.com", 5)] {
                _ = try await harness.viaProxy(
                    .POST, "/api/chat", headers: [("X-OpenWebUI-User-Email", user), ("X-Sim-Tokens", "\(tokens)")], body: Self.chat
                )
            }
            _ = try await harness.viaProxy(.POST, "/v1/chat/completions", body: Self.chat)
            _ = try await harness.viaProxy(
                .POST, "/api/chat", headers: [("X-OpenWebUI-User-Email", "carol@example.com"), ("X-Sim-Status", "500")], body: Self.chat
            )
            let metrics = try await harness.scrape()
            let alice = ["client": "alice@example.com", "model": "m"]
            #expect(metrics.value("ollama_client_requests_total", alice) == 2)
            #expect(metrics.value("ollama_client_prompt_tokens_total", alice) == 14)
            #expect(metrics.value("ollama_client_completion_tokens_total", alice) == 6)
            #expect(metrics.value("ollama_client_completion_tokens_total", ["client": "bob@example.com", "model": "m"]) == 5)
            #expect(metrics.value("ollama_client_requests_total", ["client": "unknown", "model": "m"]) == 1)
            #expect(!metrics.samples.contains { $0.labels["client"] == "carol@example.com" }, "failed requests are not completed ones")
            // The contract's families keep their labels.
            #expect(metrics.value("ollama_requests_total", ["model": "m", "endpoint": "/api/chat"]) == 3)
        }
    }

    static func key(_ text: String) -> ClientHashKey {
        try! ClientHashKey(fileContents: Array(text.utf8), source: "test key")
    }

    @Test func credentialsAreKeyedHashesAndNeverExposed() async throws {
        try await ProxyHarness.with(clientHeader: "Authorization", configure: { $0.clientHashKey = Self.key("a key of at least sixteen bytes") }) { harness in
            _ = try await harness.viaProxy(.POST, "/api/chat", headers: [("Authorization", "Bearer sk-123")], body: Self.chat)
            let response = try await httpRequest(harness.metricsAddress, .GET, "/metrics")
            #expect(!response.bodyString.contains("sk-123"))
            // Not the unsalted SHA-256 anyone can compute from a guess.
            #expect(!response.bodyString.contains("key-acb42a4fa3d3"))
            let metrics = MetricsScrape(text: response.bodyString)
            // The first 12 hex digits of HMAC-SHA256("a key of at least sixteen bytes", "sk-123").
            #expect(metrics.value("ollama_client_requests_total", ["client": "key-31385fb6f4fe", "model": "m"]) == 1)
        }
    }

    /// The label of `Bearer sk-123` through a proxy keyed with `key` (nil: the server's own random key).
    static func credentialLabel(key: ClientHashKey?) async throws -> String? {
        try await ProxyHarness.with(clientHeader: "Authorization", configure: { $0.clientHashKey = key }) { harness in
            _ = try await harness.viaProxy(.POST, "/api/chat", headers: [("Authorization", "Bearer sk-123")], body: Self.chat)
            return try await harness.scrape().samples(named: "ollama_client_requests_total").first?.labels["client"]
        }
    }

    @Test func twoProxiesWithOneKeyGiveOneLabelAndDifferentKeysDifferentLabels() async throws {
        let first = try await Self.credentialLabel(key: Self.key("the operator's shared secret"))
        let second = try await Self.credentialLabel(key: Self.key("the operator's shared secret"))
        let other = try await Self.credentialLabel(key: Self.key("another deployment's secret"))
        let unkeyed = try await Self.credentialLabel(key: nil)
        #expect(first != nil && first?.hasPrefix("key-") == true && first?.count == 16, "\(first ?? "none")")
        #expect(first == second)
        #expect(other != first)
        #expect(unkeyed != first && unkeyed != other && unkeyed?.hasPrefix("key-") == true)
    }

    @Test func clientValuesAreBounded() async throws {
        try await ProxyHarness.with(maxModelLabels: 3, clientHeader: "X-User") { harness in
            for user in 0..<6 {
                _ = try await harness.viaProxy(.POST, "/api/chat", headers: [("X-User", "user-\(user)")], body: Self.chat)
            }
            let metrics = try await harness.scrape()
            let clients = Set(metrics.samples(named: "ollama_client_requests_total").compactMap { $0.labels["client"] })
            #expect(clients == ["user-0", "user-1", "user-2", "__overflow__"])
            #expect(metrics.value("ollama_client_requests_total", ["client": "__overflow__", "model": "m"]) == 3)
        }
    }

    @Test func withoutTheFlagThereAreNoClientSeries() async throws {
        try await ProxyHarness.with { harness in
            _ = try await harness.viaProxy(.POST, "/api/chat", headers: [("X-User", "alice")], body: Self.chat)
            let metrics = try await harness.scrape()
            #expect(!metrics.samples.contains { $0.name.hasPrefix("ollama_client_") })
        }
    }
}
