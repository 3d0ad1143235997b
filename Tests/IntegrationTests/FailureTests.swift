import NIOCore
import NIOHTTP1
import NIOPosix
import Testing

/// Disconnects, dead upstreams, silences and load: nothing breaks and nothing is lost or leaked.
@Suite struct Failures {
    @Test func clientHangingUpStopsTheGenerationUpstreamAndReleasesTheGauge() async throws {
        try await ProxyHarness.with { harness in
            let connection = try await TestHTTPConnection.connect(to: harness.proxyAddress)
            try await connection.send(
                .POST, "/api/chat", headers: [("X-Sim-Tokens", "1000"), ("X-Sim-Token-Delay-Ms", "50")],
                body: ByteBuffer(string: #"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#)
            )
            _ = await connection.nextPart()  // head
            _ = await connection.nextPart()  // first token
            await connection.close()

            #expect(await harness.simulator.waitForCancellations(1, timeout: .seconds(5)))
            let series = ["model": "m", "endpoint": "/api/chat"]
            let metrics = try await harness.scrape { $0.value("ollama_active_requests", series) == 0 }
            #expect(metrics.value("ollama_active_requests", series) == 0)
            #expect((metrics.value("ollama_requests_total", series) ?? 0) == 0)
            #expect(metrics.value("ollama_request_duration_seconds_count", series) == 1)
        }
    }

    @Test func clientHangingUpBeforeOllamaAnswersIsPropagatedToo() async throws {
        try await ProxyHarness.with { harness in
            let connection = try await TestHTTPConnection.connect(to: harness.proxyAddress)
            try await connection.send(
                .POST, "/api/generate", headers: [("X-Sim-Header-Delay-Ms", "30000")],
                body: ByteBuffer(string: #"{"model":"m","prompt":"hi"}"#)
            )
            // Wait until Ollama has the request, then give up on it as a user pressing Ctrl-C would.
            let deadline = ContinuousClock.now + .seconds(5)
            while harness.simulator.requests.isEmpty, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(10))
            }
            await connection.close()
            #expect(await harness.simulator.waitForCancellations(1, timeout: .seconds(5)))
            // In flight under `__unconfirmed__`: Ollama had not answered for the name.
            let series = ["model": "__unconfirmed__", "endpoint": "/api/generate"]
            let metrics = try await harness.scrape { $0.value("ollama_active_requests", series) == 0 }
            #expect(metrics.value("ollama_active_requests", series) == 0)
        }
    }

    @Test func ollamaStallingAfterItsHeadStillGetsTheHeadToTheClient() async throws {
        try await ProxyHarness.with { harness in
            let connection = try await RawTCPConnection.connect(to: harness.proxyAddress)
            let body = #"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#
            try await connection.write(
                "POST /api/chat HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                    + "X-Sim-Stall-After-Head-Ms: 600000\r\nContent-Length: \(body.utf8.count)\r\n\r\n" + body
            )
            // Ollama sent its head and then nothing: the client has the head all the same.
            let head = try await connection.waitFor(timeout: .seconds(20)) { $0.contains("\r\n\r\n") }
            #expect(head.hasPrefix("HTTP/1.1 200 OK\r\n"))
            #expect(head.hasSuffix("\r\n\r\n"))

            // A client giving up during the stall has left: Ollama hears of it, the request ends.
            await connection.close()
            #expect(await harness.simulator.waitForCancellations(1, timeout: .seconds(20)))
            let series = ["model": "m", "endpoint": "/api/chat"]
            let metrics = try await harness.scrape(until: { $0.value("ollama_active_requests", series) == 0 }, timeout: .seconds(20))
            #expect(metrics.value("ollama_active_requests", series) == 0)
            #expect(metrics.value("ollama_request_failures_total", series.merging(["reason": "client_disconnected"]) { $1 }) == 1)
        }
    }

