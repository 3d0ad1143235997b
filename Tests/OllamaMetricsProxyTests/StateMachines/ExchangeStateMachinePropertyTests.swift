import NIOCore
import NIOHTTP1
import Testing

@testable import OllamaMetricsProxy

/// `ExchangeStateMachine` driven by random sequences of the events the real world can produce in each state
/// (the client's body, end and hang-up; connections that come, fail, get reset or turn out stale; Ollama's
/// heads, chunks, ends and closes; backpressure both ways), with the invariants checked after every step.
/// The world here plays the client, the pool, Ollama and `ProxyConnectionHandler`'s side of the contract.
@Suite struct ExchangeStateMachinePropertyTests {
    @Test func randomEventSequencesKeepEveryExchangeInvariant() {
        PropertyRuns.check("randomEventSequencesKeepEveryExchangeInvariant", defaultRuns: 3000, playing: ExchangeWorld.self)
    }
}

/// The world around one exchange, and what it saw the exchange do.
private struct ExchangeWorld: RandomWorld {
    var run: PropertyRun
    let plan: RandomExchangePlan
    var machine: ExchangeStateMachine

    /// A connection the pool handed to the exchange, as Ollama sees it.
    struct Connection {
        var reused: Bool
        var writable = true
        var readsPaused = false
        var headSent = false
        var bodySent: [UInt8] = []
        var endSent = false
        var endFlushed = false
        var informationalDelivered = false
        var finalHeadDelivered = false
        var partsDelivered = 0
        var gone: Gone?

        enum Gone: Equatable { case released, closedByProxy, closedByOllama }
    }

    var connections: [Connection] = []
    var held: Int?
    var acquiresPending = 0

    var clientPartsSent = 0
    var clientEndSent = false
    var clientGone = false
    var clientWritable = true
    var clientReadsHeld = false

    /// What the client got.
    var finalHeadWritten: HTTPResponseHead?
    var clientBody: [UInt8] = []
    var proxyAnswered = false
    var responseOver: ResponseOver?
    enum ResponseOver: Equatable { case finished, answeredByProxy, aborted }

    var lifecycle: [String] = []
    var began = 0
    var ended = 0
    var requestEnded = 0

    init(run: PropertyRun) {
        self.run = run
        self.plan = RandomExchangePlan.make(index: 0, random: &self.run.random)
        self.machine = ExchangeStateMachine(
            head: self.plan.head, upstream: try! UpstreamURL(parsing: "http://ollama.local:11434"),
            clientAddress: "192.0.2.1", maxInspectedRequestBody: self.plan.maxInspectedRequestBody
        )
    }

    private var requestOver: Bool { self.responseOver != nil || self.clientGone }

    // MARK: - Playing

    mutating func play() {
        self.run.note("plan: \(self.plan.head.method) \(self.plan.head.uri) body \(self.plan.body.count) B in \(self.plan.bodyParts.count), max \(self.plan.maxInspectedRequestBody), answer \(self.plan.responseHead.status.code) \(self.plan.responseBody.count) B in \(self.plan.responseParts.count)")
        self.perform(self.machine.start(), after: "start")
        let randomSteps = self.run.random.int(in: 1...60)
        for _ in 0..<randomSteps {
            let events = self.possibleEvents(cooperative: false)
            guard let event = self.run.random.weighted(events) else { break }
            self.apply(event)
        }
        // From here on the world cooperates: with nobody hanging up or failing, the exchange must finish.
        var steps = 0
        while !self.isSettled {
            let events = self.possibleEvents(cooperative: true)
            guard let event = self.run.random.weighted(events) else { break }
            self.apply(event)
            steps += 1
            if steps > 500 { break }
        }
        if !self.isSettled {
            self.run.fail("stalled: no progress with a cooperating client and Ollama (\(self.stateDescription))")
            if !self.clientGone { self.apply(.clientHangUp) }
            while self.acquiresPending > 0 { self.apply(.connected(reused: false)) }
        }
        self.checkEnd()
    }

    private var isSettled: Bool {
        self.machine.isFinished && self.acquiresPending == 0 && self.held == nil
    }

    private var stateDescription: String {
        "finished \(self.machine.isFinished), acquires \(self.acquiresPending), held \(self.held.map(String.init) ?? "-"), client parts \(self.clientPartsSent)/\(self.plan.bodyParts.count) end \(self.clientEndSent) readsHeld \(self.clientReadsHeld)"
    }

