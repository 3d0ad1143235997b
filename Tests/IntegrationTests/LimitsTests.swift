import NIOCore
import NIOHTTP1
import OllamaMetricsProxy
import Testing

/// Requests and connections over the proxy's limits get a clear answer (431, 503), are counted, and never
/// reach Ollama; the connections after them are served as usual.
@Suite struct LimitsTests {
    static func refusals(_ scrape: MetricsScrape, _ reason: String) -> Double? {
        scrape.value("ollama_metrics_proxy_refusals_total", ["reason": reason])
    }

    @Test func aRequestHeadOverTheLimitIsAnswered431InTheDialectOfItsEndpointAndNotForwarded() async throws {
        try await ProxyHarness.with(configure: { $0.maxRequestHeadSize = 2048 }) { harness in
            let before = harness.simulator.requestCount
            let big = String(repeating: "a", count: 3000)
            let response = try await harness.viaProxy(
                .POST, "/v1/chat/completions", headers: [("X-Big", big), ("Content-Type", "application/json")],
                body: #"{"model":"llama3.2","messages":[]}"#
            )
            #expect(response.head.status == .requestHeaderFieldsTooLarge)
            #expect(response.header("Connection") == "close")
            #expect(response.bodyString.contains(#"{"error":{"message":"request head larger than 2048 bytes"#))
            #expect(harness.simulator.requestCount == before, "nothing reached Ollama")

            // Just under the limit still passes.
            let fits = try await harness.viaProxy(.GET, "/api/tags", headers: [("X-Big", String(repeating: "a", count: 1500))])
            #expect(fits.head.status == .ok)

            let scrape = try await harness.scrape()
            #expect(Self.refusals(scrape, "request_head_too_large") == 1)
            #expect(Self.refusals(scrape, "too_many_headers") == 0)
            #expect(scrape.value("ollama_requests_total", ["model": "llama3.2", "endpoint": "/v1/chat/completions", "status": "431"]) == nil)
        }
    }

    @Test func tooManyHeaderFieldsAre431() async throws {
        try await ProxyHarness.with(configure: { $0.maxRequestHeaders = 10 }) { harness in
            let headers = (0..<11).map { ("X-Field-\($0)", "v") }
            let response = try await harness.viaProxy(.GET, "/api/tags", headers: headers)
            #expect(response.head.status == .requestHeaderFieldsTooLarge)
            #expect(response.bodyString.contains("more than 10 header fields"))
            let scrape = try await harness.scrape()
            #expect(Self.refusals(scrape, "too_many_headers") == 1)
        }
    }

    @Test func aHeadOverNIOsOwnCeilingIsAlso431() async throws {
        try await ProxyHarness.with { harness in
            let connection = try await RawTCPConnection.connect(to: harness.proxyAddress)
            defer { Task { await connection.close() } }
            // 200 KiB of header, more than NIO's 80 KiB ceiling; the proxy answers before reading it all.
            let line = "X-Flood: " + String(repeating: "b", count: 1000) + "\r\n"
            try await connection.write("GET /api/tags HTTP/1.1\r\nHost: x\r\n" + String(repeating: line, count: 200) + "\r\n")
            let text = try await connection.waitFor { $0.contains("\r\n\r\n") }
            #expect(text.hasPrefix("HTTP/1.1 431 Request Header Fields Too Large\r\n"), "\(text.prefix(200))")
            let scrape = try await harness.scrape()
            #expect(Self.refusals(scrape, "request_head_too_large") == 1)
        }
    }

    @Test func aRefusedPipelinedHeadIsAnsweredAfterTheResponsesBeforeIt() async throws {
        try await ProxyHarness.with(configure: { $0.maxRequestHeaders = 5 }) { harness in
            let connection = try await RawTCPConnection.connect(to: harness.proxyAddress)
            defer { Task { await connection.close() } }
            let good = "GET /api/version HTTP/1.1\r\nHost: x\r\n\r\n"
            let bad = "GET /api/tags HTTP/1.1\r\nHost: x\r\n" + (0..<6).map { "X-\($0): v\r\n" }.joined() + "\r\n"
            try await connection.write(good + bad + good)
            let text = try await connection.waitFor { $0.contains(" 431 ") && $0.contains("\r\n\r\n{") }
            // The 200's body ends right before the next status line: no CRLF between them.
            #expect(text.occurrences(of: "HTTP/1.1 ") == 2, "\(text)")
            let ok = try #require(text.range(of: "HTTP/1.1 200 OK\r\n"))
            let refused = try #require(text.range(of: "HTTP/1.1 431 Request Header Fields Too Large\r\n"))
            #expect(ok.lowerBound < refused.lowerBound)
            _ = try await connection.waitFor(timeout: .seconds(20)) { _ in connection.isClosed }
            #expect(connection.isClosed, "nothing after the refused request is answered")
        }
    }

    @Test func connectionsBeyondTheLimitGet503WithRetryAfterAndTheNextOneAfterAClosedOneIsServed() async throws {
        try await ProxyHarness.with(configure: { $0.maxConnections = 2 }) { harness in
            let first = try await TestHTTPConnection.connect(to: harness.proxyAddress)
            let second = try await TestHTTPConnection.connect(to: harness.proxyAddress)
            // Both are admitted (they answer), so both count as open.
            do {
                #expect(try await first.request(.GET, "/api/version").head.status == .ok)
            } catch { Issue.record("first: \(error)") }
            do {
                #expect(try await second.request(.GET, "/api/version").head.status == .ok)
            } catch { Issue.record("second: \(error)") }

            let third = try await RawTCPConnection.connect(to: harness.proxyAddress)
            try await third.write("GET /api/version HTTP/1.1\r\nHost: x\r\n\r\n")
            let text = try await third.waitFor(timeout: .seconds(20)) { _ in third.isClosed }
            #expect(text.hasPrefix("HTTP/1.1 503 Service Unavailable\r\n"), "\(text)")
            #expect(text.contains("Retry-After: 1\r\n"))
            #expect(text.contains("Connection: close\r\n"))
            #expect(text.contains(#"{"error":"too many connections: 2 are open (ollama-metrics-proxy --max-connections)"}"#))
            #expect(third.isClosed, "closed, not left hanging")

            // One that sends nothing is answered too, after a moment, and closed.
            let silent = try await RawTCPConnection.connect(to: harness.proxyAddress)
            let silentText = try await silent.waitFor(timeout: .seconds(20)) { _ in silent.isClosed }
            #expect(silentText.hasPrefix("HTTP/1.1 503 Service Unavailable\r\n"), "\(silentText)")

            var scrape = try await harness.scrape()
            #expect(Self.refusals(scrape, "too_many_connections") == 2)
            #expect(scrape.value("ollama_metrics_proxy_client_connections") == 2)

            await first.close()
            scrape = try await harness.scrape(until: { $0.value("ollama_metrics_proxy_client_connections") == 1 }, timeout: .seconds(20))
            #expect(scrape.value("ollama_metrics_proxy_client_connections") == 1)
            let fourth = try await harness.viaProxy(.GET, "/api/version")
            #expect(fourth.head.status == .ok)
            await second.close()
        }
    }
}
