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

/// One client connection. Requests on it are answered one at a time, each by a `ProxyExchange`.
///
/// This handler sits right behind NIO's HTTP codec and does its own pipelining: reading goes on while a
/// response streams (so the kernel is not asked to stop and restart watching the socket for every
/// request), and a request that arrives before the previous response ended waits in a queue, with
/// reading paused, until its turn.
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

    /// What arrived from the client while an earlier request was still being answered.
    private enum Queued {
        case part(HTTPServerRequestPart)
        /// The bytes after the queued parts are not HTTP: answered with 400 when their turn comes.
        case malformed
    }

    private let shared: ProxySharedState
    private var state: State = .idle
    private var context: ChannelHandlerContext?
    private var headTimer: Scheduled<Void>?
    /// When the connection last became idle (waiting for a request head); nil while a request is handled.
    private var idleSince: NIODeadline?
    /// Pipelined requests, in arrival order.
    private var queue = CircularBuffer<Queued>()
    private var sawMalformedInput = false
    /// Shutdown asked this connection to close after its current response.
    private var quiescing = false
    /// The client's IP address as text, for `X-Forwarded-For`: worked out once per connection.
    private var cachedClientAddress: String??
    private var readsHeldByExchange = false
    private var readPending = false

    init(shared: ProxySharedState) {
        self.shared = shared
    }

    var allocator: ByteBufferAllocator { self.context?.channel.allocator ?? ByteBufferAllocator() }
    var isClientWritable: Bool { self.context?.channel.isWritable ?? true }
    private var readsHeld: Bool { self.readsHeldByExchange || !self.queue.isEmpty }

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
        let part = self.unwrapInboundIn(data)
        if !self.queue.isEmpty {
            self.queue.append(.part(part))
            return
        }
        if case .head = part, case .exchanging = self.state {
            // Pipelined behind a response still streaming: it waits, and reading stops until its turn.
            self.queue.append(.part(part))
            return
        }
        self.handle(part, context: context)
    }

    private func handle(_ part: HTTPServerRequestPart, context: ChannelHandlerContext) {
        switch part {
        case .head(let head):
            guard case .idle = self.state else { return }
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
                clientAddress: self.clientAddress(context: context)
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

    private func clientAddress(context: ChannelHandlerContext) -> String? {
        if let cached = self.cachedClientAddress { return cached }
        let address = context.channel.remoteAddress?.ipAddress
        self.cachedClientAddress = .some(address)
        return address
    }

    /// Hands queued requests on, in order, for as long as the connection can take them.
    private func deliverQueued(context: ChannelHandlerContext) {
        while let next = self.queue.first {
            switch next {
            case .part(let part):
                if case .head = part {
                    guard case .idle = self.state else { return }
                }
                self.queue.removeFirst()
                self.handle(part, context: context)
            case .malformed:
                switch self.state {
                case .idle:
                    self.respondBadRequestAndClose(context: context)
                case .exchanging(let exchange) where exchange.isRequestComplete:
                    return  // its turn comes after this response
                case .exchanging, .draining, .closed:
                    // Inside the body of a queued request: that request cannot be completed. What was
                    // answered before it is flushed first.
                    self.queue.removeAll()
                    context.flush()
                    context.close(promise: nil)
                }
                return
            }
        }
        self.resumeReadsIfPending()
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
        self.queue.removeAll()
        if case .exchanging(let exchange) = previous {
            exchange.clientClosed()
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        guard error is HTTPParserError else {
            // A reset connection, mostly: it ends the connection, and the exchange learns of it.
            context.close(promise: nil)
            return
        }
        // Bytes that are not HTTP. The decoder stops at them, so only the first report matters.
        guard !self.sawMalformedInput else { return }
        self.sawMalformedInput = true
        switch self.state {
        case .idle where self.queue.isEmpty:
            self.respondBadRequestAndClose(context: context)
        case .exchanging(let exchange) where exchange.isRequestComplete || !self.queue.isEmpty:
            // After a complete request: that one is still answered, then the connection closes.
            self.queue.append(.malformed)
        case .idle, .exchanging, .draining, .closed:
            // Inside a request body: the request cannot be completed.
            context.close(promise: nil)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard event is ChannelShouldQuiesceEvent else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        // Shutdown: the response in progress finishes (with `Connection: close`), nothing else starts.
        self.quiescing = true
        self.queue.removeAll()
        switch self.state {
        case .exchanging:
            break
        case .idle, .draining:
            self.state = .closed
            context.close(promise: nil)
        case .closed:
            break
        }
    }

    func read(context: ChannelHandlerContext) {
        if self.readsHeld {
            self.readPending = true
        } else {
            context.read()
        }
    }

    private func resumeReadsIfPending() {
        if !self.readsHeld, self.readPending, let context = self.context {
            self.readPending = false
            context.read()
        }
    }

    /// NIO's answer to bytes that are not HTTP, when no response is in progress.
    private func respondBadRequestAndClose(context: ChannelHandlerContext) {
        self.state = .closed
        self.queue.removeAll()
        let headers = HTTPHeaders([("Connection", "close"), ("Content-Length", "0")])
        context.write(self.wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .badRequest, headers: headers))), promise: nil)
        context.writeAndFlush(self.wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }

    // MARK: Called by the exchange

    func writeResponse(_ part: HTTPServerResponsePart) {
        guard let context = self.context else { return }
        if self.quiescing, case .head(var head) = part, head.status.code >= 200, head.version == .http1_1 {
            head.headers.replaceOrAdd(name: "Connection", value: "close")
            context.write(self.wrapOutboundOut(.head(head)), promise: nil)
            return
        }
        context.write(self.wrapOutboundOut(part), promise: nil)
    }

    func flush() {
        self.context?.flush()
    }

    /// Stops reading from the client while Ollama cannot take more request bytes (or there is no upstream
    /// connection yet), and resumes afterwards.
    func setClientReadsHeld(_ held: Bool) {
        self.readsHeldByExchange = held
        self.resumeReadsIfPending()
    }

    /// Ends the exchange's response, then hands on the next pipelined request, if any.
    func finishResponse(of exchange: ProxyExchange, trailers: HTTPHeaders?, closeConnection: Bool) {
        guard case .exchanging(let current) = self.state, current === exchange else { return }
        self.readsHeldByExchange = false
        let close = closeConnection || self.quiescing
        if close {
            self.state = .closed
            self.queue.removeAll()
        } else if exchange.isRequestComplete {
            self.state = .idle
        } else {
            self.state = .draining
        }
        guard let context = self.context else { return }
        if close {
            context.writeAndFlush(self.wrapOutboundOut(.end(trailers))).assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
            return
        }
        context.write(self.wrapOutboundOut(.end(trailers)), promise: nil)
        if case .idle = self.state { self.becameIdle() }
        self.deliverQueued(context: context)
        // One flush for the end of this response and whatever the next request wrote already.
        context.flush()
    }

    /// Ends the connection without completing the response, so the client sees it was cut short.
    func abortResponse(of exchange: ProxyExchange) {
        guard case .exchanging(let current) = self.state, current === exchange else { return }
        self.state = .closed
        self.queue.removeAll()
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
