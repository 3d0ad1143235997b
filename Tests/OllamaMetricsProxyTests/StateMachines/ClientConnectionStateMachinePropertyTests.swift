import NIOCore
import NIOHTTP1
import Testing

@testable import OllamaMetricsProxy

/// `ClientConnectionStateMachine` driven by random sequences of what a client connection can see: well-formed
/// pipelined requests arriving in read bursts of any size, bytes that are not HTTP, hang-ups and resets,
/// responses that end early, late, with or without closing, or are cut short, backpressure from the
/// exchange, shutdown and the idle timer. The world plays the client, NIO's reads, and the part of
/// `ProxyConnectionHandler` that carries out the machine's actions (the exchanges are modelled).
@Suite struct ClientConnectionStateMachinePropertyTests {
    @Test func randomEventSequencesKeepEveryConnectionInvariant() {
        PropertyRuns.check("randomEventSequencesKeepEveryConnectionInvariant", defaultRuns: 4000, playing: ConnectionWorld.self)
    }
}

private struct ConnectionWorld: RandomWorld {
    typealias Machine = ClientConnectionStateMachine

    var run: PropertyRun
    var machine: Machine
    static let timeout = TimeAmount.seconds(75)
    var now = NIODeadline.uptimeNanoseconds(1_000_000_000)

    /// What the client sends, in order: each request's head, body parts and end, then maybe bytes that are
    /// not HTTP (NIO's decoder stops there). A `refusedHead` is a head over a limit: the handler refuses it
    /// instead of passing it on, and its body and everything after it still arrive.
    enum Input { case head(Int), refusedHead(Int), body(Int, part: Int), end(Int), malformed }
    let requestParts: [Int]
    var input: [Input] = []
    var inputSent = 0

    /// A read was let through to the socket and not yet answered by a burst.
    var readOutstanding = false
    var closed = false
    var closeCause: String?
    var quiesced = false
    var idleTimerArmed = true
    /// The modelled exchange of the request being answered.
    struct Exchange {
        let request: Int
        var partsForwarded = 0
        var endForwarded = false
        var responseEnded = false
        var holdsReads = false
    }
    var exchange: Exchange?
    var started: [Int] = []
    var endsReceived: Set<Int> = []
    var malformedSentAfter: Set<Int> = []

    init(run: PropertyRun) {
        self.run = run
        self.machine = Machine(now: self.now)
        var random = run.random
        let count = random.int(in: 1...5)
        self.requestParts = (0..<count).map { _ in random.below(4) }
        self.run.random = random
        for request in 0..<count {
            self.input.append(.head(request))
            for part in 0..<self.requestParts[request] { self.input.append(.body(request, part: part)) }
            self.input.append(.end(request))
        }
        if self.run.random.oneIn(5) {
            // Not HTTP from some point on: the rest of the input is never decoded.
            self.input.removeSubrange(self.run.random.below(self.input.count + 1)...)
            self.input.append(.malformed)
        } else if self.run.random.oneIn(5) {
            // One head over a limit, wherever it falls.
            let refused = self.run.random.below(count)
            let index = self.input.firstIndex { if case .head(refused) = $0 { true } else { false } }!
            self.input[index] = .refusedHead(refused)
        }
    }

    // MARK: - Playing

    mutating func play() {
        self.run.note("input: \(self.input)")
        self.nioRead()
        for _ in 0..<self.run.random.int(in: 1...50) {
            guard !self.closed else { break }
            let events = self.possibleEvents(cooperative: false)
            guard let event = self.run.random.weighted(events) else { break }
            self.apply(event)
        }
        var steps = 0
        while !self.closed, !self.isDone {
            let events = self.possibleEvents(cooperative: true)
            guard let event = self.run.random.weighted(events) else { break }
            self.apply(event)
            steps += 1
            if steps > 300 { break }
        }
        if !self.closed && !self.isDone {
            self.run.fail("stalled with a cooperating client and exchanges: sent \(self.inputSent)/\(self.input.count), read outstanding \(self.readOutstanding), exchange \(String(describing: self.exchange))")
        }
        self.checkEnd()
    }

    /// Everything was sent and answered.
    private var isDone: Bool {
        self.inputSent == self.input.count && (self.exchange?.responseEnded ?? true)
    }

    enum Event {
        case burst(Int), responseEnded(close: Bool), responseAborted, exchangeHoldsReads(Bool)
        case hangUp, reset, quiesce, idleTimer(advance: Int64)
    }

