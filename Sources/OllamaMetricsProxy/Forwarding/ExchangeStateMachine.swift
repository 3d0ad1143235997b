import NIOCore
import NIOHTTP1

/// One request and its response, from the client's request head to the last byte of Ollama's answer, as a
/// value: every event is one method that changes the state and returns what the handler must do. It does
/// no I/O itself, so every transition is tested without sockets (`ProxyConnectionHandler` performs the
/// actions).
///
/// The request body goes one of two ways:
/// - pass-through (everything that is not inference): the head goes upstream as soon as a connection is
///   there, and every body part follows as it arrives;
/// - inference: the (small, JSON) body is read whole first, because the model label comes from it and
///   OpenAI streaming requests need `stream_options.include_usage` added before Ollama sees them. A body
///   larger than `maxInspectedRequestBody` stops being held and streams through untouched.
///
/// The response is forwarded as it arrives; inference responses with a 2xx status are read on the side by
/// a `ResponseInspector`, and the request's lifecycle (`InferenceLifecycleObserver`; for every request, its
/// end: `RequestLifecycleObserver`) is reported through the `events` of each action.
struct ExchangeStateMachine {
    // MARK: Actions

    /// What the handler does after an event, plus the lifecycle events that the event produced.
    struct Action: Equatable {
        var io: IO
        var events: InferenceLifecycleEvents = []

        static let none = Action(io: .none)
    }

    /// Where the connection to Ollama goes once the exchange no longer needs it.
    enum ConnectionDisposal: Equatable {
        /// Back to the pool for the next request.
        case release
        /// Closed: its state is unknown, or closing it is how Ollama learns to stop generating.
        case close
    }

    enum IO: Equatable {
        case none
        /// Ask the pool for a connection (`connected` or `connectFailed` follows).
        case acquireConnection
        /// Send what waited for a connection (head, body bytes, maybe the end), and flush.
        case sendRequest(HTTPRequestHead, body: ByteBuffer?, end: RequestEnd?)
        /// Write a request body part upstream; the flush comes with the client's read burst ending.
        case writeUpstreamBody(ByteBuffer)
        /// Write the end of the request upstream, and flush.
        case endUpstreamRequest(trailers: HTTPHeaders?)
        case flushUpstream
        /// Stop (or resume) reading from the client: the request body has nowhere to go.
        case holdClientReads(Bool)
        /// Stop (or resume) reading Ollama's response: the client cannot take more.
        case pauseUpstreamReads(Bool)
        /// Hand the connection back (or close it) before it was used: the exchange ended without it.
        case disposeConnection(ConnectionDisposal)
        case writeClientHead(HTTPResponseHead)
        /// Write body bytes to the client and flush: a read burst from Ollama ended.
        case writeClientBody(ByteBuffer?)
        /// The response is over: write what is left and its end, dispose of the connection, and close the
        /// client connection when `closeClient`.
        case finishResponse(body: ByteBuffer?, trailers: HTTPHeaders?, connection: ConnectionDisposal, closeClient: Bool)
        /// The proxy answers itself (Ollama is unreachable): a whole response, then the end.
        case respond(HTTPResponseHead, body: ByteBuffer?, closeClient: Bool)
        /// The proxy refuses the request while it may be on its way to Ollama (its body turned out malformed):
        /// dispose of the connection to Ollama if one is held, write the whole response, close the client.
        case refuseRequest(HTTPResponseHead, body: ByteBuffer?, connection: ConnectionDisposal)
        /// Ollama's answer broke off, or the request did: write what is left, close the connection to Ollama
        /// if still held, then close the client connection without an end, so the client sees the response
        /// was cut short.
        case abortResponse(body: ByteBuffer?)
        /// The client hung up: close the connection to Ollama, so it stops generating.
        case closeUpstream
    }

    /// The end of a request as sent upstream (trailers are passed on for pass-through requests).
    struct RequestEnd: Equatable {
        var trailers: HTTPHeaders?
    }

    // MARK: State

