import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

/// Issue #17, "Trust at the edge": what a hostile client sends at the framing and routing of a request, against
/// the real binary and the simulator (which records every request it received).
@Suite struct EdgeTrustTests {
    typealias RunningProxy = CommandLineInterface.RunningProxy

    /// The binary in front of `ollamaURL`; `body` gets its proxy and metrics addresses.
    static func withBinary<T: Sendable>(
        ollamaURL: String, _ body: @Sendable (SocketAddress, SocketAddress) async throws -> T
    ) async throws -> T {
        let proxy = try RunningProxy(["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--ollama-url", ollamaURL])
        let proxyPort = try #require(await proxy.waitForPort(after: "listening on "), "\(proxy.log)")
        let metricsPort = try #require(await proxy.waitForPort(after: "metrics on "), "\(proxy.log)")
        do {
            let result = try await body(
                try SocketAddress(ipAddress: "127.0.0.1", port: proxyPort), try SocketAddress(ipAddress: "127.0.0.1", port: metricsPort)
            )
            #expect(await proxy.stop() == 0, "\(proxy.log)")
            return result
        } catch {
            _ = await proxy.stop()
            throw error
        }
    }

    static func scrape(_ metrics: SocketAddress) async throws -> MetricsScrape {
        MetricsScrape(text: try await httpRequest(metrics, .GET, "/metrics").bodyString)
    }

    /// A complete `POST /api/generate`, as a client would hide it inside another request's body.
    static func hiddenGenerate(port: Int) -> String {
        let body = #"{"model":"smuggled","prompt":"hi","stream":false}"#
        return "POST /api/generate HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nContent-Type: application/json\r\n"
            + "Content-Length: \(body.utf8.count)\r\n\r\n" + body
    }

    /// Requests that once put a second request on the upstream connection: its framing header named by
    /// `Connection`, or a chunked body spelt `Chunked` whose content is the end of a chunked body and then a request.
    static func smugglingRequests(port: Int) -> [(name: String, bytes: String, body: String)] {
        let hidden = Self.hiddenGenerate(port: port)
        let hex = String(hidden.utf8.count, radix: 16)
        let chunkedContent = "0\r\n\r\n" + hidden
        let chunkedHex = String(chunkedContent.utf8.count, radix: 16)
        return [
            (
                "Connection: Content-Length",
                "POST /api/show HTTP/1.1\r\nHost: proxy\r\nConnection: Content-Length\r\nContent-Length: \(hidden.utf8.count)\r\n\r\n" + hidden,
                hidden
            ),
            (
                "Connection: Transfer-Encoding",
                "POST /api/show HTTP/1.1\r\nHost: proxy\r\nConnection: keep-alive, Transfer-Encoding\r\nTransfer-Encoding: chunked\r\n\r\n"
                    + "\(hex)\r\n\(hidden)\r\n0\r\n\r\n",
                hidden
            ),
            (
                "Transfer-Encoding: Chunked",
                "POST /api/show HTTP/1.1\r\nHost: proxy\r\nTransfer-Encoding: Chunked\r\n\r\n\(chunkedHex)\r\n\(chunkedContent)\r\n0\r\n\r\n",
                chunkedContent
            ),
        ]
    }

