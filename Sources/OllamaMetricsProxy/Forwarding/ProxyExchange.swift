import Logging
import NIOCore
import NIOHTTP1

/// One request and its response, from the client's request head to the last byte of Ollama's answer.
///
/// The exchange forwards bytes in both directions as they arrive, with backpressure each way, and on the
/// side inspects inference responses and records their metrics. It runs entirely on the client
/// connection's event loop, which is also the upstream connection's.
///
/// Request body handling depends on the route:
/// - pass-through (everything that is not inference): the head goes upstream as soon as a connection is
///   there, and every body part follows as it arrives;
/// - inference: the (small, JSON) body is read whole first, because the model label comes from it and
///   OpenAI streaming requests need `stream_options.include_usage` added before Ollama sees them.
final class ProxyExchange {
    /// Above this size an inference request body is no longer held for inspection: it streams through
    /// untouched, without the OpenAI usage option, and the request is recorded as model `unknown`.
    static let maxInspectedRequestBody = 32 * 1024 * 1024

    private enum RequestState {
        /// Pass-through: parts are forwarded (or queued until the upstream connection exists).
        case streaming
        /// Inference: the body is collected until `.end`.
        case buffering(ByteBuffer)
        /// The client sent `.end`.
        case complete
    }

    private enum UpstreamState {
        case connecting
        case connected(UpstreamConnection)
        /// Released to the pool, closed, or never obtained.
        case gone
    }

    private enum ResponseState {
        case awaitingHead
        case streaming
        case complete
    }

    private let client: ProxyConnectionHandler
    private let shared: ProxySharedState
    private let pool: UpstreamConnectionPool
    private let clientHead: HTTPRequestHead
    private let clientAddress: String?
    private let endpoint: InferenceEndpoint?

    private var requestState: RequestState
    private var upstreamState: UpstreamState = .connecting
    private var responseState: ResponseState = .awaitingHead

    /// What goes upstream once a connection exists: the head (and, for inference, the whole body).
    private var pendingHead: HTTPRequestHead?
    private var pendingParts: [HTTPClientRequestPart] = []
    private var wroteToUpstreamSinceFlush = false
    /// A request whose head and body are held whole can be sent again on a fresh connection when a
    /// pooled one turns out to have been closed by Ollama before answering.
    private var replayableBody: ByteBuffer?
    private var sawRequestBodyBytes = false
    private var connectionWasReused = false
    private var retried = false
    /// Whether anything of this request went to the current upstream connection yet.
    private var sentHead = false

    private var record: InferenceRecord?
    private var inferenceRequest: InferenceRequest?
    private var inspector: ResponseInspector?
    private var upstreamKeepAlive = true
    /// The client asked to close after this response (`Connection: close`, or HTTP/1.0 without keep-alive).
    private var closeClientAfterResponse = false
    /// Body bytes for the client from the current upstream read burst, written as one chunk when the burst
    /// ends: all of them arrived at the same moment, so joining them delays nothing and saves writes.
    private var pendingClientBody: ByteBuffer?
    private var streamErrorReported = false
    private var clientGone = false

    init(
        head: HTTPRequestHead,
        client: ProxyConnectionHandler,
        shared: ProxySharedState,
        pool: UpstreamConnectionPool,
        clientAddress: String?
    ) {
        self.clientHead = head
        self.client = client
        self.shared = shared
        self.pool = pool
        self.clientAddress = clientAddress
        if head.method == .POST, let endpoint = InferenceEndpoint(path: UpstreamRequestHead.path(of: head.uri)) {
            self.endpoint = endpoint
            self.requestState = .buffering(ByteBuffer())
        } else {
            self.endpoint = nil
            self.requestState = .streaming
            self.pendingHead = self.upstreamHead(bodyLength: nil)
        }
    }

    /// Asks the pool for an upstream connection; called once the connection handler tracks this exchange,
    /// since a pooled connection is handed over at once.
    func start() {
        self.acquireConnection()
    }

    var isRequestComplete: Bool {
        if case .complete = self.requestState { return true }
        return false
    }

    // MARK: - Client side

