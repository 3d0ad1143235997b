import Foundation
import NIOCore
import NIOHTTP1
import OllamaMetricsProxy
import Testing

/// The status page and `/status.json` on the metrics port, through real sockets: its numbers are the
/// metrics' numbers, it asks for the metrics token, and it can be turned off.
@Suite struct StatusPageEndToEnd {
    static let token = try! MetricsToken(fileContents: Array("page-T0ken\n".utf8), path: "token")

    static func chat(_ model: String, stream: Bool) -> String {
        #"{"model":"\#(model)","messages":[{"role":"user","content":"hi"}],"stream":\#(stream)}"#
    }

    /// Every dialect, streaming and not, and each way a request fails that the simulator can cause.
    static func mixedLoad(_ harness: ProxyHarness) async throws {
        let requests: [(String, String, [(String, String)], Int)] = [
            ("/api/chat", chat("llama3.2", stream: true), [("X-Sim-Header-Delay-Ms", "30")], 200),
            ("/api/chat", chat("llama3.2", stream: true), [("X-Sim-Header-Delay-Ms", "120")], 200),
            ("/api/generate", #"{"model":"llama3.2","prompt":"hi","stream":false}"#, [], 200),
            ("/v1/chat/completions", chat("qwen2.5:0.5b", stream: true), [("X-Sim-Tokens", "6")], 200),
            ("/v1/chat/completions", chat("qwen2.5:0.5b", stream: false), [], 200),
            ("/v1/messages", #"{"model":"qwen2.5:0.5b","max_tokens":9,"messages":[{"role":"user","content":"hi"}],"stream":true}"#, [], 200),
            ("/api/embed", #"{"model":"nomic-embed-text","input":"hi"}"#, [], 200),
            ("/api/chat", chat("qwen2.5:0.5b", stream: false), [("X-Sim-Status", "500")], 500),
            ("/api/chat", chat("missing-model", stream: false), [], 404),
            ("/api/chat", chat("llama3.2", stream: true), [("X-Sim-Error-After", "1")], 200),
        ]
        for (path, body, headers, status) in requests {
            let response = try await harness.viaProxy(.POST, path, headers: headers, body: body)
            #expect(response.status == status, "\(path) \(headers)")
        }
    }

    static func statusJSON(_ harness: ProxyHarness, headers: [(String, String)] = []) async throws -> [String: Any] {
        let response = try await httpRequest(harness.metricsAddress, .GET, "/status.json", headers: headers)
        #expect(response.status == 200)
        #expect(response.header("Content-Type") == "application/json")
        #expect(response.header("Cache-Control") == "no-store")
        return try #require(try JSONSerialization.jsonObject(with: Data(response.bodyString.utf8)) as? [String: Any])
    }

    @Test func theJSONShowsTheNumbersTheMetricsShow() async throws {
        let started = ContinuousClock.now
        try await ProxyHarness.with(accessLog: CapturedLog()) { harness in
            try await Self.mixedLoad(harness)
            // One stream held in flight.
            let held = Task {
                try await harness.viaProxy(.POST, "/api/chat", headers: [("X-Sim-Gate", "status")], body: Self.chat("llama3.2", stream: true))
            }
            #expect(await harness.simulator.waitForHeld(atGate: "status"))
            let json = try await Self.statusJSON(harness)
            let metrics = try await harness.scrape()
            harness.simulator.openGate("status")
            #expect(try await held.value.status == 200)

            let models = try #require(json["models"] as? [[String: Any]])
            let labels = Set(metrics.samples(named: "ollama_request_duration_seconds_count").compactMap { $0.labels["model"] })
            #expect(Set(models.compactMap { $0["model"] as? String }) == labels)
            #expect(labels == ["llama3.2", "qwen2.5:0.5b", "nomic-embed-text", "__rejected__"])
            for model in models {
                let name = try #require(model["model"] as? String)
                let totals = try #require(model["totals"] as? [String: Any])
                func sum(_ metric: String, _ labels: [String: String] = [:]) -> Int {
                    Int(metrics.samples(named: metric).filter { sample in
                        sample.labels["model"] == name && labels.allSatisfy { sample.labels[$0.key] == $0.value }
                    }.map(\.value).reduce(0, +))
                }
                #expect(totals["completed"] as? Int == sum("ollama_requests_total"), "\(name)")
                #expect(totals["failed"] as? Int == sum("ollama_request_failures_total"), "\(name)")
                #expect(totals["client_disconnected"] as? Int == sum("ollama_request_failures_total", ["reason": "client_disconnected"]))
                #expect(totals["prompt_tokens"] as? Int == sum("ollama_prompt_tokens_total"), "\(name)")
                #expect(totals["completion_tokens"] as? Int == sum("ollama_completion_tokens_total"), "\(name)")
                #expect(model["in_flight"] as? Int == sum("ollama_active_requests"), "\(name)")
                #expect(totals["requests"] as? Int == sum("ollama_request_duration_seconds_count"), "\(name)")

                let firstToken = try #require(model["time_to_first_token_s"] as? [String: Any])
                let buckets = Self.cumulativeBuckets(metrics, "ollama_time_to_first_token_seconds", model: name)
                #expect(firstToken["count"] as? Int == sum("ollama_time_to_first_token_seconds_count"), "\(name)")
                for (key, q) in [("p50", 0.5), ("p95", 0.95)] {
                    let expected = Self.histogramQuantile(q, buckets)
                    let shown = firstToken[key] as? Double
                    #expect(shown == expected.map { ($0 * 1e6).rounded() / 1e6 }, "\(name) \(key): \(String(describing: shown)) vs \(String(describing: expected))")
                }
                if ContinuousClock.now - started < .seconds(50) {
                    let minute = try #require(model["last_minute"] as? [String: Any])
                    #expect(minute["requests"] as? Int == totals["requests"] as? Int, "the whole load is within the last minute")
                }
            }
            let llama = try #require(models.first { $0["model"] as? String == "llama3.2" })
            #expect(llama["in_flight"] as? Int == 1, "the held stream")
            #expect(((llama["time_to_first_token_s"] as? [String: Any])?["count"] as? Int ?? 0) >= 2)

            let ollama = try #require(json["ollama"] as? [String: Any])
            #expect(ollama["up"] as? Bool == true)
            #expect(ollama["version"] as? String == metrics.samples(named: "ollama_version_info").first?.labels["version"])
            let loaded = try #require(ollama["loaded_models"] as? [[String: Any]])
            #expect(!loaded.isEmpty)
            for model in loaded {
                let name = try #require(model["name"] as? String)
                #expect(model["vram_bytes"] as? Int == metrics.value("ollama_loaded_model_vram_bytes", ["model": name]).map { Int($0) })
                #expect(model["size_bytes"] as? Int == metrics.value("ollama_loaded_model_size_bytes", ["model": name]).map { Int($0) })
            }

            let all = try #require(json["all"] as? [String: Any])
            let allTotals = try #require(all["totals"] as? [String: Any])
            #expect(allTotals["requests"] as? Int == 10)
            let recent = try #require(json["recent"] as? [[String: Any]])
            #expect(recent.count == 10)
            #expect(recent.first?["outcome"] as? String == "stream_error", "newest first")
            #expect(recent.first?["client"] as? String == "127.0.0.1", "the access log is on: the address shows")
            #expect(Set(recent.compactMap { $0["outcome"] as? String }) == ["completed", "http_5xx", "http_4xx", "stream_error"])
            #expect(recent.contains { $0["model"] as? String == "__rejected__" && $0["status"] as? Int == 404 })
        }
    }

    @Test func withoutTheAccessLogNoAddressIsShown() async throws {
        try await ProxyHarness.with { harness in
            #expect(try await harness.viaProxy(.POST, "/api/chat", body: Self.chat("llama3.2", stream: false)).status == 200)
            let json = try await Self.statusJSON(harness)
            #expect(json["shows_clients"] as? Bool == false)
            #expect((json["recent"] as? [[String: Any]])?.first?["client"] is NSNull)
        }
    }

    @Test func thePageIsOneSelfContainedDocumentForGetAndHead() async throws {
        try await ProxyHarness.with { harness in
            let page = try await httpRequest(harness.metricsAddress, .GET, "/")
            #expect(page.status == 200)
            #expect(page.header("Content-Type") == "text/html; charset=utf-8")
            #expect(page.header("Cache-Control") == "no-store")
            let policy = try #require(page.header("Content-Security-Policy"))
            #expect(policy.contains("default-src 'none'") && policy.contains("script-src 'sha256-") && !policy.contains("unsafe"))
            #expect(page.header("X-Content-Type-Options") == "nosniff" && page.header("X-Frame-Options") == "DENY")
            #expect(page.bodyString.hasPrefix("<!doctype html>") && page.bodyString.contains(#"fetch("status.json""#))
            let head = try await httpRequest(harness.metricsAddress, .HEAD, "/")
            #expect(head.status == 200 && head.body.readableBytes == 0)
            #expect(head.header("Content-Length") == String(page.body.readableBytes))
            #expect(try await httpRequest(harness.metricsAddress, .HEAD, "/status.json").status == 200)
            #expect(try await httpRequest(harness.metricsAddress, .POST, "/", body: "x").status == 405)
            #expect(try await httpRequest(harness.metricsAddress, .GET, "/status").status == 404)
        }
    }

    @Test func turnedOffThePageAndItsJSONAreNotFound() async throws {
        try await ProxyHarness.with(configure: { $0.statusPage = false }) { harness in
            for method in [HTTPMethod.GET, .HEAD] {
                for path in ["/", "/status.json"] {
                    let response = try await httpRequest(harness.metricsAddress, method, path)
                    #expect(response.status == 404, "\(method) \(path)")
                }
            }
            #expect(try await httpRequest(harness.metricsAddress, .GET, "/metrics").status == 200)
        }
    }

    @Test func withATokenTheAddressSetsACookieThatOpensThePageAndTheJSONButNotTheMetrics() async throws {
        try await ProxyHarness.with(configure: { $0.metricsToken = Self.token }) { harness in
            let address = harness.metricsAddress
            for uri in ["/", "/?token=wrong", "/?token=page-T0ke", "/status.json", "/status.json?token=page-T0ken"] {
                let refused = try await httpRequest(address, .GET, uri)
                #expect(refused.status == 401, "\(uri)")
                #expect(refused.header("Set-Cookie") == nil && !refused.bodyString.contains("ollama_"), "\(uri)")
            }
            let redirect = try await httpRequest(address, .GET, "/?token=page-T0ken")
            #expect(redirect.status == 303)
            #expect(redirect.header("Location") == "./")
            let setCookie = try #require(redirect.header("Set-Cookie"))
            #expect(setCookie.contains("; Path=/; HttpOnly; SameSite=Strict") && !setCookie.contains("page-T0ken"))
            let cookie = String(setCookie.prefix { $0 != ";" })

            #expect(try await httpRequest(address, .GET, "/", headers: [("Cookie", cookie)]).status == 200)
            #expect(try await httpRequest(address, .HEAD, "/", headers: [("Cookie", cookie)]).status == 200)
            _ = try await Self.statusJSON(harness, headers: [("Cookie", "other=1; " + cookie)])
            _ = try await Self.statusJSON(harness, headers: [("Authorization", "Bearer page-T0ken")])
            #expect(try await httpRequest(address, .GET, "/", headers: [("Authorization", "Bearer page-T0ken")]).status == 200)
            #expect(try await httpRequest(address, .GET, "/metrics", headers: [("Cookie", cookie)]).status == 401)
            let value = String(cookie.drop { $0 != "=" }.dropFirst())
            #expect(try await httpRequest(address, .GET, "/metrics", headers: [("Authorization", "Bearer \(value)")]).status == 401)
            #expect(try await httpRequest(address, .GET, "/healthz").status == 200)
        }
    }

    /// The `le` buckets of a histogram summed over a model's series (`sum by (le)`), in order, `+Inf` last.
    static func cumulativeBuckets(_ metrics: MetricsScrape, _ name: String, model: String) -> [(bound: Double, cumulative: Double)] {
        var byBound: [Double: Double] = [:]
        for sample in metrics.samples(named: name + "_bucket") where sample.labels["model"] == model {
            guard let le = sample.labels["le"] else { continue }
            byBound[le == "+Inf" ? .infinity : Double(le)!, default: 0] += sample.value
        }
        return byBound.sorted { $0.key < $1.key }.map { (bound: $0.key, cumulative: $0.value) }
    }

    /// Prometheus' `histogram_quantile` (promql/quantile.go `bucketQuantile`), written out again here so that
    /// the page's own implementation is checked against an independent one.
    static func histogramQuantile(_ q: Double, _ buckets: [(bound: Double, cumulative: Double)]) -> Double? {
        guard let total = buckets.last?.cumulative, total > 0, buckets.count >= 2 else { return nil }
        let rank = q * total
        let index = buckets.dropLast().firstIndex { $0.cumulative >= rank } ?? buckets.count - 1
        if index == buckets.count - 1 { return buckets[buckets.count - 2].bound }
        if index == 0 && buckets[0].bound <= 0 { return buckets[0].bound }
        let start = index == 0 ? 0 : buckets[index - 1].bound
        let below = index == 0 ? 0 : buckets[index - 1].cumulative
        return start + (buckets[index].bound - start) * ((rank - below) / (buckets[index].cumulative - below))
    }
}