    enum Event {
        case clientBody, clientEnd, clientReadComplete, clientWritable(Bool), clientHangUp, clientMalformedBody
        case connected(reused: Bool), connectFailed
        case upstreamWritable(Bool), upstreamInformational, upstreamHead, upstreamBody(parts: Int), upstreamReadComplete
        case upstreamEnd, upstreamClosed
    }

    /// The events that can happen now, weighted. `cooperative`: only those that move the exchange on.
    private mutating func possibleEvents(cooperative: Bool) -> [(weight: Int, value: Event)] {
        var events: [(weight: Int, value: Event)] = []
        let random = !cooperative
        let hazard = self.run.hazard
        if !self.requestOver {
            let partsLeft = self.clientPartsSent < self.plan.bodyParts.count
            // A read burst already under way still delivers after reads were held.
            let canRead = !self.clientReadsHeld || random
            let weight = self.clientReadsHeld ? 1 : 10
            if partsLeft && canRead { events.append((weight, .clientBody)) }
            if !partsLeft && !self.clientEndSent && canRead { events.append((weight, .clientEnd)) }
        }
        if !self.clientGone {
            if random {
                events.append((4, .clientReadComplete))
                events.append((3, .clientWritable(!self.clientWritable)))
                events.append((hazard, .clientHangUp))
                if !self.requestOver && !self.clientEndSent { events.append((hazard, .clientMalformedBody)) }
            } else if !self.clientWritable {
                events.append((5, .clientWritable(true)))
            }
        }
        if self.acquiresPending > 0 {
            if random {
                events.append((8, .connected(reused: self.run.random.bool())))
                events.append((hazard, .connectFailed))
            } else {
                events.append((4, .connected(reused: false)))
            }
        }
        if let held = self.held {
            let connection = self.connections[held]
            if random { events.append((2, .upstreamWritable(!connection.writable))) } else if !connection.writable {
                events.append((5, .upstreamWritable(true)))
            }
            if random { events.append((hazard, .upstreamClosed)) }
            // Ollama answers what it has seen: in random runs as soon as the head arrived (it may answer before
            // the body), when cooperating once the whole request was flushed to it.
            let mayAnswer = connection.headSent && (random || connection.endFlushed)
            let canRead = !connection.readsPaused || (random && self.run.random.oneIn(4))
            if mayAnswer && canRead {
                if !connection.finalHeadDelivered {
                    if self.plan.informational != nil, !connection.informationalDelivered {
                        events.append((6, .upstreamInformational))
                    }
                    events.append((8, .upstreamHead))
                } else if connection.partsDelivered < self.plan.responseParts.count {
                    events.append((10, .upstreamBody(parts: self.run.random.int(in: 1...3))))
                } else {
                    events.append((8, .upstreamEnd))
                }
                events.append((random ? 2 : 1, .upstreamReadComplete))
            }
        }
        return events
    }