    func clientSent(body: ByteBuffer) {
        if body.readableBytes > 0 { self.sawRequestBodyBytes = true }
        switch self.requestState {
        case .streaming:
            self.sendOrQueue(.body(.byteBuffer(body)))
        case .buffering(var buffered):
            if buffered.readableBytes + body.readableBytes > Self.maxInspectedRequestBody {
                self.giveUpInspectingRequest(buffered: buffered, next: body)
                return
            }
            self.requestState = .buffering(ByteBuffer())  // drop the reference so the append does not copy
            if buffered.readableBytes == 0 && buffered.capacity == 0 {
                buffered = body
            } else {
                var body = body
                buffered.writeBuffer(&body)
            }
            self.requestState = .buffering(buffered)
        case .complete:
            break
        }
    }

    func clientSentEnd(trailers: HTTPHeaders?) {
        switch self.requestState {
        case .streaming:
            self.requestState = .complete
            if !self.sawRequestBodyBytes { self.replayableBody = ByteBuffer() }
            self.sendOrQueue(.end(trailers))
            self.flushUpstream()
        case .buffering(let body):
            self.requestState = .complete
            self.startInference(body: body)
        case .complete:
            break
        }
    }

    /// The client's read burst ended: one flush toward Ollama for everything it brought.
    func clientReadComplete() {
        self.flushUpstream()
    }

    func clientWritabilityChanged(isWritable: Bool) {
        if case .connected(let connection) = self.upstreamState {
            connection.setReadsPaused(!isWritable)
        }
    }

    /// The client hung up. Closing the upstream connection is how Ollama learns to stop generating.
    func clientClosed() {
        guard !self.clientGone else { return }
        self.clientGone = true
        if case .complete = self.responseState { return }
        self.responseState = .complete
        if case .connected(let connection) = self.upstreamState {
            connection.close()
        }
        self.upstreamState = .gone
        self.pendingClientBody = nil
        self.record?.fail(.clientDisconnected)
        self.record?.finish()
    }

    // MARK: - Inference requests

    private func startInference(body: ByteBuffer) {
        guard let endpoint = self.endpoint else { return }
        let (request, rewritten) = RequestInspector.inspect(endpoint: endpoint, body: body)
        let sent = rewritten ?? body
        self.inferenceRequest = request
        self.record = InferenceRecord(metrics: self.shared.metrics, endpoint: endpoint, model: request.model)
        self.replayableBody = sent
        self.pendingHead = self.upstreamHead(bodyLength: sent.readableBytes)
        if sent.readableBytes > 0 {
            self.pendingParts.append(.body(.byteBuffer(sent)))
        }
        self.pendingParts.append(.end(nil))
        self.sendPendingIfConnected()
    }

    /// An inference body too large to hold: send what was held and stream the rest through untouched.
    private func giveUpInspectingRequest(buffered: ByteBuffer, next: ByteBuffer) {
        guard let endpoint = self.endpoint else { return }
        self.requestState = .streaming
        self.inferenceRequest = InferenceRequest(
            model: nil, isStreaming: endpoint.streamsByDefault, withholdUsageChunks: false
        )
        self.record = InferenceRecord(metrics: self.shared.metrics, endpoint: endpoint, model: nil)
        self.pendingHead = self.upstreamHead(bodyLength: nil)
        self.client.setClientReadsHeld(true)
        self.pendingParts.append(.body(.byteBuffer(buffered)))
        self.pendingParts.append(.body(.byteBuffer(next)))
        self.sendPendingIfConnected()
    }

    private func upstreamHead(bodyLength: Int?) -> HTTPRequestHead {
        UpstreamRequestHead.make(
            from: self.clientHead, upstream: self.shared.upstream, clientAddress: self.clientAddress,
            bodyLength: bodyLength
        )
    }

    // MARK: - Upstream connection

    private func acquireConnection() {
        self.pool.acquire { result in
            switch result {
            case .success(let (connection, reused)):
                self.connected(connection, reused: reused)
            case .failure(let error):
                self.connectFailed(error)
            }
        }
    }

    private func connected(_ connection: UpstreamConnection, reused: Bool) {
        guard !self.clientGone else {
            // Nothing was sent on it: it is as good as new.
            self.upstreamState = .gone
            self.pool.release(connection)
            return
        }
        self.connectionWasReused = reused
        connection.delegate = self
        self.upstreamState = .connected(connection)
        connection.setReadsPaused(!self.client.isClientWritable)
        self.sendPendingIfConnected()
    }

