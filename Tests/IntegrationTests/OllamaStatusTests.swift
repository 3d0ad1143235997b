import NIOCore
import NIOPosix
import OllamaMetricsProxy
import OllamaSimulator
import Testing

/// What the proxy asks Ollama at scrape time (`/api/ps`, `/api/version`): behind a one-second cache, within
/// a one-second timeout, never failing or hanging the scrape.
@Suite struct OllamaStatus {
    @Test func loadedModelsAndVersionAreReportedAndAnUnloadedModelDisappears() async throws {
        try await ProxyHarness.with { harness in
            _ = try await harness.viaProxy(.POST, "/api/generate", body: #"{"model":"llama3.2","prompt":"hi"}"#)
            let ps = try await harness.direct(.GET, "/api/ps").bodyString
            let metrics = try await harness.scrape(until: { $0.value("ollama_loaded_model_size_bytes", ["model": "llama3.2:latest"]) != nil })
            #expect(metrics.value("ollama_up") == 1)
            #expect(metrics.value("ollama_version_info", ["version": "0.33.0"]) == 1)
            let size = try #require(metrics.value("ollama_loaded_model_size_bytes", ["model": "llama3.2:latest"]))
            #expect(ps.contains(#""size":\#(Int64(size)),"#), "the size /api/ps reports: \(ps)")
            #expect(metrics.value("ollama_loaded_model_vram_bytes", ["model": "llama3.2:latest"]) == size)
            #expect(metrics.value("ollama_loaded_model_context_length", ["model": "llama3.2:latest"]) == 4096)
            let expiresIn = try #require(metrics.value("ollama_loaded_model_expires_in_seconds", ["model": "llama3.2:latest"]))
            #expect(expiresIn > 250 && expiresIn <= 300, "the simulator keeps models 5 minutes: \(expiresIn)")
            for name in ["ollama_up", "ollama_version_info", "ollama_loaded_model_size_bytes", "ollama_loaded_model_expires_in_seconds"] {
                #expect(metrics.type[name] == "gauge", "\(name)")
            }

            // Unloaded: gone from the first scrape after the cache (one second from the last fetch, which
            // ended before the scrape above returned).
            _ = try await harness.viaProxy(.POST, "/api/generate", body: #"{"model":"llama3.2","keep_alive":0}"#)
            try await Task.sleep(for: .milliseconds(1_100))
            let after = try await harness.scrape()
            #expect(after.samples(named: "ollama_loaded_model_size_bytes").isEmpty)
            #expect(after.value("ollama_up") == 1)
        }
    }

    @Test func aBurstOfScrapesCostsOneCallToOllama() async throws {
        try await ProxyHarness.with { harness in
            let scrapes = try await withThrowingTaskGroup(of: MetricsScrape.self) { group in
                for _ in 0..<8 { group.addTask { try await harness.scrape() } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(scrapes.allSatisfy { $0.value("ollama_up") == 1 })
            #expect(harness.simulator.requests.filter { $0.path == "/api/ps" }.count == 1)
            #expect(harness.simulator.requests.filter { $0.path == "/api/version" }.count == 1)
        }
    }

    @Test func theFetchUsesTheUpstreamBasePathAndHost() async throws {
        try await ProxyHarness.with(upstreamBasePath: "/ollama") { harness in
            let metrics = try await harness.scrape()
            // The simulator serves no prefix: its 404 makes Ollama count as down.
            #expect(metrics.value("ollama_up") == 0)
            let seen = try #require(harness.simulator.requests.first { $0.path == "/ollama/api/ps" })
            #expect(seen.header("host") == "127.0.0.1:\(harness.simulator.port)")
            #expect(harness.simulator.requests.contains { $0.path == "/ollama/api/version" })
        }
    }

    @Test func unreachableOllamaGivesUpZero() async throws {
        try await ProxyHarness.with(upstreamURL: "http://127.0.0.1:\(unreachablePort)", ollamaStatusTimeout: .seconds(1)) { harness in
            let start = ContinuousClock.now
            let metrics = try await harness.scrape()
            #expect(metrics.value("ollama_up") == 0)
            #expect(metrics.samples(named: "ollama_version_info").isEmpty)
            let build = try #require(metrics.samples(named: "ollama_metrics_proxy_build_info").first)
            #expect(build.value == 1 && build.labels["version"] == ProxyVersion.current && build.labels["swift_version"]?.hasPrefix("6.") == true)
            // Not a speed check (none goes in tests): the scrape answered instead of hanging. The bound is far
            // above what a loaded 2-core machine needs (over 4 s was seen with the suite running in parallel).
            #expect(ContinuousClock.now - start < .seconds(20))
        }
    }

    @Test func hungOllamaGivesUpZeroWithinTheTimeout() async throws {
        let (hung, port) = try await startHungListener()
        try await ProxyHarness.with(upstreamURL: "http://127.0.0.1:\(port)", ollamaStatusTimeout: .seconds(1)) { harness in
            let start = ContinuousClock.now
            let metrics = try await harness.scrape()
            let elapsed = ContinuousClock.now - start
            #expect(metrics.value("ollama_up") == 0)
            // The probe waited for its timeout, then answered instead of hanging. The upper bound is far above
            // what a loaded 2-core machine needs (4.7 s was seen with the suite running in parallel).
            #expect(elapsed >= .milliseconds(900) && elapsed < .seconds(20), "\(elapsed)")
            // The rest of the exposition is there as always.
            #expect(metrics.type["process_open_fds"] == "gauge")
            #expect(metrics.samples(named: "ollama_metrics_proxy_build_info").count == 1)
        }
        try await hung.close()
    }

    @Test func processMetricsAreReadFromProc() async throws {
        try await ProxyHarness.with { harness in
            let metrics = try await harness.scrape()
            #expect((metrics.value("process_resident_memory_bytes") ?? 0) > 1_000_000)
            #expect((metrics.value("process_open_fds") ?? 0) > 3)
            #expect((metrics.value("process_max_fds") ?? 0) >= (metrics.value("process_open_fds") ?? 0))
            #expect((metrics.value("process_cpu_seconds_total") ?? -1) >= 0)
            #expect(metrics.type["process_cpu_seconds_total"] == "counter")
            let start = try #require(metrics.value("process_start_time_seconds"))
            #expect(start > 1_700_000_000 && start < 4_000_000_000)
        }
    }
}
