import NIOCore
import NIOHTTP1

/// Serves `GET /metrics` in the Prometheus text format 0.0.4 on the metrics listener; 404 elsewhere.
final class MetricsRequestHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    private let metrics: ProxyMetrics
    private var head: HTTPRequestHead?

    init(metrics: ProxyMetrics) {
        self.metrics = metrics
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
            self.respond(to: head, context: context)
        }
    }

    private func respond(to head: HTTPRequestHead, context: ChannelHandlerContext) {
        let path = UpstreamRequestHead.path(of: head.uri)
        let status: HTTPResponseStatus
        let contentType: String
        let body: ByteBuffer
        switch (path, head.method) {
        case ("/metrics", .GET), ("/metrics", .HEAD):
            status = .ok
            contentType = Self.contentType
            body = context.channel.allocator.buffer(bytes: self.metrics.exposition())
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
