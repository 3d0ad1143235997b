import NIOCore
import NIOHTTP1

/// Serves `GET /metrics` in the Prometheus text format 0.0.4 on the metrics listener; 404 elsewhere.
///
/// A scrape asks Ollama for its status first (`OllamaStatusProbe`: cached, and never longer than its
/// timeout), so answers may be late: requests pipelined meanwhile wait their turn, answered in order.
final class MetricsRequestHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    private let metrics: ProxyMetrics
    private let ollama: OllamaStatusProbe?
    private var head: HTTPRequestHead?
    /// Requests read whole and not answered yet, oldest first; the first is being answered.
    private var waiting: [HTTPRequestHead] = []

    init(metrics: ProxyMetrics, ollama: OllamaStatusProbe?) {
        self.metrics = metrics
        self.ollama = ollama
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
        case .body:
            break
        case .end:
            guard let head = self.head else { return }
            self.head = nil
            self.waiting.append(head)
            if self.waiting.count == 1 { self.answerNext(context: context) }
        }
    }

    /// Answers the oldest waiting request, then the next one.
    private func answerNext(context: ChannelHandlerContext) {
        guard let head = self.waiting.first else { return }
        let isScrape = UpstreamRequestHead.path(of: head.uri) == "/metrics" && (head.method == .GET || head.method == .HEAD)
        guard isScrape, let ollama = self.ollama else {
            self.respond(to: head, ollama: .down, context: context)
            return
        }
        ollama.status().hop(to: context.eventLoop).assumeIsolated().whenSuccess { status in
            guard context.channel.isActive else { return }
            self.respond(to: head, ollama: status, context: context)
        }
    }

    private func respond(to head: HTTPRequestHead, ollama: OllamaStatus, context: ChannelHandlerContext) {
        self.waiting.removeFirst()
        defer { self.answerNext(context: context) }
        let path = UpstreamRequestHead.path(of: head.uri)
        let status: HTTPResponseStatus
        let contentType: String
        let body: ByteBuffer
        switch (path, head.method) {
        case ("/metrics", .GET), ("/metrics", .HEAD):
            status = .ok
            contentType = Self.contentType
            var exposition = self.metrics.exposition()
            if self.ollama != nil { exposition += ScrapeTimeMetrics.render(ollama) }
            body = context.channel.allocator.buffer(bytes: exposition)
        case ("/metrics", _):
            status = .methodNotAllowed
            contentType = "text/plain; charset=utf-8"
            body = context.channel.allocator.buffer(string: "405 method not allowed\n")
        default:
            status = .notFound
            contentType = "text/plain; charset=utf-8"
            body = context.channel.allocator.buffer(string: "404 page not found: metrics are served at /metrics\n")
        }
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: contentType)
        headers.add(name: "Content-Length", value: String(body.readableBytes))
        if status == .methodNotAllowed { headers.add(name: "Allow", value: "GET, HEAD") }
        context.write(self.wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
        if head.method != .HEAD {
            context.write(self.wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        }
        if head.isKeepAlive {
            context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: nil)
        } else {
            context.writeAndFlush(self.wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
        }
    }
}