    private enum RequestBody {
        /// Parts are forwarded as they arrive. `sawBytes`: at least one body byte went by (such a request
        /// cannot be replayed, since it was not held).
        case streaming(sawBytes: Bool)
        /// An inference body, held whole until its end.
        case buffering(ByteBuffer)
        /// The client sent the whole request. `replay` is the body as sent, when the request may be sent
        /// again whole (held whole, or without a body).
        case complete(replay: ByteBuffer?)
    }

    /// What goes upstream once a connection exists.
    private struct Outbound {
        var head: HTTPRequestHead
        var body: ByteBuffer?
        var end: RequestEnd?
    }

    /// What remains of the request once the response started.
    private enum RequestRemainder {
        /// Body parts still go upstream as they arrive (Ollama answered early).
        case forwarding
        /// Nothing of the request was sent before Ollama answered: the rest is dropped.
        case discarding
        case complete
    }

    /// How the response streaming to the client ends.
    private struct ResponseProgress {
        var upstreamKeepAlive: Bool
        var closeClient: Bool
        var request: RequestRemainder
    }

    private enum State {
        /// Waiting for the pool. `outbound` is nil while an inference body is still being held.
        case connecting(RequestBody, outbound: Outbound?, isReplay: Bool)
        /// A connection is held; no response has arrived. Nothing was sent on it while the body is
        /// `.buffering`; everything read so far was sent otherwise.
        case requesting(RequestBody, reused: Bool, isReplay: Bool)
        /// Ollama's response head went to the client; its body streams through `responseBody`.
        case responding(ResponseProgress)
        /// The response ended, the proxy answered itself, or the client hung up.
        case finished
        /// Only while a case's payload is being changed in place (no copy of its buffers).
        case modifying
    }

    private var state: State
    /// The response body while `.responding`: its inspector, and the bytes of the current read burst. They
    /// change on every chunk, so they live beside the state and are changed in place; held in the state's
    /// payload, they were copied out and back about four times per chunk.
    private var responseBody = ResponseBody()

    private struct ResponseBody {
        var inspector: ResponseInspector?
        /// Body bytes of the current read burst from Ollama, written as one chunk when the burst ends: they
        /// arrived at the same moment, so joining them delays nothing and saves writes.
        var pending: ByteBuffer?
        /// The response head was written to the client and nothing has flushed it yet: it goes out when its
        /// read burst ends even without body bytes (Ollama may stall after its head).
        var headUnflushed = false
    }
    /// Present for inference requests from the moment their life began (see `InferenceLifecycleObserver`).
    private(set) var inference: InferenceProgress?
    /// What the client got, for every request; the bytes and outcome of requests without an inference life.
    private var requestProgress = RequestProgress()

    let clientHead: HTTPRequestHead
    let endpoint: InferenceEndpoint?
    private let upstream: UpstreamURL
    private let clientAddress: String?
    private let maxInspectedRequestBody: Int

    /// The lifecycle of an inference request as far as it went: what observers read.
    struct InferenceProgress {
        var start: InferenceRequestStart
        var request: InferenceRequest
        var status: Int?
        var usage: Usage?
        var outcome: InferenceEnding.Outcome?
        var reusedConnection = false
        var sawContent = false
        /// The first message of an error Ollama reported inside a 2xx body.
        var streamError: String?

        /// The request will not complete, for this reason; the first reason (or a usage before it) wins.
        mutating func fail(_ reason: FailureReason) {
            if self.outcome == nil { self.outcome = .failed(reason) }
        }
    }

    /// What every request reports at its end. The byte counts are kept here for every request; the outcome of
    /// an inference request is `inference.outcome`.
    private struct RequestProgress {
        /// The final status the client got: Ollama's, or the proxy's 502.
        var status: Int?
        /// Body bytes sent to Ollama (after the proxy's edit, if any), and forwarded to the client.
        var requestBodyBytes = 0
        var responseBodyBytes = 0
        /// The outcome of a request without an inference lifecycle.
        var outcome: InferenceEnding.Outcome?
    }

    /// Request body bytes sent to Ollama so far.
    var requestBodyBytesSent: Int { self.requestProgress.requestBodyBytes }

    /// How the inference request ended, once it did (`.ended` was emitted).
    var inferenceEnding: InferenceEnding? {
        self.inference?.outcome.map {
            InferenceEnding(
                outcome: $0, requestBodyBytes: self.requestProgress.requestBodyBytes,
                responseBodyBytes: self.requestProgress.responseBodyBytes
            )
        }
    }

