import Logging
import NIOCore
import NIOHTTP1

/// What every client connection shares: where to forward, whom to tell about inference requests (and about
/// every request: the access log, when on), where to log, and the limits.
struct ProxySharedState: Sendable {
    let upstream: UpstreamURL
    let observer: any InferenceLifecycleObserver
    var requestObserver: (any RequestLifecycleObserver)? = nil
    let logger: Logger
    let requestHeadTimeout: TimeAmount
    let maxInspectedRequestBody: Int
    var headLimits = RequestHeadLimits(
        maxBytes: ProxyConfiguration.defaultMaxRequestHeadSize, maxHeaderCount: ProxyConfiguration.defaultMaxRequestHeaders
    )
    /// Counts and logs requests the proxy refuses itself; nil: not counted.
    var refusals: RefusalReporter? = nil
}

/// One client connection and the exchange it is answering. It only translates NIO's events into calls on
/// the two state machines — `ClientConnectionStateMachine` (pipelining, draining, closing) and
/// `ExchangeStateMachine` (one request and its response) — and carries out the actions they return.
///
/// It sits right behind NIO's HTTP request decoder and writes responses as bytes itself
/// (`ClientResponseEncoder`). It is also the delegate of the connection to Ollama that the current
/// exchange holds: every event of both sockets arrives here, on the one event loop they share.
final class ProxyConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let shared: ProxySharedState
    private let upstreamSource: UpstreamConnectionSource
    private var connection: ClientConnectionStateMachine
    /// The exchange of the request being answered (or last answered: a finished exchange stays until the
    /// next one starts, and ignores what still arrives for it).
    private var exchange: ExchangeStateMachine?
    /// Counts exchanges, so that a connection the pool hands over late goes to the exchange that asked.
    private var exchangeNumber = 0
    /// The connection to Ollama the current exchange holds.
    private var upstreamConnection: UpstreamConnection?
    /// The observer's listener for the current exchange's inference request.
    private var lifecycle: InferenceLifecycleListener?
    /// The request observer's listener for the current exchange, until it ended.
    private var requestListener: (any RequestLifecycleListener)?
    private var context: ChannelHandlerContext?
    /// Frames what goes to the client; what it gathers is written at the end of each burst.
    private var encoder = ClientResponseEncoder()
    /// The method of the request being answered: a response to HEAD has no body.
    private var requestMethod: HTTPMethod = .GET
    private var idleTimer: Scheduled<Void>?
    /// The client's IP address as text, for `X-Forwarded-For`: worked out once per connection.
    private var cachedClientAddress: String??

    init(shared: ProxySharedState, upstream: UpstreamConnectionSource) {
        self.shared = shared
        self.upstreamSource = upstream
        self.connection = ClientConnectionStateMachine(now: .now())
    }

    // MARK: - Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { self.startIdleTimer() }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        self.startIdleTimer()
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.unwrapInboundIn(data) {
        case .head(let head):
            if let refusal = self.shared.headLimits.refusal(for: head) ?? RequestHeadValidation.refusal(for: head) {
                self.perform(self.connection.receivedUnanswerable(refusal))
            } else {
                self.perform(self.connection.receivedHead(head))
            }
        case .body(let part):
            self.perform(self.connection.receivedBody(part))
        case .end(let trailers):
            self.perform(self.connection.receivedEnd(trailers, now: .now()))
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if self.exchange != nil {
            self.perform(self.exchange!.clientReadComplete())
        }
        context.fireChannelReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if self.exchange != nil {
            self.perform(self.exchange!.clientWritabilityChanged(isWritable: context.channel.isWritable))
        }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.idleTimer?.cancel()
        self.idleTimer = nil
        self.connection.closed()
        if self.exchange != nil {
            self.perform(self.exchange!.clientClosed())
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if let error = error as? HTTPParserError {
            if error == .headerOverflow {
                // Over NIO's own ceiling, so over ours too.
                let limit = self.shared.headLimits.maxBytes
                self.perform(self.connection.receivedUnanswerable(.requestHeadTooLarge(limit: limit, endpoint: nil)))
            } else {
                // Bytes that are not HTTP.
                self.perform(self.connection.receivedMalformedInput())
            }
        } else {
            // A reset connection, mostly: it ends the connection, and the exchange learns of it.
            self.perform(self.connection.failed())
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard event is ChannelShouldQuiesceEvent else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        self.perform(self.connection.quiesce())
    }

    func read(context: ChannelHandlerContext) {
        if self.connection.readRequested() {
            context.read()
        }
    }

    // MARK: - Connection actions

    private func perform(_ action: ClientConnectionStateMachine.Action) {
        guard let context = self.context else { return }
        switch action {
        case .none:
            break
        case .startExchange(let head):
            self.startExchange(head, context: context)
        case .forwardBody(let part):
            self.perform(self.exchange!.clientSentBody(part))
        case .forwardEnd(let trailers):
            self.perform(self.exchange!.clientSentEnd(trailers: trailers))
        case .awaitNextRequest:
            self.startIdleTimer()
        case .refuseAndClose(let refusal):
            self.shared.refusals?.refused(refusal, clientAddress: self.clientAddress(context: context), on: context.eventLoop)
            let (head, body) = refusal.response
            self.encoder.head(head, requestMethod: .GET)
            if let body { self.encoder.body(body, write: self.writeToClient) }
            self.encoder.end(trailers: nil)
            self.writeLastAndClose(context: context)
        case .failRequestBody:
            let refusal = ClientRefusal.malformedRequestBody(endpoint: self.exchange?.endpoint)
            self.shared.refusals?.refused(refusal, clientAddress: self.clientAddress(context: context), on: context.eventLoop)
            guard self.exchange != nil, !self.exchange!.isFinished else {
                self.perform(self.connection.responseAborted())
                return
            }
            self.perform(self.exchange!.clientSentMalformedBody(response: refusal.response))
        case .close:
            self.writeGathered()
            context.flush()
            context.close(promise: nil)
        }
    }

    private func startExchange(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        if head.headers[canonicalForm: "expect"].contains(where: { $0.lowercased() == "100-continue" }) {
            // Answered here: the body then streams to Ollama like any other.
            self.encoder.head(HTTPResponseHead(version: head.version, status: .continue), requestMethod: head.method)
            self.writeGathered()
            context.flush()
        }
        self.requestMethod = head.method
        self.exchangeNumber &+= 1
        self.lifecycle = nil
        let clientAddress = self.clientAddress(context: context)
        self.requestListener = self.shared.requestObserver?.requestReceived(
            RequestStart(method: head.method, path: String(UpstreamRequestHead.routedPath(of: head.uri)), clientAddress: clientAddress)
        )
        self.exchange = ExchangeStateMachine(
            head: head, upstream: self.shared.upstream, clientAddress: clientAddress,
            maxInspectedRequestBody: self.shared.maxInspectedRequestBody
        )
        self.perform(self.exchange!.start())
    }

    /// Hands pipelined requests on, in order, for as long as the connection can take them, then lets a
    /// held read go ahead.
    private func deliverPipelined() {
        while let next = self.connection.nextPipelined(now: .now()) {
            self.perform(next)
        }
        if self.connection.takePendingRead() {
            self.context?.read()
        }
    }

    private func clientAddress(context: ChannelHandlerContext) -> String? {
        if let cached = self.cachedClientAddress { return cached }
        let address = context.channel.remoteAddress?.ipAddress
        self.cachedClientAddress = .some(address)
        return address
    }

    // MARK: - Exchange actions

    private func perform(_ action: ExchangeStateMachine.Action) {
        if !action.events.isEmpty {
            // Before the I/O: a client that has read the whole answer also finds it counted.
            self.report(action.events)
        }
        switch action.io {
        case .none:
            break
        case .acquireConnection:
            let number = self.exchangeNumber
            self.upstreamSource.acquire { result in
                self.connectionArrived(result, forExchange: number)
            }
        case .sendRequest(let head, let body, let end):
            guard let upstream = self.upstreamConnection else { preconditionFailure("sendRequest without a connection") }
            upstream.write(.head(head))
            if let body { upstream.write(.body(.byteBuffer(body))) }
            if let end { upstream.write(.end(end.trailers)) }
            upstream.flush()
            self.perform(self.exchange!.upstreamWritabilityChanged(isWritable: upstream.channel.isWritable))
        case .writeUpstreamBody(let part):
            self.upstreamConnection?.write(.body(.byteBuffer(part)))
        case .endUpstreamRequest(let trailers):
            self.upstreamConnection?.write(.end(trailers))
            self.upstreamConnection?.flush()
        case .flushUpstream:
            self.upstreamConnection?.flush()
        case .holdClientReads(let held):
            if self.connection.exchangeHoldsReads(held) {
                self.context?.read()
            }
        case .pauseUpstreamReads(let paused):
            self.upstreamConnection?.setReadsPaused(paused)
        case .disposeConnection(let disposal):
            self.dispose(disposal)
        case .writeClientHead(let head):
            self.writeClientHead(head)
        case .writeClientBody(let body):
            if let body { self.encoder.body(body, write: self.writeToClient) }
            self.writeGathered()
            self.context?.flush()
        case .finishResponse(let body, let trailers, let disposal, let closeClient):
            self.dispose(disposal)
            self.endResponse(body: body, trailers: trailers, closeClient: closeClient)
        case .respond(let head, let body, let closeClient):
            self.writeClientHead(head)
            self.endResponse(body: body, trailers: nil, closeClient: closeClient)
        case .refuseRequest(let head, let body, let disposal):
            self.dispose(disposal)
            self.writeClientHead(head)
            self.endResponse(body: body, trailers: nil, closeClient: true)
        case .abortResponse(let body):
            // Still held when the request broke off rather than Ollama's answer: closed, so Ollama stops.
            self.dispose(.close)
            // No end: a chunked body stays unfinished, so the client sees that it was cut.
            if let body { self.encoder.body(body, write: self.writeToClient) }
            self.writeGathered()
            self.perform(self.connection.responseAborted())
        case .closeUpstream:
            self.dispose(.close)
        }
    }

    private func connectionArrived(
        _ result: Result<(connection: UpstreamConnection, reused: Bool), Error>, forExchange number: Int
    ) {
        guard number == self.exchangeNumber, self.exchange != nil else {
            // Asked for by an exchange that is over: nothing was sent on it.
            if case .success(let arrived) = result { self.upstreamSource.release(arrived.connection) }
            return
        }
        switch result {
        case .success(let arrived):
            self.upstreamConnection = arrived.connection
            arrived.connection.delegate = self
            arrived.connection.setReadsPaused(!(self.context?.channel.isWritable ?? true))
            self.perform(self.exchange!.connected(reused: arrived.reused))
        case .failure(let error):
            let reason = UpstreamFailure.describe(error)
            self.logUpstreamFailure("cannot reach Ollama", reason: reason)
            self.perform(self.exchange!.connectFailed(reason: reason))
        }
    }

    private func dispose(_ disposal: ExchangeStateMachine.ConnectionDisposal) {
        guard let upstream = self.upstreamConnection else { return }
        self.upstreamConnection = nil
        switch disposal {
        case .release: self.upstreamSource.release(upstream)
        case .close: upstream.close()
        }
    }

    /// Gathers the head; it is written with the burst's bytes, or at the burst's end.
    private func writeClientHead(_ head: HTTPResponseHead) {
        guard self.context != nil else { return }
        var head = head
        if self.connection.closesAfterResponse, head.status.code >= 200, head.version == .http1_1 {
            head.headers.replaceOrAdd(name: "Connection", value: "close")
        }
        self.encoder.head(head, requestMethod: self.requestMethod)
    }

    /// Writes the rest of the response and its end, then hands on the next pipelined request, if any.
    private func endResponse(body: ByteBuffer?, trailers: HTTPHeaders?, closeClient: Bool) {
        guard let context = self.context else { return }
        if let body { self.encoder.body(body, write: self.writeToClient) }
        self.encoder.end(trailers: trailers)
        switch self.connection.responseEnded(closeConnection: closeClient, now: .now()) {
        case .close:
            self.writeLastAndClose(context: context)
        case let next:
            self.writeGathered()
            self.perform(next)
            self.deliverPipelined()
            // One flush for the end of this response and whatever the next request wrote already.
            context.flush()
        }
    }

    /// Writes and flushes what the encoder gathered (or nothing), then closes once the socket took it.
    private func writeLastAndClose(context: ChannelHandlerContext) {
        let last = self.encoder.take() ?? ByteBuffer()
        context.writeAndFlush(self.wrapOutboundOut(last)).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }

    /// Writes what the encoder gathered, without flushing.
    private func writeGathered() {
        if let gathered = self.encoder.take() { self.writeToClient(gathered) }
    }

    private func writeToClient(_ bytes: ByteBuffer) {
        self.context?.write(self.wrapOutboundOut(bytes), promise: nil)
    }

    // MARK: - Lifecycle

    private func report(_ events: InferenceLifecycleEvents) {
        if let inference = self.exchange?.inference { self.reportInference(events, inference) }
        if events.contains(.requestEnded), let listener = self.requestListener, let ending = self.exchange?.requestEnding {
            self.requestListener = nil
            listener.requestEnded(ending)
        }
    }

    private func reportInference(_ events: InferenceLifecycleEvents, _ inference: ExchangeStateMachine.InferenceProgress) {
        if events.contains(.began) {
            let listener = self.shared.observer.requestBegan(inference.start)
            if let requestListener = self.requestListener {
                // The request's listener hears the inference events too (model, tokens, first content).
                requestListener.inferenceBegan(inference.start)
                self.lifecycle = CompositeLifecycleListener(listeners: [listener, requestListener])
            } else {
                self.lifecycle = listener
            }
        }
        guard let lifecycle = self.lifecycle else { return }
        if events.contains(.upstreamConnected) { lifecycle.upstreamConnected(reused: inference.reusedConnection) }
        if events.contains(.responseHead), let status = inference.status { lifecycle.responseHeadReceived(status: status) }
        if events.contains(.firstContent) { lifecycle.firstContentForwarded() }
        if events.contains(.usage), let usage = inference.usage { lifecycle.usageSeen(usage) }
        if events.contains(.ended), let ending = self.exchange?.inferenceEnding {
            lifecycle.ended(ending)
            self.lifecycle = nil
            if let message = inference.streamError {
                self.shared.logger.warning(
                    "Ollama reported an error inside a response",
                    metadata: [
                        "path": "\(inference.start.endpoint.rawValue)",
                        "model": "\(inference.start.model.map(AccessLogRecorder.loggable) ?? "unknown")", "error": "\(message)",
                    ]
                )
            }
        }
    }

    /// One log line per failed exchange with Ollama; never a prompt or a completion.
    private func logUpstreamFailure(_ message: Logger.Message, reason: String) {
        guard let head = self.exchange?.clientHead else { return }
        self.shared.logger.error(
            message,
            metadata: [
                "upstream": "\(self.shared.upstream)", "method": "\(head.method.rawValue)",
                "path": "\(UpstreamRequestHead.path(of: head.uri))", "error": "\(reason)",
            ]
        )
    }

    // MARK: - Idle timer

    /// Only a client that does not finish its request head (or leaves an idle keep-alive connection open)
    /// is timed out; a request in progress never is. One timer per connection, not per request: when it
    /// fires, the state machine says whether the connection has been idle long enough.
    private func startIdleTimer() {
        guard self.idleTimer == nil else { return }
        self.scheduleIdleTimer(at: .now() + self.shared.requestHeadTimeout)
    }

    private func scheduleIdleTimer(at deadline: NIODeadline) {
        guard let context = self.context else { return }
        self.idleTimer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) {
            self.idleTimer = nil
            switch self.connection.idleTimerFired(now: .now(), timeout: self.shared.requestHeadTimeout) {
            case .none:
                break
            case .close:
                self.connection.idleTimedOut()
                self.context?.close(promise: nil)
            case .reschedule(let deadline):
                self.scheduleIdleTimer(at: deadline)
            }
        }
    }
}

