import NIOCore
import NIOHTTP1

/// One client connection as a value: which request is being answered, what was pipelined behind it, when
/// the connection closes, and whether the client is read from. It does no I/O; `ProxyConnectionHandler`
/// performs the actions it returns.
///
/// Requests on a connection are answered one at a time. Reading goes on while a response streams (so the
/// kernel is not asked to stop and restart watching the socket for every request); what arrives of a next
/// request before the current response ended waits in `pipelined`, with reading paused, until its turn.
struct ClientConnectionStateMachine {
    enum Action: Equatable {
        case none
        /// A request head to answer: the handler starts an exchange for it.
        case startExchange(HTTPRequestHead)
        /// A body part of the request being answered, for its exchange.
        case forwardBody(ByteBuffer)
        /// The end of the request being answered, for its exchange.
        case forwardEnd(HTTPHeaders?)
        /// Waiting for the next request: the idle timer must run.
        case awaitNextRequest
        /// Input the proxy answers itself (not HTTP, a head over a limit), with nothing left to answer before
        /// it: the refusal's response, then close.
        case refuseAndClose(ClientRefusal)
        /// The body of the request being answered is not HTTP (a malformed chunk): its exchange answers 400 if
        /// no response has started, else cuts the response; either way the connection closes after it. Nothing
        /// more is read.
        case failRequestBody
        /// Flush what was written and close.
        case close
    }

    /// What the idle timer does when it fires.
    enum IdleTimerAction: Equatable {
        /// Busy or closed: the next idle period starts the timer again.
        case none
        case close
        /// The connection became idle again since the timer was set: wait until then.
        case reschedule(NIODeadline)
    }

    /// Input that waits for the request before it to be answered.
    enum Pipelined: Equatable {
        case head(HTTPRequestHead)
        case body(ByteBuffer)
        case end(HTTPHeaders?)
        /// The input after the parts before it is refused (not HTTP, a head over a limit): answered when its
        /// turn comes, and the connection closed.
        case refused(ClientRefusal)
    }

    private enum State {
        /// Waiting for a request head since `since`; the idle timer runs.
        case idle(since: NIODeadline)
        /// A request is being answered. `requestComplete`: the client sent its end. `closeAfterResponse`:
        /// shutdown asked the connection to close once this response ended; what the client sends after
        /// this request is read and dropped.
        case active(requestComplete: Bool, closeAfterResponse: Bool)
        /// The response ended before its request (Ollama answered early): the rest of the request body is
        /// read and dropped, so the connection can carry the next request.
        case draining
        /// Closing or closed: nothing more is read or answered.
        case closed
    }

    private var state: State
    /// Input of later requests, in arrival order. Only non-empty while `.active` or `.draining`.
    private var pipelined = CircularBuffer<Pipelined>(initialCapacity: 4)
    /// NIO asked to read while reads were held: passed on when they are released.
    private var readPending = false
    /// The exchange has nowhere to put more request body bytes right now.
    private var exchangeHoldsReads = false

    init(now: NIODeadline) {
        self.state = .idle(since: now)
    }

    private var readsHeld: Bool { self.exchangeHoldsReads || !self.pipelined.isEmpty }

    /// Whether the response being written must tell the client that the connection closes after it.
    var closesAfterResponse: Bool {
        switch self.state {
        case .active(_, let closeAfterResponse): closeAfterResponse
        case .idle, .draining: false
        case .closed: true
        }
    }

    var isClosed: Bool {
        if case .closed = self.state { return true }
        return false
    }

    // MARK: - Input from the client

    mutating func receivedHead(_ head: HTTPRequestHead) -> Action {
        if case .closed = self.state { return .none }  // closing: what follows is not read
        if !self.pipelined.isEmpty {
            self.pipelined.append(.head(head))
            return .none
        }
        switch self.state {
        case .idle:
            self.state = .active(requestComplete: false, closeAfterResponse: false)
            self.exchangeHoldsReads = false
            return .startExchange(head)
        case .active(requestComplete: true, closeAfterResponse: true):
            return .none  // shutting down: nothing new starts
        case .active(requestComplete: true, closeAfterResponse: false):
            // Pipelined behind a response still streaming: it waits, and reading stops until its turn.
            self.pipelined.append(.head(head))
            return .none
        case .active(requestComplete: false, _), .draining:
            preconditionFailure("request head before the end of the request before it (state \(self.state))")
        case .closed:
            return .none
        }
    }