    private func connectFailed(_ error: Error) {
        self.upstreamState = .gone
        guard !self.clientGone else { return }
        let reason = UpstreamFailure.describe(error)
        self.logUpstreamFailure("cannot reach Ollama", error: reason)
        if self.record == nil, let endpoint = self.endpoint {
            // The body was still arriving: the request is counted all the same, without its model.
            self.record = InferenceRecord(metrics: self.shared.metrics, endpoint: endpoint, model: nil)
        }
        self.record?.fail(.upstreamUnreachable)
        self.respondBadGateway("cannot reach Ollama at \(self.shared.upstream): \(reason)")
    }

    private func sendOrQueue(_ part: HTTPClientRequestPart) {
        if case .connected(let connection) = self.upstreamState, self.pendingHead == nil {
            connection.write(part)
            self.wroteToUpstreamSinceFlush = true
        } else {
            // Nothing more is read from the client until there is somewhere to put it: the queue holds at
            // most one read burst.
            self.pendingParts.append(part)
            self.client.setClientReadsHeld(true)
        }
    }

    private func sendPendingIfConnected() {
        guard case .connected(let connection) = self.upstreamState, let head = self.pendingHead else { return }
        self.pendingHead = nil
        self.sentHead = true
        connection.write(.head(head))
        for part in self.pendingParts {
            connection.write(part)
        }
        self.pendingParts.removeAll()
        connection.flush()
        self.wroteToUpstreamSinceFlush = false
        var streamingBody = false
        if case .streaming = self.requestState { streamingBody = true }
        self.client.setClientReadsHeld(streamingBody && !connection.channel.isWritable)
    }

    private func flushUpstream() {
        guard self.wroteToUpstreamSinceFlush, case .connected(let connection) = self.upstreamState else { return }
        self.wroteToUpstreamSinceFlush = false
        connection.flush()
    }

    /// A pooled connection that Ollama closed before answering is retried once on a new connection,
    /// when the request can be sent again whole.
    private func retryOnFreshConnection() -> Bool {
        guard self.connectionWasReused, !self.retried, case .awaitingHead = self.responseState,
            let body = self.replayableBody, self.isRequestComplete
        else { return false }
        self.retried = true
        self.sentHead = false
        self.upstreamState = .connecting
        self.pendingHead = self.upstreamHead(bodyLength: self.endpoint == nil ? nil : body.readableBytes)
        self.pendingParts = body.readableBytes > 0 ? [.body(.byteBuffer(body)), .end(nil)] : [.end(nil)]
        self.acquireConnection()
        return true
    }

    /// One log line per failed exchange with Ollama; never a prompt or a completion.
    private func logUpstreamFailure(_ message: Logger.Message, error: String) {
        self.shared.logger.error(
            message,
            metadata: [
                "upstream": "\(self.shared.upstream)", "method": "\(self.clientHead.method.rawValue)",
                "path": "\(UpstreamRequestHead.path(of: self.clientHead.uri))", "error": "\(error)",
            ]
        )
    }

    // MARK: - Responses of the proxy's own

    private func respondBadGateway(_ message: String) {
        guard case .awaitingHead = self.responseState else { return }
        self.responseState = .complete
        self.record?.finish()
        let (head, body) = ProxyErrorResponse.badGateway(
            message: message, endpoint: self.endpoint, allocator: self.client.allocator
        )
        self.client.writeResponse(.head(head))
        if self.clientHead.method != .HEAD {
            self.client.writeResponse(.body(.byteBuffer(body)))
        }
        self.client.finishResponse(of: self, trailers: nil, closeConnection: !self.isRequestComplete)
    }

    /// The client's last request can no longer be answered properly: end the connection so the client sees
    /// a truncated response rather than one that looks complete.
    private func abortClient() {
        self.responseState = .complete
        self.record?.finish()
        self.client.abortResponse(of: self)
    }
}

// MARK: - Upstream events