    mutating func apply(_ event: Event) {
        switch event {
        case .clientBody:
            let part = self.plan.bodyParts[self.clientPartsSent]
            self.clientPartsSent += 1
            self.perform(self.machine.clientSentBody(part), after: "client body \(part.readableBytes) B")
        case .clientEnd:
            self.clientEndSent = true
            self.perform(self.machine.clientSentEnd(trailers: nil), after: "client end")
        case .clientReadComplete:
            self.perform(self.machine.clientReadComplete(), after: "client read complete")
        case .clientWritable(let writable):
            self.clientWritable = writable
            self.perform(self.machine.clientWritabilityChanged(isWritable: writable), after: "client writable \(writable)")
        case .clientHangUp:
            self.clientGone = true
            self.perform(self.machine.clientClosed(), after: "client hung up")
        case .clientMalformedBody:
            // NIO's decoder rejected the rest of the body: the proxy refuses the request, then closes the client.
            let refusal = ClientRefusal.malformedRequestBody(endpoint: nil).response
            self.perform(self.machine.clientSentMalformedBody(response: refusal), after: "client body malformed")
            self.clientGone = true
        case .connected(let reused):
            self.acquiresPending -= 1
            self.connections.append(Connection(reused: reused, readsPaused: !self.clientWritable))
            self.held = self.connections.count - 1
            self.perform(self.machine.connected(reused: reused), after: "connected #\(self.held!) reused \(reused)")
        case .connectFailed:
            self.acquiresPending -= 1
            self.perform(self.machine.connectFailed(reason: "connection refused"), after: "connect failed")
        case .upstreamWritable(let writable):
            self.connections[self.held!].writable = writable
            self.perform(self.machine.upstreamWritabilityChanged(isWritable: writable), after: "upstream writable \(writable)")
        case .upstreamInformational:
            self.connections[self.held!].informationalDelivered = true
            self.perform(self.machine.upstreamReceivedHead(self.plan.informational!), after: "upstream 103")
        case .upstreamHead:
            self.connections[self.held!].finalHeadDelivered = true
            self.perform(self.machine.upstreamReceivedHead(self.plan.responseHead), after: "upstream head \(self.plan.responseHead.status.code)")
        case .upstreamBody(let parts):
            for _ in 0..<parts {
                guard let held = self.held, self.connections[held].partsDelivered < self.plan.responseParts.count else { break }
                let part = self.plan.responseParts[self.connections[held].partsDelivered]
                self.connections[held].partsDelivered += 1
                self.perform(self.machine.upstreamReceivedBody(part), after: "upstream body \(part.readableBytes) B")
            }
            if self.held != nil { self.perform(self.machine.upstreamReadComplete(), after: "upstream read complete") }
        case .upstreamReadComplete:
            self.perform(self.machine.upstreamReadComplete(), after: "upstream read complete")
        case .upstreamEnd:
            self.perform(self.machine.upstreamReceivedEnd(trailers: nil), after: "upstream end")
        case .upstreamClosed:
            // The connection reports its end once and is gone: the exchange must not dispose of it again.
            self.connections[self.held!].gone = .closedByOllama
            self.held = nil
            self.perform(self.machine.upstreamClosed(reason: "connection reset"), after: "upstream closed")
        }
    }

    // MARK: - Carrying out actions, checking each

    private mutating func perform(_ action: ExchangeStateMachine.Action, after event: String) {
        self.run.note("\(event) -> \(action.io) \(Self.names(action.events))")
        self.record(action.events)
        let wasOver = self.responseOver != nil
        switch action.io {
        case .none:
            break
        case .acquireConnection:
            self.run.expect(self.held == nil && self.acquiresPending == 0, "a connection asked for while one is held or coming")
            self.run.expect(!self.machine.isFinished, "a connection asked for by a finished exchange")
            self.acquiresPending += 1
        case .sendRequest(let head, let body, let end):
            guard let held = self.requireHeld("sendRequest") else { break }
            self.run.expect(!self.connections[held].headSent, "the request head sent twice on one connection")
            self.run.expect(head.uri == self.plan.head.uri && head.method == self.plan.head.method, "the head sent is not the client's")
            self.connections[held].headSent = true
            if let body { self.connections[held].bodySent += Array(body.readableBytesView) }
            if end != nil { self.sentEnd(on: held, flushed: true) }
            // What `ProxyConnectionHandler` does right after sending.
            let writable = self.connections[held].writable
            self.perform(self.machine.upstreamWritabilityChanged(isWritable: writable), after: "(handler) upstream writable \(writable)")
        case .writeUpstreamBody(let part):
            guard let held = self.requireHeld("writeUpstreamBody") else { break }
            self.run.expect(self.connections[held].headSent && !self.connections[held].endSent, "body written upstream outside the request")
            self.connections[held].bodySent += Array(part.readableBytesView)
        case .endUpstreamRequest:
            guard let held = self.requireHeld("endUpstreamRequest") else { break }
            self.run.expect(self.connections[held].headSent && !self.connections[held].endSent, "request end written upstream twice or before its head")
            self.sentEnd(on: held, flushed: true)
        case .flushUpstream:
            _ = self.requireHeld("flushUpstream")
        case .holdClientReads(let held):
            self.clientReadsHeld = held
        case .pauseUpstreamReads(let paused):
            guard let held = self.requireHeld("pauseUpstreamReads") else { break }
            self.connections[held].readsPaused = paused
        case .disposeConnection(let disposal):
            self.dispose(disposal, "disposeConnection")
        case .writeClientHead(let head):
            self.writeClientHead(head)
        case .writeClientBody(let body):
            self.run.expect(self.finalHeadWritten != nil && !wasOver, "response body written outside a response")
            if let body { self.clientBody += Array(body.readableBytesView) }
        case .finishResponse(let body, _, let connection, _):
            self.run.expect(self.finalHeadWritten != nil && !wasOver, "a response finished that was not under way")
            if let body { self.clientBody += Array(body.readableBytesView) }
            self.dispose(connection, "finishResponse")
            self.responseOver = .finished
        case .respond(let head, _, _):
            self.run.expect(self.finalHeadWritten == nil && !wasOver, "the proxy answered over Ollama's answer")
            self.run.expect(head.status == .badGateway, "the proxy's own answer is a 502")
            self.finalHeadWritten = head
            self.proxyAnswered = true
            self.responseOver = .answeredByProxy
        case .refuseRequest(let head, _, let connection):
            self.run.expect(self.finalHeadWritten == nil && !wasOver, "the proxy refused a request Ollama answered")
            self.run.expect(head.status == .badRequest, "the refusal of a malformed body is a 400")
            if self.held != nil { self.dispose(connection, "refuseRequest") }
            self.finalHeadWritten = head
            self.proxyAnswered = true
            self.responseOver = .answeredByProxy
        case .abortResponse(let body):
            self.run.expect(self.finalHeadWritten != nil && !wasOver, "a response cut short that was not under way")
            // Still held only when the request broke off: then it is closed, so that Ollama stops.
            if self.held != nil { self.dispose(.close, "abortResponse") }
            if let body { self.clientBody += Array(body.readableBytesView) }
            self.responseOver = .aborted
        case .closeUpstream:
            self.dispose(.close, "closeUpstream")
        }
        if wasOver || self.clientGone {
            switch action.io {
            case .none, .disposeConnection(.release), .holdClientReads, .pauseUpstreamReads, .flushUpstream, .closeUpstream:
                break
            default:
                if self.clientGone && !wasOver {
                    self.run.fail("client I/O after the client hung up: \(action.io)")
                } else if wasOver {
                    self.run.fail("I/O after the response was over: \(action.io)")
                }
            }
        }
    }