    @Test func unreachableOllamaGives502InTheCallersDialect() async throws {
        // A port that was just free: nothing listens there.
        let port = unreachablePort
        try await ProxyHarness.with(upstreamURL: "http://127.0.0.1:\(port)") { harness in
            let native = try await harness.viaProxy(.POST, "/api/chat", body: #"{"model":"m","messages":[]}"#)
            #expect(native.status == 502)
            #expect(native.header("content-type") == "application/json; charset=utf-8")
            #expect(native.bodyString == #"{"error":"cannot reach Ollama at http://127.0.0.1:\#(port): connection refused"}"#)

            let openAI = try await harness.viaProxy(.POST, "/v1/chat/completions", body: #"{"model":"m","messages":[]}"#)
            #expect(openAI.status == 502)
            #expect(openAI.bodyString.hasPrefix(#"{"error":{"message":"cannot reach Ollama"#))

            let anthropic = try await harness.viaProxy(.POST, "/v1/messages", body: #"{"model":"m","max_tokens":1,"messages":[]}"#)
            #expect(anthropic.status == 502)
            #expect(anthropic.bodyString.hasPrefix(#"{"type":"error","error":{"type":"api_error","message":"cannot reach Ollama"#))

            let passThrough = try await harness.viaProxy(.GET, "/api/tags")
            #expect(passThrough.status == 502)

            let metrics = try await harness.scrape()
            #expect(metrics.value("ollama_active_requests", ["model": "__unconfirmed__", "endpoint": "/api/chat"]) == 0)
            #expect(!metrics.samples.contains { $0.labels["model"] == "m" }, "Ollama never accepted the name")
        }
    }

    @Test func ollamaDyingMidStreamCutsTheClientAndReleasesTheGauge() async throws {
        try await ProxyHarness.with { harness in
            let connection = try await TestHTTPConnection.connect(to: harness.proxyAddress)
            try await connection.send(
                .POST, "/api/chat", headers: [("X-Sim-Tokens", "10"), ("X-Sim-Drop-After", "3")],
                body: ByteBuffer(string: #"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#)
            )
            do {
                _ = try await connection.readResponse()
                Issue.record("a truncated stream must not look complete to the client")
            } catch TestClientError.truncated(let partial) {
                #expect(partial.bodyString.contains(#""done":false"#))
            }
            let series = ["model": "m", "endpoint": "/api/chat"]
            let metrics = try await harness.scrape { $0.value("ollama_active_requests", series) == 0 }
            #expect(metrics.value("ollama_active_requests", series) == 0)
            #expect((metrics.value("ollama_requests_total", series) ?? 0) == 0)
        }
    }

    @Test func longSilenceBeforeTheFirstTokenIsNotATimeout() async throws {
        // Even with a head timeout far shorter than Ollama's silence: it guards request heads only.
        // On a loaded machine the test client itself may be too slow to get its request head out within
        // the timeout; then the proxy rightly closes the idle connection, the request never reaches
        // Ollama, and that attempt proves nothing about silences, so it is made again.
        try await ProxyHarness.with(requestHeadTimeout: .seconds(2)) { harness in
            for attempt in 1...3 {
                let sent = harness.simulator.requests.count
                do {
                    let response = try await harness.viaProxy(
                        .POST, "/api/generate", headers: [("X-Sim-Header-Delay-Ms", "5000")],
                        body: #"{"model":"slow-load","prompt":"hi"}"#
                    )
                    #expect(response.status == 200)
                    #expect(response.bodyString.contains(#""done":true"#))
                    break
                } catch where harness.simulator.requests.count == sent && attempt < 3 {
                    continue
                }
            }
            let metrics = try await harness.scrape()
            #expect(metrics.value("ollama_requests_total", ["model": "slow-load", "endpoint": "/api/generate"]) == 1)
        }
    }

    @Test func shutdownLetsInFlightStreamsFinishAndRefusesNewConnections() async throws {
        try await ProxyHarness.with { harness in
            let connection = try await TestHTTPConnection.connect(to: harness.proxyAddress)
            try await connection.send(
                .POST, "/api/chat", headers: [("X-Sim-Tokens", "20"), ("X-Sim-Token-Delay-Ms", "50")],
                body: ByteBuffer(string: #"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#)
            )
            guard case .head = await connection.nextPart() else { Issue.record("no head"); return }
            let proxyAddress = harness.proxyAddress
            let shutdown = Task { await harness.proxy.shutdown(drainTimeout: .seconds(20)) }
            var text = ""
            var ended = false
            while let part = await connection.nextPart() {
                if case .body(let buffer) = part { text += String(buffer: buffer) }
                if case .end = part { ended = true; break }
            }
            #expect(ended, "the in-flight stream finishes during the drain")
            #expect(text.contains(#""done":true"#))
            await shutdown.value
            await #expect(throws: (any Error).self) {
                _ = try await httpRequest(proxyAddress, .GET, "/api/tags")
            }
        }
    }

    @Test func aResponseStartedDuringShutdownTellsTheClientTheConnectionCloses() async throws {
        try await ProxyHarness.with { harness in
            let connection = try await TestHTTPConnection.connect(to: harness.proxyAddress)
            try await connection.send(
                .POST, "/api/generate", headers: [("X-Sim-Gate", "shutdown-head")],
                body: ByteBuffer(string: #"{"model":"m","prompt":"hi"}"#)
            )
            #expect(await harness.simulator.waitForHeld(atGate: "shutdown-head"))
            let idle = try await RawTCPConnection.connect(to: harness.proxyAddress)
            let shutdown = Task { await harness.proxy.shutdown(drainTimeout: .seconds(20)) }
            // Shutdown closes idle connections at once and asks busy ones to close after their response; once
            // the idle one is gone, the request is told too (a little later, if on another event loop).
            _ = try await idle.waitFor { _ in idle.isClosed }
            try await Task.sleep(for: .milliseconds(100))
            harness.simulator.openGate("shutdown-head")
            guard case .head(let head) = await connection.nextPart() else { Issue.record("no head"); return }
            #expect(head.status == .ok)
            #expect(head.headers.first(name: "connection")?.lowercased() == "close")
            var text = ""
            while let part = await connection.nextPart() {
                if case .body(let buffer) = part { text += String(buffer: buffer) }
                if case .end = part { break }
            }
            #expect(text.contains(#""done":true"#))
            await shutdown.value
        }
    }

    @Test func aClientThatNeverFinishesItsRequestHeadIsDisconnected() async throws {
        try await ProxyHarness.with(requestHeadTimeout: .milliseconds(500)) { harness in
            let raw = try await RawTCPConnection.connect(to: harness.proxyAddress)
            // On a loaded machine the timeout may already have closed the connection: that is the point too.
            try? await raw.write("POST /api/chat HTTP/1.1\r\nHost: x\r\nContent-Le")
            _ = try await raw.waitFor(timeout: .seconds(10)) { _ in raw.isClosed }
            #expect(raw.isClosed)
            #expect(harness.simulator.requests.isEmpty)
        }
    }

    @Test func fiftyConcurrentStreamsAreCountedExactly() async throws {
        try await ProxyHarness.with { harness in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<50 {
                    group.addTask {
                        let (uri, body): (String, String) = switch index % 3 {
                        case 0: ("/api/chat", #"{"model":"a","messages":[{"role":"user","content":"hi"}]}"#)
                        case 1: ("/v1/chat/completions", #"{"model":"b","stream":true,"messages":[{"role":"user","content":"hi"}]}"#)
                        default: ("/v1/messages", #"{"model":"c","stream":true,"max_tokens":9,"messages":[{"role":"user","content":"hi"}]}"#)
                        }
                        let response = try await harness.viaProxy(
                            .POST, uri, headers: [("X-Sim-Tokens", "\(1 + index % 7)"), ("X-Sim-Token-Delay-Ms", "5")],
                            body: body
                        )
                        #expect(response.status == 200)
                    }
                }
                try await group.waitForAll()
            }
            var expectedTokens: [String: Double] = ["a": 0, "b": 0, "c": 0]
            var expectedRequests: [String: Double] = ["a": 0, "b": 0, "c": 0]
            for index in 0..<50 {
                let model = ["a", "b", "c"][index % 3]
                expectedTokens[model]! += Double(1 + index % 7)
                expectedRequests[model]! += 1
            }
            let metrics = try await harness.scrape()
            for (model, endpoint) in [("a", "/api/chat"), ("b", "/v1/chat/completions"), ("c", "/v1/messages")] {
                #expect(metrics.value("ollama_requests_total", ["model": model, "endpoint": endpoint]) == expectedRequests[model])
                #expect(metrics.value("ollama_completion_tokens_total", ["model": model]) == expectedTokens[model])
                #expect(metrics.value("ollama_prompt_tokens_total", ["model": model]) == 7 * expectedRequests[model]!)
                #expect(metrics.value("ollama_active_requests", ["model": model, "endpoint": endpoint]) == 0)
            }
        }
    }
}

/// A loopback port nothing listens on: port 1 (TCP port service multiplexer) is never served on a test
/// machine, and unlike a port freed a moment ago, the kernel cannot hand it to another test's listener.
let unreachablePort = 1