    /// How the request ended, once it did (`.requestEnded` was emitted).
    var requestEnding: RequestEnding? {
        let outcome = self.inference != nil ? self.inference!.outcome : self.requestProgress.outcome
        return outcome.map {
            RequestEnding(
                status: self.requestProgress.status, outcome: $0,
                requestBodyBytes: self.requestProgress.requestBodyBytes, responseBodyBytes: self.requestProgress.responseBodyBytes
            )
        }
    }

    init(head: HTTPRequestHead, upstream: UpstreamURL, clientAddress: String?, maxInspectedRequestBody: Int) {
        self.clientHead = head
        self.upstream = upstream
        self.clientAddress = clientAddress
        self.maxInspectedRequestBody = maxInspectedRequestBody
        if head.method == .POST, let endpoint = InferenceEndpoint(path: UpstreamRequestHead.routedPath(of: head.uri)) {
            self.endpoint = endpoint
            self.state = .connecting(.buffering(ByteBuffer()), outbound: nil, isReplay: false)
        } else {
            self.endpoint = nil
            let outbound = Outbound(head: Self.upstreamHead(head, upstream, clientAddress, bodyLength: nil))
            self.state = .connecting(.streaming(sawBytes: false), outbound: outbound, isReplay: false)
        }
    }

    /// The exchange begins: a connection is asked for at once, while the request body arrives.
    func start() -> Action {
        Action(io: .acquireConnection)
    }

    var isFinished: Bool {
        if case .finished = self.state { return true }
        return false
    }

    /// Whether the client sent the whole request.
    var isRequestComplete: Bool {
        switch self.state {
        case .connecting(let body, _, _), .requesting(let body, _, _):
            if case .complete = body { return true }
            return false
        case .responding(let response):
            return response.request == .complete
        case .finished:
            return true
        case .modifying:
            preconditionFailure("isRequestComplete while modifying")
        }
    }

    // MARK: - Client events

    mutating func clientSentBody(_ part: ByteBuffer) -> Action {
        switch self.state {
        case .connecting(let body, var outbound, let isReplay):
            switch body {
            case .streaming:
                // Nothing more is read until there is somewhere to put it: this holds one read burst at most.
                self.state = .modifying
                self.countSent(part)
                Self.append(part, to: &outbound!.body)
                self.state = .connecting(.streaming(sawBytes: true), outbound: outbound, isReplay: isReplay)
                return Action(io: .holdClientReads(true))
            case .buffering(var buffered):
                self.state = .modifying
                let action = self.buffer(part, into: &buffered, reused: nil)
                if case .modifying = self.state {
                    self.state = .connecting(.buffering(buffered), outbound: nil, isReplay: isReplay)
                }
                return action
            case .complete:
                preconditionFailure("request body after the request's end (state connecting)")
            }
        case .requesting(let body, let reused, let isReplay):
            switch body {
            case .streaming:
                self.state = .requesting(.streaming(sawBytes: true), reused: reused, isReplay: isReplay)
                self.countSent(part)
                return Action(io: .writeUpstreamBody(part))
            case .buffering(var buffered):
                self.state = .modifying
                let action = self.buffer(part, into: &buffered, reused: reused)
                if case .modifying = self.state {
                    self.state = .requesting(.buffering(buffered), reused: reused, isReplay: isReplay)
                }
                return action
            case .complete:
                preconditionFailure("request body after the request's end (state requesting)")
            }
        case .responding(let response):
            switch response.request {
            case .forwarding:
                self.countSent(part)
                return Action(io: .writeUpstreamBody(part))
            case .discarding: return .none
            case .complete: preconditionFailure("request body after the request's end (state responding)")
            }
        case .finished:
            // Answered already (a 502, or the client is gone): the rest of the body has nowhere to go.
            return .none
        case .modifying:
            preconditionFailure("clientSentBody while modifying")
        }
    }

