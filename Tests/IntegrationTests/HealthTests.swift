import NIOCore
import NIOPosix
import OllamaMetricsProxy
import Testing

/// `/healthz` and `/readyz` on the metrics listener: liveness is the process's, readiness is Ollama's,
/// answered within about a second whatever Ollama does, from the scrape's one-second cache.
@Suite struct Health {
    @Test func healthzAndReadyzAnswer200WhileOllamaAnswers() async throws {
        try await ProxyHarness.with { harness in
            let health = try await httpRequest(harness.metricsAddress, .GET, "/healthz")
            #expect(health.status == 200)
            #expect(health.bodyString == "ok\n")
            #expect(health.header("content-type") == "text/plain; charset=utf-8")
            #expect(health.header("cache-control") == "no-store")
            let ready = try await httpRequest(harness.metricsAddress, .GET, "/readyz")
            #expect(ready.status == 200)
            #expect(ready.bodyString == "ready: Ollama answers\n")
            for path in ["/healthz", "/readyz"] {
                let head = try await httpRequest(harness.metricsAddress, .HEAD, path)
                #expect(head.status == 200, "\(path)")
                #expect(head.body.readableBytes == 0, "\(path)")
                let post = try await httpRequest(harness.metricsAddress, .POST, path, body: "")
                #expect(post.status == 405, "\(path)")
                #expect(post.header("allow") == "GET, HEAD", "\(path)")
            }
        }
    }

    @Test func aBurstOfProbesAndScrapesCostsOllamaOneStatusCall() async throws {
        try await ProxyHarness.with { harness in
            let start = ContinuousClock.now
            let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                for index in 0..<8 {
                    group.addTask {
                        try await httpRequest(harness.metricsAddress, .GET, index % 2 == 0 ? "/readyz" : "/metrics").status
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(statuses == Array(repeating: 200, count: 8))
            // One call while the answer is fresh (1 s); a machine so loaded that the burst spreads over more
            // than a second may make one more per second, never one per request.
            let allowed = 1 + Int((ContinuousClock.now - start).components.seconds)
            #expect(harness.simulator.requests.filter { $0.path == "/api/ps" }.count <= allowed)
            #expect(harness.simulator.requests.filter { $0.path == "/api/version" }.count <= allowed)
        }
    }

    @Test func goneOllamaMakesReadyz503AtOnceWithTheReasonWhileHealthzStays200() async throws {
        try await ProxyHarness.with(upstreamURL: "http://127.0.0.1:\(unreachablePort)", ollamaStatusTimeout: .seconds(1)) { harness in
            let start = ContinuousClock.now
            let ready = try await httpRequest(harness.metricsAddress, .GET, "/readyz")
            #expect(ContinuousClock.now - start < .seconds(20), "never hangs (a refused connection does not even wait for the timeout; the bound is for a loaded machine)")
            #expect(ready.status == 503)
            #expect(ready.header("content-type") == "text/plain; charset=utf-8")
            #expect(ready.bodyString == "not ready: Ollama at http://127.0.0.1:\(unreachablePort) does not answer: cannot connect: connection refused\n")
            #expect(try await httpRequest(harness.metricsAddress, .HEAD, "/readyz").status == 503)
            #expect(try await httpRequest(harness.metricsAddress, .GET, "/healthz").status == 200)
        }
    }

    @Test func hungOllamaMakesReadyz503WithinAboutASecond() async throws {
        let (hung, port) = try await startHungListener()
        try await ProxyHarness.with(upstreamURL: "http://127.0.0.1:\(port)", ollamaStatusTimeout: .seconds(1)) { harness in
            let start = ContinuousClock.now
            let ready = try await httpRequest(harness.metricsAddress, .GET, "/readyz")
            let elapsed = ContinuousClock.now - start
            #expect(ready.status == 503)
            #expect(ready.bodyString == "not ready: Ollama at http://127.0.0.1:\(port) does not answer: no answer within 1 s\n")
            #expect(elapsed >= .milliseconds(900) && elapsed < .seconds(20), "\(elapsed) (the probe timed out rather than hang; the bound is for a loaded machine)")
        }
        try await hung.close()
    }

    @Test func livenessDoesNotWaitForAHungOllama() async throws {
        let (hung, port) = try await startHungListener()
        // With a minute's status timeout, a /healthz that asked Ollama would take a minute.
        try await ProxyHarness.with(upstreamURL: "http://127.0.0.1:\(port)", ollamaStatusTimeout: .seconds(60)) { harness in
            let start = ContinuousClock.now
            let health = try await httpRequest(harness.metricsAddress, .GET, "/healthz")
            #expect(health.status == 200)
            #expect(ContinuousClock.now - start < .seconds(20))
        }
        try await hung.close()
    }

    @Test func anErrorStatusFromOllamaIsTheReason() async throws {
        // The simulator serves no prefix: /ollama/api/ps is a 404.
        try await ProxyHarness.with(upstreamBasePath: "/ollama") { harness in
            let ready = try await httpRequest(harness.metricsAddress, .GET, "/readyz")
            #expect(ready.status == 503)
            #expect(ready.bodyString.hasSuffix("does not answer: GET /api/ps answered 404\n"), "\(ready.bodyString)")
        }
    }

    @Test func otherPathsAre404NamingWhatIsServed() async throws {
        try await ProxyHarness.with { harness in
            let response = try await httpRequest(harness.metricsAddress, .GET, "/health")
            #expect(response.status == 404)
            #expect(response.bodyString.contains("/metrics, /healthz, /readyz, / and /status.json"))
        }
        try await ProxyHarness.with(configure: { $0.statusPage = false }) { harness in
            let response = try await httpRequest(harness.metricsAddress, .GET, "/health")
            #expect(response.bodyString.contains("/metrics, /healthz and /readyz"), "without the status page")
        }
    }
}
