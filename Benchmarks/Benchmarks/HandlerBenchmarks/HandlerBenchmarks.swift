// What one proxied request costs in the connection handler and its state machines (issue 7): the client's
// request goes in at one `EmbeddedChannel`, comes out at another standing for the connection to Ollama, and
// Ollama's answer travels back. No sockets: what is counted is the proxy's own work per request (its response
// parser and encoder, state machines, head rewriting, inspection, metrics), in allocations and wall-clock time.
// Ollama's answer goes in as the bytes it sends, in reads as Ollama flushes them; the client's request as NIO's
// request decoder hands it over.
//
// The harness's own work (wrapping parts, reading them back out of the channels) is included and is the same
// for every version measured; compare figures between versions, not with zero.

import Benchmark
import NIOCore
import NIOEmbedded
import NIOHTTP1
@_spi(Benchmarking) import OllamaMetricsProxy

/// A client connection and the connection to Ollama it uses, both in memory.
final class HandlerPair {
    let loop = EmbeddedEventLoop()
    let client: EmbeddedChannel
    private(set) var upstream: EmbeddedChannel?

    init() throws {
        let loop = self.loop
        var upstreamChannel: EmbeddedChannel?
        let handler = BenchmarkingHooks.makeClientHandler(
            upstream: try UpstreamURL(parsing: "http://127.0.0.1:11434"), metrics: ProxyMetrics()
        ) {
            let channel = EmbeddedChannel(handler: BenchmarkingHooks.makeUpstreamHandler(), loop: loop)
            _ = channel.connect(to: try! SocketAddress(ipAddress: "127.0.0.1", port: 11434))
            upstreamChannel = channel
            return channel
        }
        self.client = EmbeddedChannel(handler: handler, loop: loop)
        try self.client.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 50000)).wait()
        self.upstreamRef = { upstreamChannel }
    }

    private var upstreamRef: () -> EmbeddedChannel? = { nil }

    /// One request through both handlers; returns the number of bytes the client received.
    @inline(never)
    func exchange(request: [HTTPServerRequestPart], response: [ByteBuffer]) throws -> Int {
        for part in request { try self.client.writeInbound(part) }
        let upstream = self.upstreamRef()!
        while try upstream.readOutbound(as: HTTPClientRequestPart.self) != nil {}
        for read in response {
            try upstream.writeInbound(read)
            upstream.pipeline.fireChannelReadComplete()
        }
        var received = 0
        while let bytes = try self.client.readOutbound(as: ByteBuffer.self) { received += bytes.readableBytes }
        return received
    }
}

enum Requests {
    static func head(_ method: HTTPMethod, _ uri: String, _ headers: [(String, String)]) -> HTTPRequestHead {
        HTTPRequestHead(version: .http1_1, method: method, uri: uri, headers: HTTPHeaders([("Host", "localhost:11435")] + headers))
    }

    static let tags: [HTTPServerRequestPart] = [.head(head(.GET, "/api/tags", [])), .end(nil)]
    /// A response head as Go's net/http writes it.
    static func responseHead(_ headers: [(String, String)]) -> String {
        "HTTP/1.1 200 OK\r\n" + headers.map { "\($0.0): \($0.1)\r\n" }.joined() + "Date: Sun, 01 Jun 2025 12:00:00 GMT\r\n\r\n"
    }

    static let tagsAnswer: [ByteBuffer] = [
        ByteBuffer(string: responseHead([("Content-Type", "application/json; charset=utf-8"), ("Content-Length", "13")]) + #"{"models":[]}"#)
    ]

    static let chatBody = #"{"model":"llama3.2","messages":[{"role":"user","content":"Why is the sky blue?"}],"stream":false}"#
    static let chat: [HTTPServerRequestPart] = [
        .head(head(.POST, "/api/chat", [("Content-Type", "application/json"), ("Content-Length", "\(chatBody.utf8.count)")])),
        .body(ByteBuffer(string: chatBody)), .end(nil),
    ]
    static let chatAnswerBody = #"{"model":"llama3.2","created_at":"2025-06-01T12:00:01Z","message":{"role":"assistant","content":"Rayleigh scattering."},"done":true,"done_reason":"stop","total_duration":5589157167,"load_duration":3013701500,"prompt_eval_count":26,"prompt_eval_duration":1139568000,"eval_count":8,"eval_duration":1435282000}"#
    static let chatAnswer: [ByteBuffer] = [
        ByteBuffer(string: responseHead([("Content-Type", "application/json; charset=utf-8"), ("Content-Length", "\(chatAnswerBody.utf8.count)")]) + chatAnswerBody)
    ]

    static let streamBody = #"{"model":"llama3.2","messages":[{"role":"user","content":"Why is the sky blue?"}]}"#
    static let stream: [HTTPServerRequestPart] = [
        .head(head(.POST, "/api/chat", [("Content-Type", "application/json"), ("Content-Length", "\(streamBody.utf8.count)")])),
        .body(ByteBuffer(string: streamBody)), .end(nil),
    ]
    /// Ten tokens and the final line, one chunk and one read each, as Ollama flushes them.
    static let streamAnswer: [ByteBuffer] = {
        func chunk(_ line: String) -> String { String(line.utf8.count, radix: 16) + "\r\n" + line + "\r\n" }
        var reads = [ByteBuffer(string: responseHead([("Content-Type", "application/x-ndjson"), ("Transfer-Encoding", "chunked")]))]
        for _ in 0..<10 {
            reads.append(ByteBuffer(string: chunk(#"{"model":"llama3.2","created_at":"2025-06-01T12:00:00.123456789Z","message":{"role":"assistant","content":" sky"},"done":false}"# + "\n")))
        }
        reads.append(ByteBuffer(string: chunk(chatAnswerBody + "\n") + "0\r\n\r\n"))
        return reads
    }()
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .mallocCountTotal, .throughput],
        timeUnits: .nanoseconds,
        warmupIterations: 10,
        scalingFactor: .one,
        maxDuration: .seconds(2),
        maxIterations: 20_000
    )

    for (name, request, response) in [
        ("GET /api/tags pass-through (per request)", Requests.tags, Requests.tagsAnswer),
        ("POST /api/chat, one JSON answer (per request)", Requests.chat, Requests.chatAnswer),
        ("POST /api/chat, 10-token stream (per request)", Requests.stream, Requests.streamAnswer),
    ] {
        Benchmark(name) { benchmark in
            let pair = try HandlerPair()
            blackHole(try pair.exchange(request: request, response: response))
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                blackHole(try pair.exchange(request: request, response: response))
            }
            benchmark.stopMeasurement()
        }
    }
}
