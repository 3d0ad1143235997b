import NIOCore
import NIOHTTP1

/// Serves the metrics listener: `GET /metrics` in the Prometheus text format 0.0.4, `GET /healthz` (the
/// process serves: always 200) and `GET /readyz` (200 when Ollama answers, else 503 with the reason in one
/// line); with a `StatusRecorder`, the status page `GET /` and its JSON `GET /status.json`; `HEAD` on each;
/// 404 elsewhere. With a `MetricsToken`, `/metrics` answers 401 unless the request carries it as
/// `Authorization: Bearer <token>`, and the status page asks for it as `StatusPageAccess` says; the health
/// endpoints stay open, for probes.
///
/// A scrape, `/readyz` and `/status.json` ask Ollama for its status first (`OllamaStatusProbe`: cached, and never longer
/// than its timeout), so answers may be late: requests pipelined meanwhile wait their turn, answered in order.
final class MetricsRequestHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    static let contentType = "text/plain; version=0.0.4; charset=utf-8"
    static let statusPageRefusal =
        "401 unauthorized: the status page needs the metrics token (--metrics-token-file): open /?token=<token> once in the browser (it sets a cookie), or send Authorization: Bearer <token>\n"

    private let metrics: ProxyMetrics
    private let ollama: OllamaStatusProbe?
    private let token: MetricsToken?
    /// nil: the status page is off, and its paths are 404.
    private let statusPage: StatusRecorder?
    private let statusAccess: StatusPageAccess
    private var head: HTTPRequestHead?
    /// Requests read whole and not answered yet, oldest first; the first is being answered.
    private var waiting: [HTTPRequestHead] = []

    init(metrics: ProxyMetrics, ollama: OllamaStatusProbe?, token: MetricsToken? = nil, statusPage: StatusRecorder? = nil) {
        self.metrics = metrics
        self.ollama = ollama
        self.token = token
        self.statusPage = statusPage
        self.statusAccess = StatusPageAccess(token: token)
    }

    /// Whether `head` may see what it asks for: `/metrics` with the bearer token, `/status.json` as
    /// `StatusPageAccess` says; the rest is open (the page itself answers a refusal of its own).
    private func isAuthorized(_ head: HTTPRequestHead, path: Substring) -> Bool {
        switch path {
        case "/metrics": self.token.map { $0.authorizes(head.headers.first(name: "authorization")) } ?? true
        case "/status.json": self.statusAccess.decide(uri: head.uri, headers: head.headers, acceptsQueryToken: false) == .allowed
        default: true
        }
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
        let path = UpstreamRequestHead.path(of: head.uri)
        let asksOllama = (path == "/metrics" || path == "/readyz" || (path == "/status.json" && self.statusPage != nil))
            && (head.method == .GET || head.method == .HEAD) && self.isAuthorized(head, path: path)
        guard asksOllama, let ollama = self.ollama else {
            self.respond(to: head, ollama: nil, context: context)
            return
        }
        ollama.status().hop(to: context.eventLoop).assumeIsolated().whenSuccess { status in
            guard context.channel.isActive else { return }
            self.respond(to: head, ollama: status, context: context)
        }
    }

    /// - Parameter ollama: Ollama's status, when this request needed it and there is a probe.
    private func respond(to head: HTTPRequestHead, ollama: OllamaStatus?, context: ChannelHandlerContext) {
        self.waiting.removeFirst()
        defer { self.answerNext(context: context) }
        let path = UpstreamRequestHead.path(of: head.uri)
        var status = HTTPResponseStatus.ok
        var contentType = "text/plain; charset=utf-8"
        let body: ByteBuffer
        var extraHeaders: [(String, String)] = []
        let authorized = self.isAuthorized(head, path: path)
        switch (path, head.method) {
        case ("/metrics", .GET) where !authorized, ("/metrics", .HEAD) where !authorized:
            status = .unauthorized
            body = context.channel.allocator.buffer(
                string: "401 unauthorized: /metrics needs the header Authorization: Bearer <token> (--metrics-token-file)\n"
            )
        case ("/metrics", .GET), ("/metrics", .HEAD):
            contentType = Self.contentType
            var exposition = self.metrics.exposition()
            if let ollama { exposition += ScrapeTimeMetrics.render(ollama) }
            body = context.channel.allocator.buffer(bytes: exposition)
        case ("/healthz", .GET), ("/healthz", .HEAD):
            body = context.channel.allocator.buffer(string: "ok\n")
        case ("/readyz", .GET), ("/readyz", .HEAD):
            // Without a probe (an embedding program that asks Ollama nothing) readiness is the process's.
            if let ollama, !ollama.isUp {
                status = .serviceUnavailable
                body = context.channel.allocator.buffer(
                    string: "not ready: Ollama at \(self.ollama?.upstream.description ?? "--ollama-url") does not answer: \(ollama.problem ?? "unknown")\n"
                )
            } else {
                body = context.channel.allocator.buffer(string: "ready: Ollama answers\n")
            }
        case ("/", .GET) where self.statusPage != nil, ("/", .HEAD) where self.statusPage != nil:
            switch self.statusAccess.decide(uri: head.uri, headers: head.headers, acceptsQueryToken: true) {
            case .allowed:
                contentType = "text/html; charset=utf-8"
                body = context.channel.allocator.buffer(bytes: StatusPage.html)
                extraHeaders = [
                    ("Content-Security-Policy", StatusPage.contentSecurityPolicy), ("X-Content-Type-Options", "nosniff"),
                    ("Referrer-Policy", "no-referrer"), ("X-Frame-Options", "DENY"),
                ]
            case .redirect(let cookie):
                // To the page without the token in its address; relative, so that a path prefix in front stays.
                status = .seeOther
                body = context.channel.allocator.buffer(string: "303 see other: ./\n")
                extraHeaders = [("Location", "./"), ("Set-Cookie", cookie), ("Referrer-Policy", "no-referrer")]
            case .refused:
                status = .unauthorized
                body = context.channel.allocator.buffer(string: Self.statusPageRefusal)
            }
        case ("/status.json", .GET) where self.statusPage != nil, ("/status.json", .HEAD) where self.statusPage != nil:
            guard authorized, let statusPage = self.statusPage else {
                status = .unauthorized
                body = context.channel.allocator.buffer(string: Self.statusPageRefusal)
                break
            }
            contentType = "application/json"
            body = context.channel.allocator.buffer(bytes: statusPage.snapshot(ollama: ollama).json())
            extraHeaders = [("X-Content-Type-Options", "nosniff")]
        case ("/metrics", _), ("/healthz", _), ("/readyz", _),
            ("/", _) where self.statusPage != nil, ("/status.json", _) where self.statusPage != nil:
            status = .methodNotAllowed
            body = context.channel.allocator.buffer(string: "405 method not allowed\n")
        default:
            status = .notFound
            let paths = self.statusPage == nil ? "/metrics, /healthz and /readyz" : "/metrics, /healthz, /readyz, / and /status.json"
            body = context.channel.allocator.buffer(string: "404 page not found: this listener serves \(paths)\n")
        }
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: contentType)
        headers.add(name: "Content-Length", value: String(body.readableBytes))
        if path != "/metrics" { headers.add(name: "Cache-Control", value: "no-store") }
        if status == .methodNotAllowed { headers.add(name: "Allow", value: "GET, HEAD") }
        if status == .unauthorized { headers.add(name: "WWW-Authenticate", value: #"Bearer realm="ollama-metrics-proxy""#) }
        headers.add(contentsOf: extraHeaders)
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