    mutating func receivedBody(_ part: ByteBuffer) -> Action {
        if case .closed = self.state { return .none }
        if !self.pipelined.isEmpty {
            self.pipelined.append(.body(part))
            return .none
        }
        switch self.state {
        case .active(requestComplete: false, _):
            return .forwardBody(part)
        case .draining, .active(requestComplete: true, closeAfterResponse: true):
            // The rest of a request answered early, or of one that shutdown dropped from the queue.
            return .none
        case .idle, .active(requestComplete: true, closeAfterResponse: false):
            preconditionFailure("request body without a request head (state \(self.state))")
        case .closed:
            return .none
        }
    }

    mutating func receivedEnd(_ trailers: HTTPHeaders?, now: NIODeadline) -> Action {
        if case .closed = self.state { return .none }
        if !self.pipelined.isEmpty {
            self.pipelined.append(.end(trailers))
            return .none
        }
        switch self.state {
        case .active(requestComplete: false, let closeAfterResponse):
            self.state = .active(requestComplete: true, closeAfterResponse: closeAfterResponse)
            return .forwardEnd(trailers)
        case .draining:
            self.state = .idle(since: now)
            return .awaitNextRequest
        case .active(requestComplete: true, closeAfterResponse: true):
            return .none  // of a request that shutdown dropped from the queue
        case .idle, .active(requestComplete: true, closeAfterResponse: false):
            preconditionFailure("request end without a request head (state \(self.state))")
        case .closed:
            return .none
        }
    }

    /// NIO's decoder met bytes that are not HTTP. It stops decoding there, so nothing follows them.
    mutating func receivedMalformedInput() -> Action {
        self.receivedUnanswerable(.malformedRequest)
    }

    /// Input the proxy refuses instead of forwarding: bytes that are not HTTP, or a request head over a
    /// limit (in place of `receivedHead`). Nothing after it on the connection is answered.
    mutating func receivedUnanswerable(_ refusal: ClientRefusal) -> Action {
        if case .refused = self.pipelined.last { return .none }  // refused already
        switch self.state {
        case .idle:
            self.state = .closed
            return .refuseAndClose(refusal)
        case .active(requestComplete: true, _):
            // After a complete request: that one is still answered, then the connection closes.
            self.pipelined.append(.refused(refusal))
            return .none
        case .active(requestComplete: false, _) where !self.pipelined.isEmpty:
            self.pipelined.append(.refused(refusal))
            return .none
        case .active(requestComplete: false, _):
            // Inside the body of the request being answered: it cannot be completed.
            return self.failRequestBody()
        case .draining:
            // Inside the rest of a request already answered.
            self.close()
            return .close
        case .closed:
            return .none
        }
    }

    // MARK: - The exchange

    /// The response of the request being answered was written whole. The handler then takes what was
    /// pipelined with `nextPipelined` until it returns nil.
    mutating func responseEnded(closeConnection: Bool, now: NIODeadline) -> Action {
        switch self.state {
        case .active(let requestComplete, let closeAfterResponse):
            self.exchangeHoldsReads = false
            if closeConnection || closeAfterResponse {
                self.close()
                return .close
            }
            if requestComplete {
                self.state = .idle(since: now)
                return .awaitNextRequest
            }
            self.state = .draining
            return .none
        case .closed:
            // The connection closed under the exchange (malformed input inside its body).
            return .none
        case .idle, .draining:
            preconditionFailure("response ended with no request being answered (state \(self.state))")
        }
    }

    /// The response was cut short: the connection ends without completing it.
    mutating func responseAborted() -> Action {
        if case .closed = self.state { return .none }
        self.close()
        return .close
    }