    mutating func clientSentEnd(trailers: HTTPHeaders?) -> Action {
        switch self.state {
        case .connecting(let body, var outbound, let isReplay):
            switch body {
            case .streaming(let sawBytes):
                outbound!.end = RequestEnd(trailers: trailers)
                self.state = .connecting(.complete(replay: sawBytes ? nil : ByteBuffer()), outbound: outbound, isReplay: isReplay)
                return .none
            case .buffering(let buffered):
                let (sent, events) = self.beginInference(body: buffered)
                let head = self.upstreamHead(bodyLength: sent.readableBytes)
                self.state = .connecting(
                    .complete(replay: sent),
                    outbound: Outbound(head: head, body: sent, end: RequestEnd(trailers: nil)),
                    isReplay: isReplay
                )
                return Action(io: .none, events: events)
            case .complete:
                preconditionFailure("request end after the request's end (state connecting)")
            }
        case .requesting(let body, let reused, let isReplay):
            switch body {
            case .streaming(let sawBytes):
                self.state = .requesting(.complete(replay: sawBytes ? nil : ByteBuffer()), reused: reused, isReplay: isReplay)
                return Action(io: .endUpstreamRequest(trailers: trailers))
            case .buffering(let buffered):
                var (sent, events) = self.beginInference(body: buffered)
                events.insert(.upstreamConnected)
                self.inference?.reusedConnection = reused
                let head = self.upstreamHead(bodyLength: sent.readableBytes)
                self.state = .requesting(.complete(replay: sent), reused: reused, isReplay: isReplay)
                return Action(io: .sendRequest(head, body: sent, end: RequestEnd(trailers: nil)), events: events)
            case .complete:
                preconditionFailure("request end after the request's end (state requesting)")
            }
        case .responding(var response):
            switch response.request {
            case .forwarding:
                response.request = .complete
                self.state = .responding(response)
                return Action(io: .endUpstreamRequest(trailers: trailers))
            case .discarding:
                response.request = .complete
                self.state = .responding(response)
                return .none
            case .complete:
                preconditionFailure("request end after the request's end (state responding)")
            }
        case .finished:
            return .none
        case .modifying:
            preconditionFailure("clientSentEnd while modifying")
        }
    }

    /// The client's read burst ended: one flush toward Ollama for everything it brought.
    func clientReadComplete() -> Action {
        switch self.state {
        case .requesting(.streaming, _, _):
            return Action(io: .flushUpstream)
        case .responding(let response) where response.request == .forwarding:
            return Action(io: .flushUpstream)
        case .connecting, .requesting, .responding, .finished:
            return .none
        case .modifying:
            preconditionFailure("clientReadComplete while modifying")
        }
    }

    /// The client's connection can take more bytes, or no more: reading Ollama's answer follows it.
    func clientWritabilityChanged(isWritable: Bool) -> Action {
        switch self.state {
        case .requesting, .responding:
            return Action(io: .pauseUpstreamReads(!isWritable))
        case .connecting, .finished:
            return .none
        case .modifying:
            preconditionFailure("clientWritabilityChanged while modifying")
        }
    }

    /// The client hung up. Closing the connection to Ollama is how Ollama learns to stop generating.
    mutating func clientClosed() -> Action {
        switch self.state {
        case .connecting:
            // The connection, when it comes, goes back to the pool unused.
            self.state = .finished
            return Action(io: .none, events: self.end(.clientDisconnected))
        case .requesting, .responding:
            self.state = .finished
            self.responseBody = ResponseBody()
            return Action(io: .closeUpstream, events: self.end(.clientDisconnected))
        case .finished:
            return .none
        case .modifying:
            preconditionFailure("clientClosed while modifying")
        }
    }

    /// The client's request cannot be read to its end (NIO's decoder rejected its chunked body). No response
    /// started: the client gets `response` (a 400) and the connection to Ollama is closed, since part of the
    /// request may be on it (released, when nothing was sent). Ollama answered already: its response is cut,
    /// as the request will never be complete. An inference request ends as `client_disconnected`: the proxy
    /// closes on the client as when it hangs up.
    mutating func clientSentMalformedBody(response: (head: HTTPResponseHead, body: ByteBuffer?)) -> Action {
        switch self.state {
        case .connecting(let body, _, _), .requesting(let body, _, _):
            var disposal = ConnectionDisposal.close
            if case .buffering = body { disposal = .release }  // nothing was sent
            if case .connecting = self.state { disposal = .release }  // none is held: it comes back unused
            self.state = .finished
            self.requestProgress.status = Int(response.head.status.code)
            return Action(
                io: .refuseRequest(response.head, body: self.clientHead.method == .HEAD ? nil : response.body, connection: disposal),
                events: self.end(.clientDisconnected)
            )
        case .responding:
            return self.abortResponse(endingOtherwiseAs: .clientDisconnected)
        case .finished:
            return .none
        case .modifying:
            preconditionFailure("clientSentMalformedBody while modifying")
        }
    }

