import Testing

@testable import OllamaSimulator

/// What the simulator records: requests as received, outcomes, client disconnects, counters, reset.
@Suite struct RecordingTests {
    @Test func requestsAreRecordedAsReceived() async throws {
        try await withSimulator { ollama in
            let body = #"{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":false}"#
            _ = try await ollama.exchange(
                "POST",
                "/api/chat?trace=1&x=%20y",
                body: body,
                headers: [("X-Forwarded-For", "192.0.2.7"), ("x-custom-Case", "Kept")],
                host: "ollama.internal:11434"
            )
            #expect(await ollama.waitForIdle())
            let recorded = try #require(ollama.requests.first)
            #expect(recorded.sequenceNumber == 1)
            #expect(recorded.method == "POST")
            #expect(recorded.uri == "/api/chat?trace=1&x=%20y")
            #expect(recorded.path == "/api/chat")
            #expect(recorded.query == "trace=1&x=%20y")
            #expect(recorded.version == "HTTP/1.1")
            #expect(recorded.header("host") == "ollama.internal:11434")
            #expect(recorded.header("X-Forwarded-For") == "192.0.2.7")
            #expect(recorded.headers.map(\.name).contains("x-custom-Case"))
            #expect(recorded.bodyText == body)
            #expect(recorded.bodyByteCount == body.utf8.count)
            #expect(recorded.outcome == .completed)
        }
    }

    @Test func largeRequestBodiesAreReadAndRecordedWhole() async throws {
        try await withSimulator { ollama in
            let content = String(repeating: "y", count: 20 * 1024 * 1024)
            let body = #"{"model":"m","messages":[{"role":"user","content":"\#(content)"}],"stream":false}"#
            let response = try await ollama.post("/api/chat", body)
            #expect(response.status == 200)
            #expect(ollama.requests.last?.bodyByteCount == body.utf8.count)
            #expect(ollama.requests.last?.body.count == body.utf8.count)
        }
    }

    @Test func clientDisconnectMidStreamIsCountedAsCancellation() async throws {
        try await withSimulator { ollama in
            let connection = try await RawConnection.connect(port: ollama.port)
            try await connection.send(
                httpRequest(
                    "POST", "/api/chat", port: ollama.port,
                    body: #"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#,
                    headers: [("X-Sim-Tokens", "1000"), ("X-Sim-Token-Delay-Ms", "20")]
                )
            )
            _ = try await connection.readUntil(#""done":false}"#, timeout: .seconds(10))
            #expect(ollama.activeResponses == 1)
            await connection.close()

            #expect(await ollama.waitForCancellations(1, timeout: .seconds(10)))
            #expect(ollama.activeResponses == 0)
            #expect(ollama.requests.first?.outcome == .cancelled)
        }
    }

    @Test func clientDisconnectWhileHeldBeforeHeadersIsCounted() async throws {
        try await withSimulator { ollama in
            let connection = try await RawConnection.connect(port: ollama.port)
            try await connection.send(
                httpRequest(
                    "POST", "/v1/messages", port: ollama.port,
                    body: #"{"model":"m","max_tokens":9,"messages":[{"role":"user","content":"x"}],"stream":true}"#,
                    headers: [("X-Sim-Gate", "never")]
                )
            )
            #expect(await ollama.waitForHeld(atGate: "never"))
            await connection.close()
            #expect(await ollama.waitForCancellations(1))
            #expect(ollama.snapshot.heldAtGate["never"] == nil)
        }
    }

    @Test func clientDisconnectDuringTheUploadIsCounted() async throws {
        try await withSimulator { ollama in
            let connection = try await RawConnection.connect(port: ollama.port)
            try await connection.send(
                "POST /api/blobs/sha256:abc HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000\r\n\r\nonly a part"
            )
            try await Task.sleep(for: .milliseconds(20))
            await connection.close()
            #expect(await ollama.waitForCancellations(1))
            #expect(ollama.requests.first?.bodyByteCount == 11)
            #expect(ollama.requests.first?.outcome == .cancelled)
        }
    }

    @Test func shutdownEndsHeldResponsesWithoutCountingCancellations() async throws {
        let ollama = try await OllamaSimulator.start(options: .fixture)
        let connection = try await RawConnection.connect(port: ollama.port)
        try await connection.send(
            httpRequest("POST", "/api/generate", port: ollama.port, body: #"{"model":"m","prompt":"p"}"#, headers: [("X-Sim-Gate", "g")])
        )
        #expect(await ollama.waitForHeld(atGate: "g"))
        try await ollama.shutdown()
        #expect(await connection.waitForClose())
        #expect(ollama.cancellationCount == 0)
        #expect(ollama.requests.first?.outcome == .dropped)
        #expect(ollama.activeResponses == 0)
        await connection.close()
    }

    @Test func completedResponsesAreNotCancellations() async throws {
        try await withSimulator { ollama in
            for _ in 0..<3 {
                _ = try await ollama.post("/api/generate", #"{"model":"m","prompt":"p"}"#)
            }
            #expect(await ollama.waitForIdle())
            #expect(ollama.requestCount == 3)
            #expect(ollama.cancellationCount == 0)
            #expect(ollama.requests.map(\.outcome) == [.completed, .completed, .completed])
        }
    }

    @Test func resetForgetsRequestsButKeepsNumbering() async throws {
        try await withSimulator { ollama in
            _ = try await ollama.exchange("GET", "/api/version")
            ollama.reset()
            #expect(ollama.requests.isEmpty)
            #expect(ollama.requestCount == 0)
            _ = try await ollama.exchange("GET", "/api/version")
            #expect(ollama.requests.map(\.sequenceNumber) == [2])
        }
    }

    @Test func benchmarkOptionsKeepCountersButNoRecords() async throws {
        var options = SimulatorOptions.benchmark
        options.clock = .fixtureInstant
        try await withSimulator(defaults: .benchmark, options: options) { ollama in
            _ = try await ollama.post("/api/pull", #"{"model":"llama3.2"}"#)
            #expect(ollama.requestCount == 1)
            #expect(ollama.requests.isEmpty)
        }
    }

    @Test func waitingTimesOutWhenNothingHappens() async throws {
        try await withSimulator { ollama in
            #expect(await ollama.waitForCancellations(1, timeout: .milliseconds(50)) == false)
            #expect(await ollama.waitForRequests(0, timeout: .milliseconds(50)))
        }
    }

    @Test func concurrentClientsAreAllServed() async throws {
        try await withSimulator { ollama in
            try await withThrowingTaskGroup(of: Int.self) { group in
                for index in 0..<20 {
                    group.addTask {
                        let response = try await ollama.post(
                            "/api/chat",
                            #"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#,
                            headers: [("X-Sim-Tokens", String(index % 4 + 1))]
                        )
                        return response.chunks?.count ?? 0
                    }
                }
                var total = 0
                for try await chunks in group { total += chunks }
                #expect(total == (0..<20).reduce(0) { $0 + $1 % 4 + 2 })
            }
            #expect(await ollama.waitForIdle())
            #expect(ollama.requestCount == 20)
        }
    }
}
