import NIOCore
import NIOHTTP1
import Testing

/// Requests that do not complete are counted by reason, with the same model/endpoint labels, so
/// completed + failed = every request and a dashboard can plot an error rate.
@Suite struct Outcomes {
    static let chat = #"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#

    func failures(_ metrics: MetricsScrape, model: String = "m", endpoint: String, reason: String) -> Double? {
        metrics.value("ollama_request_failures_total", ["model": model, "endpoint": endpoint, "reason": reason])
    }

    @Test func upstreamStatusClassesAreFailures() async throws {
        try await ProxyHarness.with { harness in
            // Ollama accepted the name once: its failures keep its label (a name it never accepted is
            // `__rejected__`, as ModelLabels tests).
            #expect(try await harness.viaProxy(.POST, "/api/chat", body: Self.chat).status == 200)
            for status in ["500", "503", "400", "499"] {
                let response = try await harness.viaProxy(.POST, "/api/chat", headers: [("X-Sim-Status", status)], body: Self.chat)
                #expect(response.status == Int(status))
            }
            let metrics = try await harness.scrape()
            #expect(self.failures(metrics, endpoint: "/api/chat", reason: "http_5xx") == 2)
            #expect(self.failures(metrics, endpoint: "/api/chat", reason: "http_4xx") == 2)
            #expect(metrics.value("ollama_requests_total", ["model": "m", "endpoint": "/api/chat"]) == 1)
            #expect(metrics.value("ollama_request_duration_seconds_count", ["model": "m", "endpoint": "/api/chat"]) == 5)
        }
    }

    @Test func errorsInsideA200StreamAreFailuresInEveryDialect() async throws {
        try await ProxyHarness.with { harness in
            // Native streams say so with an `{"error":…}` line; Ollama's compatibility streams just end without
            // their usage (it has no mid-stream error event there), which is `no_usage`.
            let requests: [(String, String, String)] = [
                ("/api/generate", #"{"model":"m","prompt":"hi"}"#, "stream_error"),
                ("/v1/chat/completions", #"{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}"#, "no_usage"),
                ("/v1/completions", #"{"model":"m","stream":true,"prompt":"hi"}"#, "no_usage"),
                ("/v1/messages", #"{"model":"m","stream":true,"max_tokens":9,"messages":[{"role":"user","content":"hi"}]}"#, "no_usage"),
                ("/v1/responses", #"{"model":"m","stream":true,"input":"hi"}"#, "no_usage"),
            ]
            for (uri, body, _) in requests {
                let response = try await harness.viaProxy(
                    .POST, uri, headers: [("X-Sim-Tokens", "5"), ("X-Sim-Error-After", "2")], body: body
                )
                #expect(response.status == 200)
            }
            let metrics = try await harness.scrape()
            for (uri, _, reason) in requests {
                #expect(self.failures(metrics, endpoint: uri, reason: reason) == 1, "\(uri)")
                #expect((metrics.value("ollama_requests_total", ["model": "m", "endpoint": uri]) ?? 0) == 0, "\(uri)")
            }
        }
    }

    @Test func lostConnectionsAndHangUpsAreFailuresWithTheirOwnReasons() async throws {
        try await ProxyHarness.with { harness in
            // Ollama dies mid-stream.
            _ = try? await harness.viaProxy(
                .POST, "/api/chat", headers: [("X-Sim-Tokens", "9"), ("X-Sim-Drop-After", "2")], body: Self.chat
            )
            // The client hangs up mid-stream.
            let connection = try await TestHTTPConnection.connect(to: harness.proxyAddress)
            try await connection.send(
                .POST, "/api/chat", headers: [("X-Sim-Tokens", "500"), ("X-Sim-Token-Delay-Ms", "20")],
                body: ByteBuffer(string: Self.chat)
            )
            _ = await connection.nextPart()
            _ = await connection.nextPart()
            await connection.close()

            let metrics = try await harness.scrape {
                self.failures($0, endpoint: "/api/chat", reason: "client_disconnected") == 1
            }
            #expect(self.failures(metrics, endpoint: "/api/chat", reason: "upstream_disconnected") == 1)
            #expect(self.failures(metrics, endpoint: "/api/chat", reason: "client_disconnected") == 1)
            #expect(metrics.value("ollama_active_requests", ["model": "m", "endpoint": "/api/chat"]) == 0)
        }
    }

    @Test func unreachableOllamaIsAFailure() async throws {
        let port = unreachablePort
        try await ProxyHarness.with(upstreamURL: "http://127.0.0.1:\(port)") { harness in
            _ = try await harness.viaProxy(.POST, "/api/chat", body: Self.chat)
            let metrics = try await harness.scrape()
            // Ollama never accepted the name: it is no label.
            #expect(self.failures(metrics, model: "__unconfirmed__", endpoint: "/api/chat", reason: "upstream_unreachable") == 1)
        }
    }

    @Test func floodOfDistinctModelNamesKeepsTheSeriesBounded() async throws {
        try await ProxyHarness.with(maxModelLabels: 20) { harness in
            // 10,000 names Ollama rejects, then 200 it serves, eight clients at a time.
            for (names, status) in [((0..<10_000).map { "missing-\($0)" }, 404), ((0..<200).map { "served-\($0)" }, 200)] {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for worker in 0..<8 {
                        group.addTask {
                            let connection = try await TestHTTPConnection.connect(to: harness.proxyAddress)
                            for model in names[worker...].striding(by: 8) {
                                let response = try await connection.request(
                                    .POST, "/api/generate", body: #"{"model":"\#(model)","prompt":"hi","stream":false}"#
                                )
                                #expect(response.status == status)
                            }
                            await connection.close()
                        }
                    }
                    try await group.waitForAll()
                }
            }
            let metrics = try await harness.scrape()
            // The models Ollama reports loaded (`/api/ps`) are Ollama's names, not the clients'.
            let models = Set(metrics.requestSamples.compactMap { $0.labels["model"] })
            #expect(models.count == 20 + 3, "20 names plus __overflow__, __rejected__ and __unconfirmed__ (in flight before each answer): \(models.sorted())")
            #expect(!models.contains { $0.hasPrefix("missing-") }, "rejected names leave no series")
            #expect(models.contains("__overflow__"))
            #expect(metrics.value("ollama_request_failures_total", ["model": "__rejected__", "endpoint": "/api/generate", "reason": "http_4xx"]) == 10_000)
            let completed = metrics.samples(named: "ollama_requests_total").reduce(0) { $0 + $1.value }
            #expect(completed == 200)
            #expect(metrics.value("ollama_model_label_overflows_total") == 180)
        }
    }
}

extension ArraySlice {
    func striding(by step: Int) -> [Element] {
        stride(from: self.startIndex, to: self.endIndex, by: step).map { self[$0] }
    }
}