    // MARK: - Connection events

    /// The pool handed over a connection: `reused` when it served earlier requests.
    mutating func connected(reused: Bool) -> Action {
        switch self.state {
        case .connecting(let body, let outbound, let isReplay):
            self.state = .requesting(body, reused: reused, isReplay: isReplay)
            guard let outbound else { return .none }  // the inference body is still arriving
            var events: InferenceLifecycleEvents = []
            if self.inference != nil {
                self.inference!.reusedConnection = reused
                events.insert(.upstreamConnected)
            }
            return Action(io: .sendRequest(outbound.head, body: outbound.body, end: outbound.end), events: events)
        case .finished:
            // The client left meanwhile, or the proxy answered: nothing was sent on it, it is as good as new.
            return Action(io: .disposeConnection(.release))
        case .requesting, .responding:
            preconditionFailure("connected while already holding a connection")
        case .modifying:
            preconditionFailure("connected while modifying")
        }
    }

    /// No connection to Ollama could be had: the client gets a 502 that says why.
    mutating func connectFailed(reason: String) -> Action {
        switch self.state {
        case .connecting(let body, _, _):
            var events = self.beginUnreadIfNeeded()
            self.state = .finished
            events.formUnion(self.end(.upstreamUnreachable))
            return self.badGateway("cannot reach Ollama at \(self.upstream): \(reason)", body: body, events: events)
        case .finished:
            return .none
        case .requesting, .responding:
            preconditionFailure("connectFailed while holding a connection")
        case .modifying:
            preconditionFailure("connectFailed while modifying")
        }
    }

    /// Ollama's connection cannot take more request bytes, or can again.
    func upstreamWritabilityChanged(isWritable: Bool) -> Action {
        switch self.state {
        case .requesting(.streaming, _, _):
            return Action(io: .holdClientReads(!isWritable))
        case .responding(let response) where response.request == .forwarding:
            return Action(io: .holdClientReads(!isWritable))
        case .connecting, .requesting, .responding, .finished:
            return Action(io: .holdClientReads(false))
        case .modifying:
            preconditionFailure("upstreamWritabilityChanged while modifying")
        }
    }

    // MARK: - Response events

    mutating func upstreamReceivedHead(_ upstreamHead: HTTPResponseHead) -> Action {
        switch self.state {
        case .requesting(let body, _, _):
            let status = Int(upstreamHead.status.code)
            if (100..<200).contains(status) && status != 101 {
                // Informational: passed on, and the final head is still to come.
                return Action(io: .writeClientHead(upstreamHead))
            }
            var events: InferenceLifecycleEvents = []
            var inspected: InferenceRequest?
            self.requestProgress.status = status
            if self.inference != nil {
                self.inference!.status = status
                events.insert(.responseHead)
                if (200..<300).contains(status) {
                    inspected = self.inference!.request
                } else {
                    self.inference!.fail(FailureReason(status: status))
                }
            }
            let forwarded = ClientResponseHead.make(
                from: upstreamHead, for: self.clientHead, bodyMayShrink: inspected?.withholdUsageChunks ?? false
            )
            var inspector: ResponseInspector?
            if let endpoint = self.endpoint, let inspected {
                inspector = ResponseInspector(
                    endpoint: endpoint, request: inspected, contentType: forwarded.head.headers.first(name: "content-type")
                )
            }
            let remainder: RequestRemainder
            switch body {
            case .streaming: remainder = .forwarding
            case .buffering: remainder = .discarding
            case .complete: remainder = .complete
            }
            self.responseBody = ResponseBody(inspector: inspector, pending: nil, headUnflushed: true)
            self.state = .responding(ResponseProgress(
                upstreamKeepAlive: forwarded.upstreamKeepAlive,
                closeClient: forwarded.closeClientAfterResponse, request: remainder
            ))
            return Action(io: .writeClientHead(forwarded.head), events: events)
        case .responding:
            // A second head on one response: NIO's decoder never emits it.
            preconditionFailure("response head while a response is streaming")
        case .finished:
            return .none
        case .connecting:
            preconditionFailure("response head without a connection")
        case .modifying:
            preconditionFailure("upstreamReceivedHead while modifying")
        }
    }

