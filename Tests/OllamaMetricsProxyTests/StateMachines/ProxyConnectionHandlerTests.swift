import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import OllamaMetricsProxy

/// The connection handler between two `EmbeddedChannel`s: the client's, and each connection to Ollama that
/// a stand-in pool hands out. What each side sees is read back as HTTP parts, without sockets.
@Suite struct ProxyConnectionHandlerTests {
    /// Hands out embedded connections and keeps the released ones, like the real pool.
    final class EmbeddedUpstreams: UpstreamConnectionSource {
        let loop: EmbeddedEventLoop
        private(set) var opened: [EmbeddedChannel] = []
        private(set) var idle: [UpstreamConnection] = []
        private(set) var released = 0

        init(loop: EmbeddedEventLoop) { self.loop = loop }

        func acquire(_ body: @escaping (Result<(connection: UpstreamConnection, reused: Bool), Error>) -> Void) {
            if let connection = self.idle.popLast() {
                body(.success((connection, true)))
                return
            }
            let handler = UpstreamConnectionHandler()
            let channel = EmbeddedChannel(handler: handler, loop: self.loop)
            _ = channel.connect(to: try! SocketAddress(ipAddress: "127.0.0.1", port: 11434))
            self.opened.append(channel)
            body(.success((UpstreamConnection(channel: channel, handler: handler), false)))
        }

        func release(_ connection: UpstreamConnection) {
            connection.delegate = nil
            self.released += 1
            self.idle.append(connection)
        }
    }

    /// Writes down every lifecycle event, in order.
    final class RecordingObserver: InferenceLifecycleObserver, InferenceLifecycleListener, @unchecked Sendable {
        private(set) var events: [String] = []

        func requestBegan(_ request: InferenceRequestStart) -> InferenceLifecycleListener {
            self.events.append("began \(request.endpoint.rawValue) \(request.model ?? "-") stream=\(request.isStreaming)")
            return self
        }
        func upstreamConnected(reused: Bool) { self.events.append("connected reused=\(reused)") }
        func responseHeadReceived(status: Int) { self.events.append("head \(status)") }
        func firstContentForwarded() { self.events.append("first content") }
        func usageSeen(_ usage: Usage) { self.events.append("usage \(usage.promptTokens ?? -1)+\(usage.completionTokens ?? -1)") }
        func ended(_ ending: InferenceEnding) {
            self.events.append("ended \(ending.outcome) \(ending.requestBodyBytes)/\(ending.responseBodyBytes)")
        }
    }

    final class Fixture {
        let loop = EmbeddedEventLoop()
        let upstreams: EmbeddedUpstreams
        let observer = RecordingObserver()
        let client: EmbeddedChannel
        private var clientReader = ClientWireReader()

        init() throws {
            self.upstreams = EmbeddedUpstreams(loop: self.loop)
            var logger = Logger(label: "test")
            logger.logLevel = .critical
            let shared = ProxySharedState(
                upstream: try UpstreamURL(parsing: "http://ollama.local:11434"), observer: self.observer, logger: logger,
                requestHeadTimeout: .seconds(75), maxInspectedRequestBody: 1024 * 1024
            )
            self.client = EmbeddedChannel(handler: ProxyConnectionHandler(shared: shared, upstream: self.upstreams), loop: self.loop)
            try self.client.connect(to: try SocketAddress(ipAddress: "192.0.2.7", port: 50000)).wait()
        }

        /// An embedded channel left open keeps its pipeline, handlers and the pool in a reference cycle for the
        /// rest of the process (LeakSanitizer reports it); closing each one breaks the cycle.
        deinit {
            _ = try? self.client.finish(acceptAlreadyClosed: true)
            for upstream in self.upstreams.opened { _ = try? upstream.finish(acceptAlreadyClosed: true) }
        }

        func send(_ method: HTTPMethod, _ uri: String, body: String? = nil, headers: [(String, String)] = []) throws {
            var head = HTTPRequestHead(version: .http1_1, method: method, uri: uri, headers: HTTPHeaders([("Host", "proxy")] + headers))
            if let body { head.headers.add(name: "Content-Length", value: "\(body.utf8.count)") }
            try self.client.writeInbound(HTTPServerRequestPart.head(head))
            if let body { try self.client.writeInbound(HTTPServerRequestPart.body(ByteBuffer(string: body))) }
            try self.client.writeInbound(HTTPServerRequestPart.end(nil))
            self.client.pipeline.fireChannelReadComplete()
        }

        /// Ollama answers: each part arrives as its bytes, in one read burst.
        func respond(on upstream: EmbeddedChannel, _ head: HTTPResponseHead, body: [String], end: Bool = true) throws {
            var wire = OllamaWireWriter()
            try upstream.writeInbound(wire.bytes(of: .head(head)))
            for part in body { try upstream.writeInbound(wire.bytes(of: .body(ByteBuffer(string: part)))) }
            if end { try upstream.writeInbound(wire.bytes(of: .end(nil))) }
            upstream.pipeline.fireChannelReadComplete()
        }

        func sentUpstream(_ upstream: EmbeddedChannel) throws -> [HTTPClientRequestPart] {
            var parts: [HTTPClientRequestPart] = []
            while let part = try upstream.readOutbound(as: HTTPClientRequestPart.self) { parts.append(part) }
            return parts
        }

        /// Every response part the client got so far, read back from the bytes the proxy wrote.
        func receivedByClient() throws -> [HTTPServerResponsePart] {
            while let bytes = try self.client.readOutbound(as: ByteBuffer.self) { self.clientReader.read(bytes) }
            #expect(self.clientReader.problems.isEmpty, "\(self.clientReader.problems)")
            return self.clientReader.parts
        }
    }

