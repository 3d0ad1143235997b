import NIOCore
import NIOHTTP1
import Testing

/// The client sees what Ollama sent: status, headers, bytes, framing and timing.
@Suite struct Transparency {
    /// Headers that legitimately differ between two answers: the time they were made.
    static func comparableHeaders(_ response: ReceivedResponse) -> [String] {
        response.head.headers.filter { $0.name.lowercased() != "date" }.map { "\($0.name): \($0.value)" }
    }

    @Test(arguments: [
        (HTTPMethod.GET, "/api/tags", nil as String?),
        (.GET, "/api/ps", nil),
        (.GET, "/api/version", nil),
        (.GET, "/", nil),
        (.HEAD, "/", nil),
        (.GET, "/v1/models", nil),
        (.POST, "/api/show", #"{"model":"llama3.2"}"#),
        (.POST, "/api/show", #"{"model":"missing-x"}"#),
        (.GET, "/no/such/route", nil),
        (.GET, "/api/generate", nil),
        (.GET, "/metrics", nil),
        (.POST, "/api/pull", #"{"model":"llama3.2","stream":false}"#),
    ])
    func passThroughIsIdenticalToOllamaDirect(method: HTTPMethod, uri: String, body: String?) async throws {
        try await ProxyHarness.with { harness in
            let viaProxy = try await harness.viaProxy(method, uri, body: body)
            let direct = try await harness.direct(method, uri, body: body)
            #expect(viaProxy.head.status == direct.head.status)
            #expect(Self.comparableHeaders(viaProxy) == Self.comparableHeaders(direct))
            #expect(viaProxy.body == direct.body)
            #expect(try await harness.scrape().requestSamples.isEmpty, "pass-through requests are not measured")
        }
    }

    @Test func streamedInferenceBodiesAreIdenticalToOllamaDirect() async throws {
        try await ProxyHarness.with { harness in
            for (uri, body) in [
                ("/api/generate", #"{"model":"m","prompt":"hi"}"#),
                ("/api/chat", #"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#),
                ("/api/chat", #"{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":false}"#),
            ] {
                let viaProxy = try await harness.viaProxy(.POST, uri, headers: [("X-Sim-Tokens", "12")], body: body)
                let direct = try await harness.direct(.POST, uri, headers: [("X-Sim-Tokens", "12")], body: body)
                #expect(viaProxy.head.status == direct.head.status)
                // `created_at` has a varying number of digits, so the lengths of two answers may differ.
                let withoutLength = { (response: ReceivedResponse) in
                    Self.comparableHeaders(response).filter { !$0.lowercased().hasPrefix("content-length") }
                }
                #expect(withoutLength(viaProxy) == withoutLength(direct))
                #expect(stripCreatedAt(viaProxy.bodyString) == stripCreatedAt(direct.bodyString))
            }
        }
    }

    @Test func upstreamSeesOllamasHostTheQueryStringAndForwardingHeaders() async throws {
        try await ProxyHarness.with { harness in
            _ = try await harness.viaProxy(.GET, "/api/tags?verbose=true&x=%2F", headers: [("X-Custom", "kept")])
            let seen = try #require(harness.simulator.requests.last)
            #expect(seen.uri == "/api/tags?verbose=true&x=%2F")
            #expect(seen.headers.first(name: "host") == "127.0.0.1:\(harness.simulator.port)")
            #expect(seen.headers.first(name: "x-forwarded-for") == "127.0.0.1")
            #expect(seen.headers.first(name: "x-forwarded-proto") == "http")
            #expect(seen.headers.first(name: "x-custom") == "kept")
        }
    }

    @Test func basePathOfTheOllamaURLIsKept() async throws {
        // The simulator does not serve under a prefix, so Ollama's 404 shows the path it was asked for.
        try await ProxyHarness.with(upstreamBasePath: "/ollama") { harness in
            _ = try await harness.viaProxy(.GET, "/api/tags?x=1")
            #expect(try #require(harness.simulator.requests.last).uri == "/ollama/api/tags?x=1")
        }
    }

    @Test func responsesArriveIncrementallyWhileOllamaIsStillGenerating() async throws {
        try await ProxyHarness.with { harness in
            let connection = try await TestHTTPConnection.connect(to: harness.proxyAddress)
            try await connection.send(
                // 20 s of tokens: still generating when the scrape below is answered, even under a sanitizer on a
                // loaded machine (3 s were not); the client hangs up after ten pieces.
                .POST, "/api/generate", headers: [("X-Sim-Tokens", "200"), ("X-Sim-Token-Delay-Ms", "100")],
                body: ByteBuffer(string: #"{"model":"m","prompt":"hi"}"#)
            )
            guard case .head(let head) = await connection.nextPart() else { Issue.record("no head"); return }
            #expect(head.status == .ok)
            guard case .body(let first) = await connection.nextPart() else { Issue.record("no body"); return }
            #expect(String(buffer: first).contains(#""done":false"#))
            // The first token reached the client while the simulator still had 199 to go.
            #expect(harness.simulator.activeResponses == 1)
            #expect(try await harness.scrape().value("ollama_active_requests", ["model": "m", "endpoint": "/api/generate"]) == 1)
            var pieces = 1
            var ended = false
            while pieces < 10, let part = await connection.nextPart() {
                if case .body = part { pieces += 1 }
                if case .end = part {
                    ended = true
                    break
                }
            }
            // Tokens are 100 ms apart: even a client slowed down by a loaded machine sees many pieces before the end.
            #expect(pieces >= 10 && !ended, "one piece per token, not one buffered answer")
            await connection.close()
        }
    }

    @Test func pullProgressStreamsLineByLine() async throws {
        try await ProxyHarness.with { harness in
            let viaProxy = try await harness.viaProxy(.POST, "/api/pull", body: #"{"model":"llama3.2"}"#)
            let direct = try await harness.direct(.POST, "/api/pull", body: #"{"model":"llama3.2"}"#)
            #expect(viaProxy.body == direct.body)
            #expect(viaProxy.bodyString.hasSuffix(#"{"status":"success"}"# + "\n"))
            #expect(viaProxy.pieces.count > 3)
        }
    }

    @Test func keepAliveCarriesManyRequestsOnOneConnection() async throws {
        try await ProxyHarness.with { harness in
            let connection = try await TestHTTPConnection.connect(to: harness.proxyAddress)
            for index in 0..<5 {
                let response = try await connection.request(
                    .POST, "/api/chat", body: #"{"model":"m","messages":[{"role":"user","content":"\#(index)"}]}"#
                )
                #expect(response.status == 200)
                let tags = try await connection.request(.GET, "/api/tags")
                #expect(tags.status == 200)
            }
            await connection.close()
            let metrics = try await harness.scrape()
            #expect(metrics.value("ollama_requests_total", ["model": "m", "endpoint": "/api/chat"]) == 5)
        }
    }

    @Test func unusedConnectionsToOllamaAreClosedAfterTheIdleTimeout() async throws {
        // Long enough for the check right after the requests to hold on a loaded machine and under
        // ThreadSanitizer (2 s was exceeded there).
        try await ProxyHarness.with(upstreamIdleTimeout: .seconds(10)) { harness in
            let responses = try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<4 {
                    group.addTask { try await harness.viaProxy(.GET, "/api/tags").status }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(responses == [200, 200, 200, 200])
            #expect(await harness.proxy.idleUpstreamConnectionCount() >= 1, "kept for the next request")
            let deadline = ContinuousClock.now + .seconds(40)
            while await harness.proxy.idleUpstreamConnectionCount() > 0, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(await harness.proxy.idleUpstreamConnectionCount() == 0)
            // The next request opens a fresh connection as if nothing happened.
            #expect(try await harness.viaProxy(.GET, "/api/tags").status == 200)
        }
    }

    @Test func pipelinedRequestsAreAnsweredInOrder() async throws {
        try await ProxyHarness.with { harness in
            let raw = try await RawTCPConnection.connect(to: harness.proxyAddress)
            let body = #"{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":false}"#
            try await raw.write(
                "GET /api/version HTTP/1.1\r\nHost: x\r\n\r\n"
                    + "POST /api/chat HTTP/1.1\r\nHost: x\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
                    + "GET /api/tags HTTP/1.1\r\nHost: x\r\n\r\n"
            )
            let text = try await raw.waitFor { $0.occurrences(of: "HTTP/1.1 200 OK") == 3 && $0.contains(#""models""#) }
            let version = try #require(text.firstRange(of: #""version""#))
            let chat = try #require(text.firstRange(of: #""done":true"#))
            let tags = try #require(text.firstRange(of: #""models""#))
            #expect(version.lowerBound < chat.lowerBound && chat.lowerBound < tags.lowerBound)
            await raw.close()
        }
    }

    @Test func requestPipelinedDuringAStreamWaitsForItsEnd() async throws {
        try await ProxyHarness.with { harness in
            let raw = try await RawTCPConnection.connect(to: harness.proxyAddress)
            let body = #"{"model":"m","prompt":"hi"}"#
            try await raw.write(
                "POST /api/generate HTTP/1.1\r\nHost: x\r\nX-Sim-Tokens: 8\r\nX-Sim-Token-Delay-Ms: 50\r\n"
                    + "Content-Length: \(body.utf8.count)\r\n\r\n\(body)"
            )
            _ = try await raw.waitFor { $0.contains(#""done":false"#) }
            // The stream is running: the next request arrives now and must not overtake it.
            try await raw.write("GET /api/tags HTTP/1.1\r\nHost: x\r\n\r\n")
            let text = try await raw.waitFor { $0.contains(#""models""#) }
            let done = try #require(text.firstRange(of: #""done":true"#))
            let tags = try #require(text.firstRange(of: #""models""#))
            #expect(done.lowerBound < tags.lowerBound)
            #expect(text.occurrences(of: "HTTP/1.1 200 OK") == 2)
            #expect(harness.simulator.requests.map(\.path) == ["/api/generate", "/api/tags"])
            #expect(!raw.isClosed, "the connection stays open for more requests")
            let metrics = try await harness.scrape()
            #expect(metrics.value("ollama_requests_total", ["model": "m", "endpoint": "/api/generate"]) == 1)
            await raw.close()
        }
    }

    @Test func bytesThatAreNotHTTPGet400AfterTheRequestsBeforeThem() async throws {
        try await ProxyHarness.with { harness in
            // On a fresh connection: 400 at once, and the connection closes.
            let fresh = try await RawTCPConnection.connect(to: harness.proxyAddress)
            try await fresh.write("HELLO THERE\r\n\r\n")
            let refused = try await fresh.waitFor { _ in fresh.isClosed }
            #expect(refused.hasPrefix("HTTP/1.1 400 Bad Request\r\n"), "\(refused)")
            #expect(fresh.isClosed)

            // Behind a valid request: that one is answered first, then the 400, then the close.
            let raw = try await RawTCPConnection.connect(to: harness.proxyAddress)
            try await raw.write("GET /api/version HTTP/1.1\r\nHost: x\r\n\r\nHELLO THERE\r\n\r\n")
            let text = try await raw.waitFor { _ in raw.isClosed }
            #expect(text.hasPrefix("HTTP/1.1 200 OK\r\n"), "\(text)")
            let ok = try #require(text.firstRange(of: #""version""#))
            let badRequest = try #require(text.firstRange(of: "HTTP/1.1 400 Bad Request"))
            #expect(ok.lowerBound < badRequest.lowerBound)
            #expect(harness.simulator.requests.map(\.path) == ["/api/version"])

            // Inside the body of a request queued behind another: the first is answered, then the connection
            // closes rather than leave the broken request waiting for the rest of its body.
            let queued = try await RawTCPConnection.connect(to: harness.proxyAddress)
            try await queued.write(
                "GET /api/version HTTP/1.1\r\nHost: x\r\n\r\n"
                    + "POST /api/blobs/sha256:0123 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                    + "5\r\nhello\r\nZZ\r\n"
            )
            let cut = try await queued.waitFor { _ in queued.isClosed }
            #expect(cut.hasPrefix("HTTP/1.1 200 OK\r\n"), "\(cut)")
            #expect(queued.isClosed)
            #expect(try await harness.viaProxy(.GET, "/api/version").status == 200)
        }
    }

    @Test func expectContinueIsAnsweredSoTheClientSendsItsBody() async throws {
        try await ProxyHarness.with { harness in
            let raw = try await RawTCPConnection.connect(to: harness.proxyAddress)
            let body = #"{"model":"m","prompt":"hi","stream":false}"#
            try await raw.write(
                "POST /api/generate HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: \(body.utf8.count)\r\n\r\n"
            )
            let interim = try await raw.waitFor { $0.contains("100 Continue") }
            #expect(interim.hasPrefix("HTTP/1.1 100 Continue\r\n"))
            try await raw.write(body)
            let text = try await raw.waitFor { $0.contains(#""done":true"#) }
            #expect(text.contains("HTTP/1.1 200 OK"))
            await raw.close()
        }
    }

    @Test func fiveMegabyteBodiesPassBothWays() async throws {
        try await ProxyHarness.with { harness in
            let content = String(repeating: "x", count: 5 * 1024 * 1024)
            let body = #"{"model":"m","messages":[{"role":"user","content":"\#(content)"}],"stream":false}"#
            let response = try await harness.viaProxy(.POST, "/api/chat", body: body)
            #expect(response.status == 200)
            #expect(try #require(harness.simulator.requests.last).bodyByteCount == body.utf8.count)

            let big = try await harness.viaProxy(
                .POST, "/api/generate", headers: [("X-Sim-Tokens", "80"), ("X-Sim-Token-Bytes", "65536")],
                body: #"{"model":"m","prompt":"hi"}"#
            )
            #expect(big.body.readableBytes > 5 * 1024 * 1024)
            let direct = try await harness.direct(
                .POST, "/api/generate", headers: [("X-Sim-Tokens", "80"), ("X-Sim-Token-Bytes", "65536")],
                body: #"{"model":"m","prompt":"hi"}"#
            )
            #expect(stripCreatedAt(big.bodyString) == stripCreatedAt(direct.bodyString))
            let metrics = try await harness.scrape()
            #expect(metrics.value("ollama_completion_tokens_total", ["model": "m"]) == 83)
        }
    }

    @Test func http10ClientsGetACloseDelimitedBody() async throws {
        try await ProxyHarness.with { harness in
            let raw = try await RawTCPConnection.connect(to: harness.proxyAddress)
            let body = #"{"model":"m","prompt":"hi"}"#
            try await raw.write("POST /api/generate HTTP/1.0\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
            let text = try await raw.waitFor { _ in raw.isClosed }
            #expect(raw.isClosed, "the end of the body is the end of the connection")
            #expect(text.hasPrefix("HTTP/1.0 200 OK\r\n"))
            #expect(!text.lowercased().contains("transfer-encoding"))
            #expect(text.hasSuffix("\n") && text.contains(#""done":true"#))
            let metrics = try await harness.scrape()
            #expect(metrics.value("ollama_requests_total", ["model": "m", "endpoint": "/api/generate"]) == 1)
        }
    }

    @Test func connectionCloseFromTheClientIsHonoured() async throws {
        try await ProxyHarness.with { harness in
            let raw = try await RawTCPConnection.connect(to: harness.proxyAddress)
            // A request pipelined behind `Connection: close` is not forwarded (and does not upset the proxy).
            try await raw.write(
                "GET /api/tags HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET /api/ps HTTP/1.1\r\nHost: x\r\n\r\n"
            )
            let text = try await raw.waitFor { _ in raw.isClosed }
            #expect(raw.isClosed)
            #expect(text.hasPrefix("HTTP/1.1 200 OK\r\n"))
            // NIO's parser refuses bytes after a `Connection: close` request (400); Ollama never sees them.
            #expect(harness.simulator.requests.map(\.path) == ["/api/tags"], "\(text)")
            #expect(try await harness.viaProxy(.GET, "/api/version").status == 200)
        }
    }

    @Test func chunkedRequestBodiesAreForwarded() async throws {
        try await ProxyHarness.with { harness in
            let raw = try await RawTCPConnection.connect(to: harness.proxyAddress)
            let part1 = #"{"model":"m","messages":[{"role":"user","#
            let part2 = #""content":"hi"}],"stream":false}"#
            let hex = { (text: String) in String(text.utf8.count, radix: 16) }
            try await raw.write(
                "POST /api/chat HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                    + "\(hex(part1))\r\n\(part1)\r\n\(hex(part2))\r\n\(part2)\r\n0\r\n\r\n"
                    + "POST /api/blobs/sha256:0123 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                    + "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
            )
            let text = try await raw.waitFor { $0.contains("HTTP/1.1 201") }
            #expect(text.hasPrefix("HTTP/1.1 200 OK"))
            let chat = try #require(harness.simulator.requests.first { $0.path == "/api/chat" })
            #expect(chat.bodyText == part1 + part2)
            let blob = try #require(harness.simulator.requests.first { $0.path.hasPrefix("/api/blobs") })
            #expect(blob.bodyByteCount == 11)
            let metrics = try await harness.scrape()
            #expect(metrics.value("ollama_requests_total", ["model": "m", "endpoint": "/api/chat"]) == 1)
            await raw.close()
        }
    }

    @Test func inferenceBodiesTooLargeToInspectStreamThroughUntouched() async throws {
        try await ProxyHarness.with { harness in
            let content = String(repeating: "y", count: 33 * 1024 * 1024)
            let body = #"{"model":"m","messages":[{"role":"user","content":"\#(content)"}],"stream":false}"#
            let response = try await harness.viaProxy(.POST, "/api/chat", body: body)
            #expect(response.status == 200)
            #expect(try #require(harness.simulator.requests.last).bodyByteCount == body.utf8.count)
            let metrics = try await harness.scrape()
            // The model name was not read from the request, so the request is labelled `unknown`.
            #expect(metrics.value("ollama_requests_total", ["model": "unknown", "endpoint": "/api/chat"]) == 1)
            #expect(metrics.value("ollama_completion_tokens_total", ["model": "unknown"]) == 3)
        }
    }

    @Test func largeUploadStreamsWithoutDeadlock() async throws {
        try await ProxyHarness.with { harness in
            let connection = try await TestHTTPConnection.connect(to: harness.proxyAddress)
            let size = 50 * 1024 * 1024
            let head = HTTPRequestHead(
                version: .http1_1, method: .POST, uri: "/api/blobs/sha256:abc",
                headers: HTTPHeaders([("Host", "x"), ("Content-Length", "\(size)")])
            )
            connection.channel.write(HTTPClientRequestPart.head(head), promise: nil)
            let chunk = ByteBuffer(repeating: 0x61, count: 1024 * 1024)
            for _ in 0..<50 {
                try await connection.channel.writeAndFlush(HTTPClientRequestPart.body(.byteBuffer(chunk))).get()
            }
            try await connection.channel.writeAndFlush(HTTPClientRequestPart.end(nil)).get()
            let response = try await connection.readResponse()
            #expect(response.status == 201)
            #expect(try #require(harness.simulator.requests.last).bodyByteCount == size)
            await connection.close()
        }
    }
}