    /// A piece of the response body: inspected, and held until the read burst ends.
    mutating func upstreamReceivedBody(_ part: ByteBuffer) -> Action {
        switch self.state {
        case .responding:
            guard self.responseBody.inspector != nil else {
                Self.append(part, to: &self.responseBody.pending)
                return .none
            }
            let forward = self.responseBody.inspector!.inspect(part)
            let events = Self.takeInspectionResults(&self.responseBody.inspector!, into: &self.inference)
            Self.append(forward, to: &self.responseBody.pending)
            return Action(io: .none, events: events)
        case .finished:
            return .none
        case .requesting:
            // A body before its head: NIO's decoder never emits it.
            preconditionFailure("response body before the response head")
        case .connecting:
            preconditionFailure("response body without a connection")
        case .modifying:
            preconditionFailure("upstreamReceivedBody while modifying")
        }
    }

    /// Ollama's read burst ended: what it brought goes to the client as one write.
    mutating func upstreamReadComplete() -> Action {
        switch self.state {
        case .responding:
            guard let pending = self.responseBody.pending else {
                guard self.responseBody.headUnflushed else { return .none }
                self.responseBody.headUnflushed = false
                return Action(io: .writeClientBody(nil))
            }
            self.responseBody.pending = nil
            self.responseBody.headUnflushed = false
            self.countForwarded(pending)
            return Action(io: .writeClientBody(pending))
        case .requesting, .connecting, .finished:
            return .none
        case .modifying:
            preconditionFailure("upstreamReadComplete while modifying")
        }
    }

    mutating func upstreamReceivedEnd(trailers: HTTPHeaders?) -> Action {
        switch self.state {
        case .responding(let response):
            let (rest, events) = self.closeResponse(endingOtherwiseAs: .noUsage)
            self.state = .finished
            let reusable = response.upstreamKeepAlive && response.request == .complete
            return Action(
                io: .finishResponse(
                    body: rest, trailers: trailers, connection: reusable ? .release : .close,
                    closeClient: response.closeClient
                ),
                events: events
            )
        case .finished:
            return .none
        case .requesting, .connecting:
            preconditionFailure("response end before the response head")
        case .modifying:
            preconditionFailure("upstreamReceivedEnd while modifying")
        }
    }

    /// The connection to Ollama closed (or failed) while this exchange held it. `answerStarted`: bytes of
    /// the answer had arrived (a head in part, say), so Ollama started on the request: it is not sent again.
    mutating func upstreamClosed(reason: String?, answerStarted: Bool = false) -> Action {
        switch self.state {
        case .requesting(let body, let reused, let isReplay):
            if case .buffering = body, reused {
                // An idle pooled connection closed while the body was still arriving; nothing was sent on
                // it: take another.
                self.state = .connecting(body, outbound: nil, isReplay: isReplay)
                return Action(io: .acquireConnection)
            }
            if case .complete(let replay?) = body, reused, !isReplay, !answerStarted {
                // Ollama closed a reused connection before a byte of the answer came back: it did not start
                // on the request (Go's Transport retries the same way). Sent again, once, on a fresh one.
                let head = self.upstreamHead(bodyLength: self.endpoint == nil ? nil : replay.readableBytes)
                self.state = .connecting(
                    body, outbound: Outbound(head: head, body: replay.readableBytes > 0 ? replay : nil, end: RequestEnd(trailers: nil)),
                    isReplay: true
                )
                return Action(io: .acquireConnection)
            }
            var events = self.beginUnreadIfNeeded()
            self.state = .finished
            events.formUnion(self.end(.upstreamUnreachable))
            let why = reason ?? "connection closed before a response"
            return self.badGateway("Ollama at \(self.upstream) closed the connection: \(why)", body: body, events: events)
        case .responding:
            return self.abortResponse(endingOtherwiseAs: .upstreamDisconnected)
        case .finished:
            return .none
        case .connecting:
            preconditionFailure("upstream closed without a connection")
        case .modifying:
            preconditionFailure("upstreamClosed while modifying")
        }
    }