    private mutating func possibleEvents(cooperative: Bool) -> [(weight: Int, value: Event)] {
        var events: [(weight: Int, value: Event)] = []
        let hazard = self.run.hazard
        if self.readOutstanding && self.inputSent < self.input.count {
            events.append((10, .burst(self.run.random.int(in: 1...4))))
        }
        if let exchange = self.exchange, !exchange.responseEnded {
            // A response can end before its request did (Ollama answered early): not when cooperating.
            let early = !exchange.endForwarded
            if !cooperative || !early {
                events.append((early ? 2 : 8, .responseEnded(close: !cooperative && self.run.random.oneIn(10))))
            }
            if !cooperative { events.append((hazard, .responseAborted)) }
            if exchange.holdsReads { events.append((4, .exchangeHoldsReads(false))) } else if !cooperative {
                events.append((3, .exchangeHoldsReads(true)))
            }
        }
        if !cooperative {
            events.append((hazard, .hangUp))
            events.append((hazard, .reset))
            if !self.quiesced { events.append((hazard, .quiesce)) }
            if self.idleTimerArmed { events.append((2, .idleTimer(advance: self.run.random.oneIn(2) ? 80 : 10))) }
        }
        return events
    }

    private mutating func apply(_ event: Event) {
        switch event {
        case .burst(let count):
            self.readOutstanding = false
            for _ in 0..<count where self.inputSent < self.input.count && !self.closed {
                let input = self.input[self.inputSent]
                self.inputSent += 1
                self.receive(input)
            }
            if !self.closed { self.nioRead() }  // autoRead asks again once the burst is over
        case .responseEnded(let close):
            self.endResponse(closeConnection: close)
        case .responseAborted:
            self.run.note("response aborted")
            self.exchange!.responseEnded = true
            self.perform(self.machine.responseAborted(), after: "response aborted")
        case .exchangeHoldsReads(let held):
            self.exchange!.holdsReads = held
            if self.machine.exchangeHoldsReads(held) { self.grantRead("exchange holds reads \(held)") } else {
                self.run.note("exchange holds reads \(held)")
            }
        case .hangUp:
            self.closeChannel(cause: "client hung up")
        case .reset:
            self.perform(self.machine.failed(), after: "reset")
            self.closeChannel(cause: "reset")
        case .quiesce:
            self.quiesced = true
            self.perform(self.machine.quiesce(), after: "quiesce")
            if !self.closed, self.exchange.map({ !$0.responseEnded }) == true {
                self.run.expect(self.machine.closesAfterResponse, "shut down during a response that does not say it closes")
            }
        case .idleTimer(let seconds):
            self.now = self.now + .seconds(seconds)
            switch self.machine.idleTimerFired(now: self.now, timeout: Self.timeout) {
            case .none:
                self.idleTimerArmed = false
                self.run.note("idle timer +\(seconds) s: none")
            case .reschedule:
                self.run.note("idle timer +\(seconds) s: reschedule")
            case .close:
                self.run.note("idle timer +\(seconds) s: close")
                self.run.expect(self.exchange.map(\.responseEnded) ?? true, "the idle timer closed a connection with a response under way")
                self.run.expect(self.started.count == self.headsReceived, "the idle timer closed a connection with requests waiting")
                self.machine.idleTimedOut()
                self.closeChannel(cause: "idle timeout")
            }
        }
    }

    private var headsReceived: Int {
        self.input[..<self.inputSent].reduce(0) { count, input in
            if case .head = input { return count + 1 }
            return count
        }
    }

    // MARK: - The handler's side

    /// NIO asks to read: it goes ahead unless the machine holds it.
    private mutating func nioRead() {
        if self.machine.readRequested() { self.grantRead("read requested") } else { self.run.note("read requested: held") }
    }

    private mutating func grantRead(_ why: String) {
        self.run.note("\(why): read goes ahead")
        self.run.expect(!self.closed, "a read let through on a closed connection")
        self.readOutstanding = true
    }

    private mutating func receive(_ input: Input) {
        let action: Machine.Action
        switch input {
        case .head(let request):
            action = self.machine.receivedHead(HTTPRequestHead(version: .http1_1, method: .POST, uri: "/r/\(request)"))
        case .body(let request, let part):
            action = self.machine.receivedBody(ByteBuffer(string: "\(request).\(part)"))
        case .end(let request):
            self.endsReceived.insert(request)
            action = self.machine.receivedEnd(nil, now: self.now)
        case .malformed:
            self.malformedSentAfter = self.endsReceived
            action = self.machine.receivedMalformedInput()
        case .refusedHead:
            self.malformedSentAfter = self.endsReceived
            action = self.machine.receivedUnanswerable(.tooManyHeaders(limit: 1, endpoint: nil))
        }
        self.perform(action, after: "received \(input)")
    }