// MARK: - Upstream events

extension ProxyConnectionHandler: UpstreamConnectionDelegate {
    func upstreamReceived(_ part: HTTPClientResponsePart) {
        switch part {
        case .head(let head):
            self.perform(self.exchange!.upstreamReceivedHead(head))
        case .body(let body):
            self.perform(self.exchange!.upstreamReceivedBody(body))
        case .end(let trailers):
            self.perform(self.exchange!.upstreamReceivedEnd(trailers: trailers))
        }
    }

    func upstreamReadComplete() {
        self.perform(self.exchange!.upstreamReadComplete())
    }

    func upstreamWritabilityChanged(isWritable: Bool) {
        self.perform(self.exchange!.upstreamWritabilityChanged(isWritable: isWritable))
    }

    func upstreamClosed(error: Error?, answerStarted: Bool) {
        // The connection reports this once and forgets its delegate: it is of no further use.
        self.upstreamConnection = nil
        let reason = error.map(UpstreamFailure.describe)
        let action = self.exchange!.upstreamClosed(reason: reason, answerStarted: answerStarted)
        switch action.io {
        case .respond:
            self.logUpstreamFailure("Ollama closed the connection without answering", reason: reason ?? "connection closed")
        case .abortResponse:
            self.logUpstreamFailure("Ollama connection lost mid-response", reason: reason ?? "connection closed")
        default:
            break
        }
        self.perform(action)
    }
}