    // MARK: - Helpers

    private static func append(_ part: ByteBuffer, to pending: inout ByteBuffer?) {
        guard part.readableBytes > 0 else { return }
        if pending == nil {
            pending = part
        } else {
            pending!.writeImmutableBuffer(part)
        }
    }

    /// Adds a part to a held inference body, or gives up holding it once it is larger than inspection allows.
    /// `reused` is nil while no connection is held. Called with the state `.modifying`; sets it when it
    /// gives up, and leaves it `.modifying` otherwise.
    private mutating func buffer(_ part: ByteBuffer, into buffered: inout ByteBuffer, reused: Bool?) -> Action {
        guard buffered.readableBytes + part.readableBytes > self.maxInspectedRequestBody else {
            if buffered.readableBytes == 0 && buffered.capacity == 0 {
                buffered = part
            } else {
                buffered.writeImmutableBuffer(part)
            }
            return .none
        }
        // Too large to hold: what was held and this part go as they are, the rest streams through.
        var sent = buffered
        sent.writeImmutableBuffer(part)
        var events = self.beginInferenceUnread(endpoint: self.endpoint!)
        self.requestProgress.requestBodyBytes = sent.readableBytes
        let head = self.upstreamHead(bodyLength: nil)
        guard let reused else {
            self.state = .connecting(.streaming(sawBytes: true), outbound: Outbound(head: head, body: sent), isReplay: false)
            return Action(io: .holdClientReads(true), events: events)
        }
        self.state = .requesting(.streaming(sawBytes: true), reused: reused, isReplay: false)
        self.inference!.reusedConnection = reused
        events.insert(.upstreamConnected)
        return Action(io: .sendRequest(head, body: sent, end: nil), events: events)
    }

    /// Counts request body bytes sent upstream for the lifecycle.
    private mutating func countSent(_ part: ByteBuffer) {
        self.requestProgress.requestBodyBytes += part.readableBytes
    }

    /// The inference body was read whole: its lifecycle begins, and the body goes upstream possibly edited.
    private mutating func beginInference(body: ByteBuffer) -> (sent: ByteBuffer, events: InferenceLifecycleEvents) {
        guard let endpoint = self.endpoint else { preconditionFailure("inference body without an endpoint") }
        let (request, rewritten) = RequestInspector.inspect(endpoint: endpoint, body: body)
        let sent = rewritten ?? body
        self.inference = InferenceProgress(
            start: InferenceRequestStart(
                endpoint: endpoint, model: request.model, isStreaming: request.isStreaming, clientHeaders: self.clientHead.headers
            ),
            request: request
        )
        self.requestProgress.requestBodyBytes = sent.readableBytes
        return (sent, .began)
    }

    /// Ollama proved unreachable while an inference body was still arriving: the request is counted all the
    /// same, without its model.
    private mutating func beginUnreadIfNeeded() -> InferenceLifecycleEvents {
        guard self.inference == nil, let endpoint = self.endpoint else { return [] }
        return self.beginInferenceUnread(endpoint: endpoint)
    }

    /// The lifecycle of an inference request whose body was not read: labelled without a model.
    private mutating func beginInferenceUnread(endpoint: InferenceEndpoint) -> InferenceLifecycleEvents {
        let request = InferenceRequest(model: nil, isStreaming: endpoint.streamsByDefault, withholdUsageChunks: false)
        self.inference = InferenceProgress(
            start: InferenceRequestStart(
                endpoint: endpoint, model: nil, isStreaming: request.isStreaming, clientHeaders: self.clientHead.headers
            ),
            request: request
        )
        return .began
    }