    private mutating func requireHeld(_ what: String) -> Int? {
        guard let held = self.held else {
            self.run.fail("\(what) without a connection held")
            return nil
        }
        return held
    }

    private mutating func sentEnd(on held: Int, flushed: Bool) {
        self.connections[held].endSent = true
        self.connections[held].endFlushed = flushed
        let expected = self.plan.expectedUpstreamBody
        self.run.expect(
            self.connections[held].bodySent == expected,
            "Ollama got a request body of \(self.connections[held].bodySent.count) B, not the \(expected.count) B expected"
        )
    }

    private mutating func dispose(_ disposal: ExchangeStateMachine.ConnectionDisposal, _ what: String) {
        guard let held = self.requireHeld(what) else { return }
        self.run.expect(self.connections[held].gone == nil, "connection #\(held) disposed of twice")
        self.connections[held].gone = disposal == .release ? .released : .closedByProxy
        if disposal == .release {
            let connection = self.connections[held]
            let clean = !connection.headSent || (connection.endSent && self.responseOver == nil)
            self.run.expect(clean, "connection #\(held) returned to the pool in the middle of an exchange")
        }
        self.held = nil
    }

    private mutating func writeClientHead(_ head: HTTPResponseHead) {
        self.run.expect(self.responseOver == nil && !self.clientGone, "a head written after the response was over")
        if head.status.code < 200 {
            self.run.expect(self.finalHeadWritten == nil, "an informational head after the final one")
            return
        }
        self.run.expect(self.finalHeadWritten == nil, "two final heads for one request")
        self.finalHeadWritten = head
    }