    static func bodyText(_ parts: [HTTPServerResponsePart]) -> String {
        parts.reduce(into: "") { text, part in
            if case .body(.byteBuffer(let buffer)) = part { text += String(buffer: buffer) }
        }
    }

    @Test func passThroughRequestGoesUpstreamRewrittenAndItsResponseComesBack() throws {
        let fixture = try Fixture()
        try fixture.send(.GET, "/api/tags")
        let upstream = try #require(fixture.upstreams.opened.first)
        let sent = try fixture.sentUpstream(upstream)
        guard case .head(let head) = sent.first else {
            Issue.record("expected the request head first, got \(sent)")
            return
        }
        #expect(head.headers["host"] == ["ollama.local:11434"])
        #expect(head.headers["x-forwarded-for"] == ["192.0.2.7"])
        try fixture.respond(
            on: upstream, HTTPResponseHead(version: .http1_1, status: .ok, headers: ["Content-Length": "13"]), body: [#"{"models":"#, "[]}"]
        )
        let received = try fixture.receivedByClient()
        guard case .head(let responseHead) = received.first, case .end = received.last else {
            Issue.record("expected a head, the body and an end, got \(received)")
            return
        }
        #expect(responseHead.headers["content-length"] == ["13"])
        #expect(Self.bodyText(received) == #"{"models":[]}"#)
        #expect(fixture.upstreams.released == 1, "the connection goes back to the pool")
        #expect(fixture.observer.events.isEmpty, "pass-through requests have no inference lifecycle")
    }

    @Test func anInferenceRequestReportsItsWholeLifecycleToTheObserver() throws {
        let fixture = try Fixture()
        let body = #"{"model":"llama3.2","messages":[],"stream":true}"#
        try fixture.send(.POST, "/api/chat", body: body)
        let upstream = try #require(fixture.upstreams.opened.first)
        _ = try fixture.sentUpstream(upstream)
        let lines = [
            #"{"model":"llama3.2","message":{"role":"assistant","content":"Hi"},"done":false}"# + "\n",
            #"{"model":"llama3.2","message":{"role":"assistant","content":""},"done":true,"prompt_eval_count":26,"eval_count":2,"eval_duration":1000}"# + "\n",
        ]
        try fixture.respond(
            on: upstream,
            HTTPResponseHead(version: .http1_1, status: .ok, headers: ["Content-Type": "application/x-ndjson", "Transfer-Encoding": "chunked"]),
            body: lines
        )
        #expect(Self.bodyText(try fixture.receivedByClient()) == lines.joined())
        let bytesOut = lines.joined().utf8.count
        #expect(
            fixture.observer.events == [
                "began /api/chat llama3.2 stream=true", "connected reused=false", "head 200", "first content", "usage 26+2",
                "ended completed \(body.utf8.count)/\(bytesOut)",
            ]
        )
    }

    @Test func aClientHangingUpMidStreamClosesTheConnectionToOllama() throws {
        let fixture = try Fixture()
        try fixture.send(.POST, "/api/generate", body: #"{"model":"m","prompt":"p"}"#)
        let upstream = try #require(fixture.upstreams.opened.first)
        try fixture.respond(
            on: upstream, HTTPResponseHead(version: .http1_1, status: .ok, headers: ["Content-Type": "application/x-ndjson"]),
            body: [#"{"model":"m","response":"a","done":false}"# + "\n"], end: false
        )
        #expect(upstream.isActive)
        _ = try fixture.client.close().wait()
        #expect(!upstream.isActive, "closing the connection is how Ollama learns to stop generating")
        #expect(fixture.observer.events.last?.hasPrefix("ended failed(OllamaMetricsProxy.FailureReason.clientDisconnected)") == true)
        #expect(fixture.upstreams.released == 0)
    }

    @Test func aPipelinedRequestWaitsUntilTheResponseBeforeItEnded() throws {
        let fixture = try Fixture()
        try fixture.send(.GET, "/api/tags")
        try fixture.send(.GET, "/api/ps")
        let upstream = try #require(fixture.upstreams.opened.first)
        let first = try fixture.sentUpstream(upstream)
        #expect(first.count == 2, "only the first request went out: \(first)")
        #expect(fixture.upstreams.opened.count == 1)
        try fixture.respond(on: upstream, HTTPResponseHead(version: .http1_1, status: .ok, headers: ["Content-Length": "0"]), body: [])
        let second = try fixture.sentUpstream(upstream)
        guard case .head(let head) = second.first else {
            Issue.record("the second request should follow on the reused connection, got \(second)")
            return
        }
        #expect(head.uri == "/api/ps")
    }

    @Test func ollamaClosingMidResponseCutsTheClientShort() throws {
        let fixture = try Fixture()
        try fixture.send(.GET, "/api/pull")
        let upstream = try #require(fixture.upstreams.opened.first)
        try fixture.respond(
            on: upstream, HTTPResponseHead(version: .http1_1, status: .ok, headers: ["Transfer-Encoding": "chunked"]),
            body: [#"{"status":"pulling"}"# + "\n"], end: false
        )
        _ = try upstream.close().wait()
        let received = try fixture.receivedByClient()
        #expect(Self.bodyText(received) == #"{"status":"pulling"}"# + "\n")
        #expect(!received.contains { if case .end = $0 { true } else { false } }, "no end: the client sees the cut")
        #expect(!fixture.client.isActive)
    }
}