    /// The exchange is over: the outcome is the first failure or usage seen, else `reason`.
    /// Called once, on the transition to `.finished`.
    private mutating func end(_ reason: FailureReason) -> InferenceLifecycleEvents {
        guard self.inference != nil else {
            // Without an inference life there is no usage to wait for: a response that ended is complete.
            self.requestProgress.outcome = reason == .noUsage ? .completed : .failed(reason)
            return .requestEnded
        }
        self.inference!.fail(reason)  // no change when a usage or an earlier failure decided it
        return [.ended, .requestEnded]
    }

    private mutating func countForwarded(_ bytes: ByteBuffer) {
        self.requestProgress.responseBodyBytes += bytes.readableBytes
    }

    /// The response broke off while streaming: what is left goes out, then the client connection closes
    /// without an end, so the client sees the response was cut short.
    private mutating func abortResponse(endingOtherwiseAs reason: FailureReason) -> Action {
        let (rest, events) = self.closeResponse(endingOtherwiseAs: reason)
        self.state = .finished
        return Action(io: .abortResponse(body: rest), events: events)
    }

    /// The response ended or broke off: the inspector reads what it still held, what was not yet written
    /// is returned to go out with the end, and the request ends (as `reason` unless a usage or a failure
    /// decided it). The inspector and its buffers are let go.
    private mutating func closeResponse(
        endingOtherwiseAs reason: FailureReason
    ) -> (rest: ByteBuffer?, events: InferenceLifecycleEvents) {
        var events: InferenceLifecycleEvents = []
        if self.responseBody.inspector != nil {
            let rest = self.responseBody.inspector!.finish()
            events = Self.takeInspectionResults(&self.responseBody.inspector!, into: &self.inference)
            if let rest { Self.append(rest, to: &self.responseBody.pending) }
        }
        let rest = self.responseBody.pending
        self.responseBody = ResponseBody()
        if let rest { self.countForwarded(rest) }
        events.formUnion(self.end(reason))
        return (rest, events)
    }

    /// What the inspector learned since it was last asked, as lifecycle events. Static over two stored
    /// properties, so that both are changed in place on every chunk.
    private static func takeInspectionResults(
        _ inspector: inout ResponseInspector, into inference: inout InferenceProgress?
    ) -> InferenceLifecycleEvents {
        guard inference != nil else { return [] }
        var events: InferenceLifecycleEvents = []
        if !inference!.sawContent, inspector.hasSeenContent {
            inference!.sawContent = true
            events.insert(.firstContent)
        }
        if inspector.hasCompletedUsage, var usage = inspector.takeCompletedUsage(), inference!.outcome == nil {
            usage.finishReason = inspector.finishReason
            inference!.usage = usage
            inference!.outcome = .completed
            events.insert(.usage)
        }
        if inference!.streamError == nil, let message = inspector.streamErrorMessage {
            inference!.streamError = message
            inference!.fail(.streamError)
        }
        return events
    }

    /// The proxy's 502. It follows the client's connection semantics as Ollama's answers do: the connection
    /// closes after it (and it says `Connection: close`) when the client asked for that, or spoke HTTP/1.0
    /// without keep-alive, or has not sent its whole request (the rest has nowhere to go).
    private mutating func badGateway(_ message: String, body: RequestBody, events: InferenceLifecycleEvents) -> Action {
        var (head, payload) = ProxyErrorResponse.badGateway(message: message, endpoint: self.endpoint)
        self.requestProgress.status = Int(head.status.code)
        var requestComplete = false
        if case .complete = body { requestComplete = true }
        let closeClient = ClientResponseHead.ownResponse(&head, for: self.clientHead, mustClose: !requestComplete)
        return Action(
            io: .respond(head, body: self.clientHead.method == .HEAD ? nil : payload, closeClient: closeClient),
            events: events
        )
    }

    private func upstreamHead(bodyLength: Int?) -> HTTPRequestHead {
        Self.upstreamHead(self.clientHead, self.upstream, self.clientAddress, bodyLength: bodyLength)
    }

    private static func upstreamHead(
        _ clientHead: HTTPRequestHead, _ upstream: UpstreamURL, _ clientAddress: String?, bodyLength: Int?
    ) -> HTTPRequestHead {
        UpstreamRequestHead.make(from: clientHead, upstream: upstream, clientAddress: clientAddress, bodyLength: bodyLength)
    }
}