    private mutating func record(_ events: InferenceLifecycleEvents) {
        guard !events.isEmpty else { return }
        self.run.expect(self.requestEnded == 0, "lifecycle events \(Self.names(events)) after the request ended")
        if events.contains(.began) {
            self.run.expect(self.began == 0, "began twice")
            self.began += 1
        }
        let inferenceEvents: InferenceLifecycleEvents = [.upstreamConnected, .responseHead, .firstContent, .usage, .ended]
        if !events.isDisjoint(with: inferenceEvents) {
            self.run.expect(self.began == 1, "inference events \(Self.names(events)) without a beginning")
            self.run.expect(self.machine.inference != nil, "inference events without an inference")
        }
        if events.contains(.usage) {
            self.run.expect(!self.lifecycle.contains("usage"), "usage reported twice")
            self.run.expect(self.machine.inference?.usage != nil, "usage event without a usage")
        }
        if events.contains(.firstContent) { self.run.expect(!self.lifecycle.contains("firstContent"), "first content reported twice") }
        if events.contains(.responseHead) { self.run.expect(!self.lifecycle.contains("responseHead"), "response head reported twice") }
        if events.contains(.ended) {
            self.ended += 1
            self.run.expect(events.contains(.requestEnded), "the inference ended without its request")
            self.run.expect(self.machine.inferenceEnding != nil, "ended without an ending")
        }
        if events.contains(.requestEnded) {
            self.requestEnded += 1
            self.run.expect(self.machine.isFinished, "the request ended but the exchange goes on")
            self.run.expect(self.machine.requestEnding != nil, "requestEnded without an ending")
            self.run.expect(self.began == self.ended, "the request ended with its inference still open")
        }
        self.lifecycle += Self.names(events)
    }

    static func names(_ events: InferenceLifecycleEvents) -> [String] {
        let all: [(InferenceLifecycleEvents, String)] = [
            (.began, "began"), (.upstreamConnected, "upstreamConnected"), (.responseHead, "responseHead"),
            (.firstContent, "firstContent"), (.usage, "usage"), (.ended, "ended"), (.requestEnded, "requestEnded"),
        ]
        return all.filter { events.contains($0.0) }.map(\.1)
    }

    // MARK: - At the end

    private mutating func checkEnd() {
        self.run.expect(self.machine.isFinished, "the exchange never finished")
        self.run.expect(self.requestEnded == 1, "the request ended \(self.requestEnded) times")
        self.run.expect(self.began <= 1 && self.ended == self.began, "began \(self.began) times, ended \(self.ended) times")
        self.run.expect(self.began == 1 || !self.plan.isInference || self.requestEndedBeforeBody, "an inference request ended without beginning")
        self.run.expect(self.acquiresPending == 0 && self.held == nil, "a connection left over")
        for (number, connection) in self.connections.enumerated() {
            self.run.expect(connection.gone != nil, "connection #\(number) leaked")
        }
        let attempts = self.connections.filter(\.headSent)
        self.run.expect(attempts.count <= 2, "the request was sent \(attempts.count) times")
        if attempts.count == 2 {
            self.run.expect(attempts[0].reused && !attempts[0].finalHeadDelivered, "a request sent again after a fresh connection or an answer")
        }
        guard let ending = self.machine.requestEnding else { return }
        self.run.expect(
            ending.responseBodyBytes == (self.proxyAnswered ? 0 : self.clientBody.count),
            "response bytes counted \(ending.responseBodyBytes), forwarded \(self.clientBody.count)"
        )
        self.run.expect(ending.status == self.finalHeadWritten.map { Int($0.status.code) }, "the status counted is not the one sent")
        if let inference = self.machine.inferenceEnding {
            self.run.expect(inference.responseBodyBytes == ending.responseBodyBytes, "inference and request disagree on bytes")
            if self.lifecycle.contains("usage") { self.run.expect(inference.outcome == .completed, "a usage went by but the outcome is \(inference.outcome)") }
        }
        if self.responseOver == .finished, let held = self.connections.lastIndex(where: { $0.finalHeadDelivered }) {
            let connection = self.connections[held]
            if connection.partsDelivered == self.plan.responseParts.count {
                self.run.expect(
                    self.clientBody == self.plan.expectedForwarded,
                    "the client got \(self.clientBody.count) B of a complete answer, not the \(self.plan.expectedForwarded.count) B expected"
                )
            }
            self.run.expect(
                ending.requestBodyBytes == connection.bodySent.count,
                "request bytes counted \(ending.requestBodyBytes), sent \(connection.bodySent.count)"
            )
            if self.plan.isInference, self.plan.responseHead.status == .ok, !self.lifecycle.contains("usage") {
                self.run.expect(self.machine.inferenceEnding?.outcome != .completed, "completed without a usage")
            }
        }
    }

    /// An inference request whose client hung up before its body was read has no inference life.
    private var requestEndedBeforeBody: Bool {
        self.clientGone && self.began == 0
    }
}