    /// The next pipelined input that can be handled now, applied as if it had just arrived; nil when the
    /// rest must wait (or there is none).
    mutating func nextPipelined(now: NIODeadline) -> Action? {
        guard let next = self.pipelined.first else { return nil }
        switch (next, self.state) {
        case (.head(let head), .idle):
            self.pipelined.removeFirst()
            self.state = .active(requestComplete: false, closeAfterResponse: false)
            self.exchangeHoldsReads = false
            return .startExchange(head)
        case (.head, .active(requestComplete: true, _)), (.refused, .active(requestComplete: true, _)):
            return nil  // its turn comes after this response
        case (.body(let part), .active(requestComplete: false, _)):
            self.pipelined.removeFirst()
            return .forwardBody(part)
        case (.end(let trailers), .active(requestComplete: false, let closeAfterResponse)):
            self.pipelined.removeFirst()
            self.state = .active(requestComplete: true, closeAfterResponse: closeAfterResponse)
            return .forwardEnd(trailers)
        case (.body, .draining):
            self.pipelined.removeFirst()
            return Action.none
        case (.end, .draining):
            self.pipelined.removeFirst()
            self.state = .idle(since: now)
            return .awaitNextRequest
        case (.refused(let refusal), .idle):
            self.close()
            return .refuseAndClose(refusal)
        case (.refused, .active(requestComplete: false, _)):
            // Inside the body of the queued request now being answered: it cannot be completed.
            return self.failRequestBody()
        case (.refused, .draining):
            // Inside the rest of a request already answered. What was answered before it is flushed first.
            self.close()
            return .close
        case (_, .closed):
            return nil
        case (.head, _), (.body, _), (.end, _):
            preconditionFailure("pipelined \(next) cannot follow state \(self.state)")
        }
    }

    // MARK: - Reading

    /// NIO wants to read more from the client: true when the read may go ahead now.
    mutating func readRequested() -> Bool {
        if self.readsHeld {
            self.readPending = true
            return false
        }
        return true
    }

    /// The exchange can (or cannot) take more request body bytes. True when a held read may go ahead now.
    mutating func exchangeHoldsReads(_ held: Bool) -> Bool {
        self.exchangeHoldsReads = held
        return self.takePendingRead()
    }

    /// True (once) when a read was held and nothing holds reads any more.
    mutating func takePendingRead() -> Bool {
        guard self.readPending, !self.readsHeld, !self.isClosed else { return false }
        self.readPending = false
        return true
    }

    // MARK: - Lifetime

    /// Shutdown: the response in progress finishes (with `Connection: close`), nothing else starts.
    mutating func quiesce() -> Action {
        switch self.state {
        case .active(let requestComplete, _):
            self.pipelined.removeAll()
            self.state = .active(requestComplete: requestComplete, closeAfterResponse: true)
            return .none
        case .idle, .draining:
            self.close()
            return .close
        case .closed:
            return .none
        }
    }

    /// The idle timer, set for `timeout` after the connection became idle, fired.
    func idleTimerFired(now: NIODeadline, timeout: TimeAmount) -> IdleTimerAction {
        guard case .idle(let since) = self.state else { return .none }
        let expiry = since + timeout
        return now >= expiry ? .close : .reschedule(expiry)
    }

    /// The idle timer closes the connection: nothing was pending.
    mutating func idleTimedOut() {
        guard case .idle = self.state else { preconditionFailure("idle timeout while \(self.state)") }
        self.close()
    }

    /// The connection failed (reset, …) and is closed: the exchange learns of it from `closed`.
    mutating func failed() -> Action {
        if case .closed = self.state { return .none }
        self.close()
        return .close
    }

    /// The channel is gone.
    mutating func closed() {
        self.close()
    }

    /// The request being answered ends here: its response is the last, and what follows is not read.
    private mutating func failRequestBody() -> Action {
        self.pipelined.removeAll()
        self.state = .active(requestComplete: true, closeAfterResponse: true)
        return .failRequestBody
    }

    private mutating func close() {
        self.state = .closed
        self.pipelined.removeAll()
    }
}
