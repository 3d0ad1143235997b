import Logging
import NIOCore
import NIOHTTP1

/// What every client connection shares: where to forward, where to record, where to log.
struct ProxySharedState: Sendable {
    let upstream: UpstreamURL
    let metrics: ProxyMetrics
    let logger: Logger
    let pools: UpstreamConnectionPools
    let requestHeadTimeout: TimeAmount
}

/// One client connection. Requests on it are answered one at a time (NIO's pipelining handler in front
/// of this one queues pipelined requests), each by a `ProxyExchange`.
final class ProxyConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private enum State {
        /// Waiting for a request head; the head timeout runs.
        case idle
        /// A request is being answered.
        case exchanging(ProxyExchange)
        /// The response went out before the request finished (Ollama answered early): the rest of the
        /// request body is read and dropped, so the connection can carry the next request.
        case draining
        case closed
    }

    private let shared: ProxySharedState
    private var state: State = .idle
    private var context: ChannelHandlerContext?
    private var headTimer: Scheduled<Void>?
    /// When the connection last became idle (waiting for a request head); nil while a request is handled.
    private var idleSince: NIODeadline?
    private var readsHeld = false
    private var readPending = false

    init(shared: ProxySharedState) {
        self.shared = shared
    }

    var allocator: ByteBufferAllocator { self.context?.channel.allocator ?? ByteBufferAllocator() }
    var isClientWritable: Bool { self.context?.channel.isWritable ?? true }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { self.becameIdle() }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        self.becameIdle()
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.unwrapInboundIn(data) {
        case .head(let head):
            guard case .idle = self.state else {
                // NIO's pipelining handler holds the next request until the response ends, so this is a
                // request behind one after which the connection closes (`Connection: close`, HTTP/1.0):
                // it is not answered, as HTTP/1.1 says.
                return
            }
            self.idleSince = nil
            if head.headers[canonicalForm: "expect"].contains(where: { $0.lowercased() == "100-continue" }) {
                // Answered here: the body then streams to Ollama like any other.
                context.writeAndFlush(self.wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .continue))), promise: nil)
            }
            let exchange = ProxyExchange(
                head: head,
                client: self,
                shared: self.shared,
                pool: self.shared.pools.pool(for: context.eventLoop),
                clientAddress: context.channel.remoteAddress?.ipAddress
            )
            self.state = .exchanging(exchange)
            exchange.start()
        case .body(let body):
            if case .exchanging(let exchange) = self.state {
                exchange.clientSent(body: body)
            }
        case .end(let trailers):
            switch self.state {
            case .exchanging(let exchange):
                exchange.clientSentEnd(trailers: trailers)
            case .draining:
                self.state = .idle
                self.becameIdle()
            case .idle, .closed:
                break
            }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if case .exchanging(let exchange) = self.state {
            exchange.clientReadComplete()
        }
        context.fireChannelReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if case .exchanging(let exchange) = self.state {
            exchange.clientWritabilityChanged(isWritable: context.channel.isWritable)
        }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.cancelHeadTimer()
        let previous = self.state
        self.state = .closed
        if case .exchanging(let exchange) = previous {
            exchange.clientClosed()
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // Malformed requests are answered with 400 by NIO's protocol error handler before this one;
        // anything reaching here (a reset connection, mostly) ends the connection.
        context.close(promise: nil)
    }

    func read(context: ChannelHandlerContext) {
        if self.readsHeld {
            self.readPending = true
        } else {
            context.read()
        }
    }

    // MARK: Called by the exchange

    func writeResponse(_ part: HTTPServerResponsePart) {
        self.context?.write(self.wrapOutboundOut(part), promise: nil)
    }

    func flush() {
        self.context?.flush()
    }

    /// Stops reading from the client while Ollama cannot take more request bytes (or there is no upstream
    /// connection yet), and resumes afterwards.
    func setClientReadsHeld(_ held: Bool) {
        self.readsHeld = held
        if !held, self.readPending, let context = self.context {
            self.readPending = false
            context.read()
        }
    }

    /// Ends the exchange's response. The state moves on before `.end` is written, because writing it
    /// makes NIO's pipelining handler deliver the next queued request at once.
    func finishResponse(of exchange: ProxyExchange, trailers: HTTPHeaders?, closeConnection: Bool) {
        guard case .exchanging(let current) = self.state, current === exchange else { return }
        self.setClientReadsHeld(false)
        if closeConnection {
            self.state = .closed
        } else if exchange.isRequestComplete {
            self.state = .idle
        } else {
            self.state = .draining
        }
        guard let context = self.context else { return }
        if closeConnection {
            context.writeAndFlush(self.wrapOutboundOut(.end(trailers))).assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
        } else {
            context.writeAndFlush(self.wrapOutboundOut(.end(trailers)), promise: nil)
            if case .idle = self.state { self.becameIdle() }
        }
    }

    /// Ends the connection without completing the response, so the client sees it was cut short.
    func abortResponse(of exchange: ProxyExchange) {
        guard case .exchanging(let current) = self.state, current === exchange else { return }
        self.state = .closed
        self.context?.flush()
        self.context?.close(promise: nil)
    }

    // MARK: Head timeout

    /// Only a client that does not finish its request head (or leaves an idle keep-alive connection open)
    /// is timed out; a request in progress never is. One timer per connection, not per request: it only
    /// looks at when the connection became idle.
    private func becameIdle() {
        let now = NIODeadline.now()
        if self.idleSince == nil { self.idleSince = now }
        if self.headTimer == nil { self.scheduleHeadTimer(at: now + self.shared.requestHeadTimeout) }
    }

    private func scheduleHeadTimer(at deadline: NIODeadline) {
        guard let context = self.context else { return }
        self.headTimer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) {
            self.headTimer = nil
            // Busy: the next idle period schedules it again.
            guard case .idle = self.state, let idleSince = self.idleSince else { return }
            let expiry = idleSince + self.shared.requestHeadTimeout
            if NIODeadline.now() >= expiry {
                self.context?.close(promise: nil)
            } else {
                self.scheduleHeadTimer(at: expiry)
            }
        }
    }

    private func cancelHeadTimer() {
        self.headTimer?.cancel()
        self.headTimer = nil
    }
}