extension ProxyExchange: UpstreamConnectionDelegate {
    func upstreamReceived(_ part: HTTPClientResponsePart) {
        switch part {
        case .head(let upstreamHead):
            guard case .awaitingHead = self.responseState else { return }
            self.responseState = .streaming
            let status = Int(upstreamHead.status.code)
            self.record?.upstreamAnswered(status: status)
            let inspected = (200..<300).contains(status) ? self.inferenceRequest : nil
            let forwarded = ClientResponseHead.make(
                from: upstreamHead, for: self.clientHead, bodyMayShrink: inspected?.withholdUsageChunks ?? false
            )
            self.upstreamKeepAlive = forwarded.upstreamKeepAlive
            self.closeClientAfterResponse = forwarded.closeClientAfterResponse
            let head = forwarded.head
            if let endpoint = self.endpoint, let request = inspected {
                self.inspector = ResponseInspector(
                    endpoint: endpoint, request: request, contentType: head.headers.first(name: "content-type")
                )
            }
            self.client.writeResponse(.head(head))

        case .body(let buffer):
            guard case .streaming = self.responseState else { return }
            if var inspector = self.inspector {
                // Moved out while in use, so that mutating it is not checked for exclusive access each time.
                self.inspector = nil
                let forward = inspector.inspect(buffer)
                self.takeInspectionResults(&inspector)
                self.inspector = inspector
                self.queueForClient(forward)
            } else {
                self.queueForClient(buffer)
            }

        case .end(let trailers):
            guard case .streaming = self.responseState else { return }
            self.responseState = .complete
            if var inspector = self.inspector {
                self.inspector = nil
                let rest = inspector.finish()
                self.takeInspectionResults(&inspector)
                if let rest { self.queueForClient(rest) }
            }
            self.writePendingClientBody()
            // Metrics first, so a client that has read the whole answer also finds it counted.
            self.record?.finish()
            if case .connected(let connection) = self.upstreamState {
                self.upstreamState = .gone
                if self.upstreamKeepAlive && self.isRequestComplete {
                    self.pool.release(connection)
                } else {
                    connection.close()
                }
            }
            self.client.finishResponse(of: self, trailers: trailers, closeConnection: self.closeClientAfterResponse)
        }
    }

    private func queueForClient(_ buffer: ByteBuffer) {
        guard buffer.readableBytes > 0 else { return }
        if var pending = self.pendingClientBody {
            self.pendingClientBody = nil
            pending.writeImmutableBuffer(buffer)
            self.pendingClientBody = pending
        } else {
            self.pendingClientBody = buffer
        }
    }

    private func writePendingClientBody() {
        guard let pending = self.pendingClientBody else { return }
        self.pendingClientBody = nil
        self.client.writeResponse(.body(.byteBuffer(pending)))
    }

    private func takeInspectionResults(_ inspector: inout ResponseInspector) {
        if let usage = inspector.takeCompletedUsage() {
            self.record?.complete(with: usage)
        }
        if !self.streamErrorReported, let message = inspector.streamErrorMessage {
            self.streamErrorReported = true
            self.record?.fail(.streamError)
            self.shared.logger.warning(
                "Ollama reported an error inside a response",
                metadata: [
                    "path": "\(UpstreamRequestHead.path(of: self.clientHead.uri))",
                    "model": "\(self.record?.modelLabel ?? "unknown")", "error": "\(message)",
                ]
            )
        }
    }

    func upstreamReadComplete() {
        self.writePendingClientBody()
        self.client.flush()
    }

    func upstreamWritabilityChanged(isWritable: Bool) {
        if case .streaming = self.requestState {
            self.client.setClientReadsHeld(!isWritable)
        }
    }

    func upstreamClosed(error: Error?) {
        guard case .connected = self.upstreamState else { return }
        self.upstreamState = .gone
        if !self.sentHead && self.connectionWasReused {
            // An idle pooled connection closed while the request body was still being read: take another.
            self.upstreamState = .connecting
            self.acquireConnection()
            return
        }
        switch self.responseState {
        case .complete:
            return
        case .awaitingHead:
            if self.retryOnFreshConnection() { return }
            let reason = error.map(UpstreamFailure.describe) ?? "connection closed before a response"
            self.logUpstreamFailure("Ollama closed the connection without answering", error: reason)
            self.record?.fail(.upstreamUnreachable)
            self.respondBadGateway("Ollama at \(self.shared.upstream) closed the connection: \(reason)")
        case .streaming:
            self.logUpstreamFailure("Ollama connection lost mid-response", error: error.map(UpstreamFailure.describe) ?? "connection closed")
            if var inspector = self.inspector {
                self.inspector = nil
                if let rest = inspector.finish() { self.queueForClient(rest) }
                self.takeInspectionResults(&inspector)
            }
            self.writePendingClientBody()
            self.record?.fail(.upstreamDisconnected)
            self.abortClient()
        }
    }
}