    private mutating func perform(_ action: Machine.Action, after event: String) {
        self.run.note("\(event) -> \(action)")
        if self.closed {
            self.run.expect(action == .none, "\(action) after the connection closed")
            return
        }
        switch action {
        case .none:
            break
        case .startExchange(let head):
            let request = Int(head.uri.dropFirst(3))!
            self.run.expect(self.exchange.map(\.responseEnded) ?? true, "request \(request) started while another is answered")
            self.run.expect(request == self.started.count, "request \(request) started out of order (\(self.started))")
            self.run.expect(!self.quiesced, "request \(request) started after shutdown began")
            self.started.append(request)
            self.exchange = Exchange(request: request)
        case .forwardBody(let part):
            guard var exchange = self.liveExchange("body") else { break }
            let expected = "\(exchange.request).\(exchange.partsForwarded)"
            self.run.expect(String(buffer: part) == expected && !exchange.endForwarded, "forwarded \(String(buffer: part)), expected \(expected)")
            exchange.partsForwarded += 1
            self.exchange = exchange
        case .forwardEnd:
            guard var exchange = self.liveExchange("end") else { break }
            self.run.expect(
                exchange.partsForwarded == self.requestParts[exchange.request] && !exchange.endForwarded,
                "end of request \(exchange.request) forwarded after \(exchange.partsForwarded) of \(self.requestParts[exchange.request]) parts"
            )
            exchange.endForwarded = true
            self.exchange = exchange
        case .awaitNextRequest:
            self.idleTimerArmed = true
        case .refuseAndClose:
            self.run.expect(self.exchange.map(\.responseEnded) ?? true, "a refusal written over a response under way")
            self.closeChannel(cause: event)
        case .failRequestBody:
            // What the handler does: the exchange answers 400 (or cuts its response), and the connection closes.
            guard self.liveExchange("a malformed body") != nil else { break }
            self.run.expect(!self.exchange!.endForwarded, "a malformed body after its request's end")
            self.endResponse(closeConnection: true)
        case .close:
            self.closeChannel(cause: event)
        }
    }

    private mutating func liveExchange(_ what: String) -> Exchange? {
        guard let exchange = self.exchange, !exchange.responseEnded else {
            self.run.fail("request \(what) forwarded with no exchange to take it")
            return nil
        }
        return exchange
    }

    /// What `ProxyConnectionHandler.endResponse` does.
    private mutating func endResponse(closeConnection: Bool) {
        self.exchange!.responseEnded = true
        let mustClose = self.machine.closesAfterResponse
        let action = self.machine.responseEnded(closeConnection: closeConnection, now: self.now)
        if closeConnection || mustClose {
            self.run.expect(action == .close, "a response that closes the connection ended with \(action)")
        }
        self.perform(action, after: "response ended (close \(closeConnection))")
        guard !self.closed else { return }
        while let next = self.machine.nextPipelined(now: self.now) {
            self.perform(next, after: "next pipelined")
        }
        if self.machine.takePendingRead() { self.grantRead("pipeline drained") }
    }

    private mutating func closeChannel(cause: String) {
        guard !self.closed else { return }
        self.closed = true
        self.closeCause = cause
        self.machine.closed()
        if self.exchange != nil { self.exchange!.responseEnded = true }
        self.run.note("closed: \(cause)")
        self.run.expect(self.machine.isClosed, "closed, but the machine does not know")
        self.run.expect(self.machine.nextPipelined(now: self.now) == nil, "pipelined input handed out after close")
        self.run.expect(!self.machine.takePendingRead(), "a read let through after close")
    }

    // MARK: - At the end

    private mutating func checkEnd() {
        if !self.closed {
            // Nothing is lost while the connection lives: every request was started, in order, whole.
            self.run.expect(self.started == Array(0..<self.requestParts.count), "requests started \(self.started) of \(self.requestParts.count)")
            if self.input.last.map({ if case .malformed = $0 { true } else { false } }) == true {
                self.run.fail("bytes that are not HTTP were answered without closing")
            }
            if self.input[..<self.inputSent].contains(where: { if case .refusedHead = $0 { true } else { false } }) {
                self.run.fail("a refused head was answered without closing")
            }
        } else if self.closeCause == "received malformed" || self.closeCause?.hasPrefix("received refusedHead") == true
            || self.closeCause == "next pipelined", !self.quiesced
        {
            // Requests that came whole before the bytes that are not HTTP are still answered.
            for request in self.malformedSentAfter.sorted() where !self.started.contains(request) {
                self.run.fail("request \(request) came whole before the bad bytes but was never answered")
            }
        }
        for request in self.started.dropLast() {
            self.run.expect(request < self.requestParts.count, "unknown request \(request) started")
        }
    }
}