    @Test func aBodyHoldingASecondRequestReachesOllamaAsOneRequestAlsoOnAReusedConnection() async throws {
        try await ProxyHarness.with { harness in
            try await Self.withBinary(ollamaURL: "http://127.0.0.1:\(harness.simulator.port)") { proxy, metrics in
                for (name, bytes, body) in Self.smugglingRequests(port: harness.simulator.port) {
                    harness.simulator.reset()
                    let connection = try await RawTCPConnection.connect(to: proxy)
                    // A first request puts a connection to Ollama in the pool; the next one reuses it.
                    try await connection.write("GET /api/tags HTTP/1.1\r\nHost: proxy\r\n\r\n")
                    try await connection.waitFor { $0.occurrences(of: "HTTP/1.1 200 OK") == 1 && $0.hasSuffix("}") }
                    try await connection.write(bytes)
                    try await connection.write("GET /api/version HTTP/1.1\r\nHost: proxy\r\n\r\n")
                    let text = try await connection.waitFor { $0.contains(#""version""#) }
                    #expect(text.occurrences(of: "HTTP/1.1 ") == 3, "\(name): one answer per request: \(text)")
                    await connection.close()

                    #expect(await harness.simulator.waitForRequests(3))
                    try await Task.sleep(for: .milliseconds(200))  // a request that should not be there would be by now
                    let requests = harness.simulator.requests
                    #expect(requests.map(\.uri) == ["/api/tags", "/api/show", "/api/version"], "\(name): \(requests.map(\.uri))")
                    #expect(requests.dropFirst().first?.bodyText == body, "\(name): the body went as the body")
                }
                let scrape = try await Self.scrape(metrics)
                #expect(scrape.value("ollama_requests_total", ["model": "smuggled", "endpoint": "/api/generate"]) == nil)
            }
        }
    }

    @Test func percentEncodedPathsAreMeteredAsOllamaRunsThemAndForwardedUnchanged() async throws {
        try await ProxyHarness.with { harness in
            try await Self.withBinary(ollamaURL: "http://127.0.0.1:\(harness.simulator.port)") { proxy, metrics in
                let body = #"{"model":"llama3.2","prompt":"hi","stream":false}"#
                for uri in ["/api/%67enerate", "/api%2Fgenerate?x=%zz"] {
                    let response = try await httpRequest(proxy, .POST, uri, body: body)
                    #expect(response.status == 200, "\(uri): Ollama runs it as /api/generate")
                    #expect(response.bodyString.contains(#""done":true"#))
                }
                #expect(
                    harness.simulator.requests.filter { $0.method == "POST" }.map(\.uri) == ["/api/%67enerate", "/api%2Fgenerate?x=%zz"],
                    "the target as the client sent it"
                )
                let scrape = try await Self.scrape(metrics)
                #expect(scrape.value("ollama_requests_total", ["model": "llama3.2", "endpoint": "/api/generate"]) == 2)

                // What Ollama does not run as inference is not metered: its 404 and its redirect.
                #expect(try await httpRequest(proxy, .POST, "//api/generate", body: body).status == 404)
                #expect(try await httpRequest(proxy, .POST, "/api/generate/", body: body).status == 307)
                // What Go refuses is refused by the proxy, with Go's status, before Ollama.
                let bad = try await httpRequest(proxy, .POST, "/api/%zzenerate", body: body)
                #expect(bad.status == 400)
                #expect(bad.header("connection") == "close")
                #expect(bad.bodyString == #"{"error":"invalid percent-escape in the request path"}"#)
                #expect(harness.simulator.requests.filter { $0.method == "POST" }.count == 4, "scrapes ask Ollama too: GETs")

                let after = try await Self.scrape(metrics)
                #expect(after.value("ollama_requests_total", ["model": "llama3.2", "endpoint": "/api/generate"]) == 2)
                #expect(after.value("ollama_metrics_proxy_refusals_total", ["reason": "invalid_request_target"]) == 1)
            }
        }
    }

    @Test(arguments: [
        ("GET /api/tags HTTP/1.1\r\nHost: proxy\r\nConnection: close\r\n\r\n", "HTTP/1.1 502 Bad Gateway"),
        ("GET /api/tags HTTP/1.0\r\nHost: proxy\r\n\r\n", "HTTP/1.0 502 Bad Gateway"),
        (
            "POST /v1/chat/completions HTTP/1.1\r\nHost: proxy\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}",
            "HTTP/1.1 502 Bad Gateway"
        ),
    ])
    func theProxysOwn502ClosesRightAfterItWhenTheClientAskedFor(request: String, statusLine: String) async throws {
        try await Self.withBinary(ollamaURL: "http://127.0.0.1:\(unreachablePort)") { proxy, _ in
            let connection = try await RawTCPConnection.connect(to: proxy)
            try await connection.write(request)
            // The idle timeout is 75 s: a close within this bound is the close after the response.
            let text = try await connection.waitFor(timeout: .seconds(20)) { _ in connection.isClosed }
            #expect(connection.isClosed, "still open after the 502: \(text)")
            #expect(text.hasPrefix(statusLine + "\r\n"), "\(text)")
            #expect(text.lowercased().contains("\r\nconnection: close\r\n"), "\(text)")
            #expect(text.contains("cannot reach Ollama"))
        }
    }

    @Test func theProxysOwn502KeepsAKeepAliveConnectionUsable() async throws {
        try await Self.withBinary(ollamaURL: "http://127.0.0.1:\(unreachablePort)") { proxy, _ in
            let connection = try await RawTCPConnection.connect(to: proxy)
            try await connection.write("GET /api/tags HTTP/1.0\r\nHost: proxy\r\nConnection: keep-alive\r\n\r\n")
            try await connection.waitFor { $0.occurrences(of: "cannot reach Ollama") == 1 }
            try await connection.write("GET /api/tags HTTP/1.1\r\nHost: proxy\r\n\r\n")
            let text = try await connection.waitFor { $0.occurrences(of: "cannot reach Ollama") == 2 }
            #expect(text.hasPrefix("HTTP/1.0 502 Bad Gateway\r\n"))
            #expect(text.contains("\r\nConnection: keep-alive\r\n"))
            #expect(text.occurrences(of: "HTTP/1.1 502 Bad Gateway\r\n") == 1)
            #expect(!connection.isClosed)
            await connection.close()
        }
    }
}

extension EdgeTrustTests {
    @Test func aMalformedChunkedBodyIsA400InTheEndpointsDialectAndCounted() async throws {
        try await ProxyHarness.with { harness in
            for (path, expected) in [
                ("/api/show", #"{"error":"malformed chunked request body"}"#),
                ("/v1/chat/completions", #"{"error":{"message":"malformed chunked request body","type":"api_error","param":null,"code":null}}"#),
            ] {
                let connection = try await RawTCPConnection.connect(to: harness.proxyAddress)
                try await connection.write("POST \(path) HTTP/1.1\r\nHost: proxy\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\nzz\r\n")
                let text = try await connection.waitFor(timeout: .seconds(20)) { _ in connection.isClosed }
                #expect(connection.isClosed)
                #expect(text.hasPrefix("HTTP/1.1 400 Bad Request\r\n"), "\(text)")
                #expect(text.contains("\r\nConnection: close\r\n"))
                #expect(text.hasSuffix("\r\n\r\n" + expected), "\(text)")
            }
            let scrape = try await harness.scrape()
            #expect(scrape.value("ollama_metrics_proxy_refusals_total", ["reason": "malformed_request_body"]) == 2)
            #expect(scrape.value("ollama_active_requests", ["model": "unknown", "endpoint": "/v1/chat/completions"]) ?? 0 == 0)
        }
    }

    @Test(arguments: [
        ("gzip, chunked", "HTTP/1.1 501 Not Implemented", "unsupported_transfer_coding"),
        ("chunked, gzip", "HTTP/1.1 400 Bad Request", nil),
        ("gzip", "HTTP/1.1 400 Bad Request", "invalid_transfer_encoding"),
    ] as [(String, String, String?)])
    func codingsThatAreNotChunkedAloneNeverReachOllama(codings: String, statusLine: String, reason: String?) async throws {
        try await ProxyHarness.with { harness in
            let connection = try await RawTCPConnection.connect(to: harness.proxyAddress)
            try await connection.write("POST /api/generate HTTP/1.1\r\nHost: proxy\r\nTransfer-Encoding: \(codings)\r\n\r\n2\r\n{}\r\n0\r\n\r\n")
            let text = try await connection.waitFor(timeout: .seconds(20)) { _ in connection.isClosed }
            #expect(connection.isClosed)
            #expect(text.hasPrefix(statusLine + "\r\n"), "\(text)")
            try await Task.sleep(for: .milliseconds(100))
            #expect(harness.simulator.requests.isEmpty)
            if let reason {
                #expect(try await harness.scrape().value("ollama_metrics_proxy_refusals_total", ["reason": reason]) == 1)
            }
        }
    }
}

extension EdgeTrustTests {
    /// The data of a chunked body that ends with its last chunk; nil when it is not one.
    static func dechunked(_ body: String) -> String? {
        var rest = Array(body.utf8)[...]
        var data: [UInt8] = []
        let crlf: [UInt8] = [13, 10]
        while let lineEnd = rest.firstRange(of: crlf) {
            guard let size = Int(String(decoding: rest[..<lineEnd.lowerBound], as: UTF8.self), radix: 16) else { return nil }
            rest = rest[lineEnd.upperBound...]
            if size == 0 { return rest.elementsEqual(crlf) ? String(decoding: data, as: UTF8.self) : nil }
            guard rest.count >= size + 2, rest.dropFirst(size).prefix(2).elementsEqual(crlf) else { return nil }
            data += rest.prefix(size)
            rest = rest.dropFirst(size + 2)
        }
        return nil
    }
}

/// A stand-in for Ollama that answers every request with the same bytes, and counts its connections.
final class FixedResponseServer: Sendable {
    let channel: Channel
    private let accepted: NIOLockedValueBox<Int>

    var port: Int { self.channel.localAddress!.port! }
    var connections: Int { self.accepted.withLockedValue { $0 } }

    init(response: String) async throws {
        let accepted = NIOLockedValueBox(0)
        self.accepted = accepted
        self.channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                accepted.withLockedValue { $0 += 1 }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(FixedResponder(response: response))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
    }

    func close() async { try? await self.channel.close() }

    private final class FixedResponder: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let response: String
        init(response: String) { self.response = response }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            // Requests here have no body: a head's end is a request.
            let text = String(buffer: self.unwrapInboundIn(data))
            for _ in 0..<text.occurrences(of: "\r\n\r\n") {
                context.writeAndFlush(NIOAny(ByteBuffer(string: self.response)), promise: nil)
            }
        }
    }
}

extension EdgeTrustTests {
    @Test func anAnswerWithBothContentLengthAndChunkedReachesTheClientChunkedOnlyAndItsConnectionIsNotReused() async throws {
        let ollama = try await FixedResponseServer(
            response: "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
                + "4\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\n\r\n"
        )
        try await ProxyHarness.with(upstreamURL: "http://127.0.0.1:\(ollama.port)") { harness in
            let connection = try await RawTCPConnection.connect(to: harness.proxyAddress)
            try await connection.write("GET /api/tags HTTP/1.1\r\nHost: proxy\r\n\r\nGET /api/tags HTTP/1.1\r\nHost: proxy\r\n\r\n")
            let text = try await connection.waitFor { $0.occurrences(of: "0\r\n\r\n") == 2 }
            let responses = text.components(separatedBy: "HTTP/1.1 200 OK\r\n").dropFirst()
            #expect(responses.count == 2, "\(text)")
            for response in responses {
                let parts = response.components(separatedBy: "\r\n\r\n")
                #expect(!parts[0].lowercased().contains("content-length"), "the length is dropped: \(response)")
                #expect(parts[0].contains("Transfer-Encoding: chunked"))
                #expect(Self.dechunked(parts.dropFirst().joined(separator: "\r\n\r\n")) == #"{"a":1}"#, "\(response.debugDescription)")
            }
            #expect(ollama.connections == 2, "a connection whose framing was suspect is not used again")
            await connection.close()
        }
        await ollama.close()
    }
}
