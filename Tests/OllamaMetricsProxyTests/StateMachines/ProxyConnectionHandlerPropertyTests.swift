import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import OllamaMetricsProxy

/// The real `ProxyConnectionHandler`, on one or two client `EmbeddedChannel`s sharing a stand-in pool of
/// embedded connections to Ollama, driven by random interleavings of what sockets can bring: pipelined
/// requests in read bursts of any size, bodies, bytes that are not HTTP, hang-ups and resets; connections
/// that come late, fail at once or later, are reused, or die in the pool; Ollama's heads, chunks, ends,
/// closes and errors at every phase; backpressure both ways; and shutdown. Reads are modelled as NIO does
/// them: bytes arrive only after a `read()` reached the socket. Every client and every connection to Ollama
/// is checked after the run, with the real `MetricsRecorder` and its Prometheus registry.
@Suite struct ProxyConnectionHandlerPropertyTests {
    @Test func randomInterleavingsKeepEveryProxyInvariant() {
        PropertyRuns.check("randomInterleavingsKeepEveryProxyInvariant", defaultRuns: 1000, playing: ProxyWorld.self)
    }
}

// MARK: - The world

private final class ProxyWorld: RandomWorld {
    var run: PropertyRun
    let loop = EmbeddedEventLoop()
    let metrics = ProxyMetrics()
    private(set) var clients: [Client] = []
    private(set) var upstreams: [Upstream] = []
    var pool: ScriptedPool!

    init(run: PropertyRun) {
        self.run = run
        self.pool = ScriptedPool(world: self)
        let clientCount = self.run.random.oneIn(3) ? 2 : 1
        for number in 0..<clientCount {
            let limit = RandomExchangePlan.randomInspectionLimit(&self.run.random)
            let plans = (0..<self.run.random.int(in: 1...4)).map {
                RandomExchangePlan.make(index: $0, client: number, maxInspectedRequestBody: limit, random: &self.run.random)
            }
            self.clients.append(Client(world: self, number: number, plans: plans))
        }
    }

    func note(_ text: @autoclosure () -> String) { self.run.note(text()) }
    func fail(_ text: String) { self.run.fail(text) }
    func expect(_ condition: Bool, _ text: @autoclosure () -> String) { self.run.expect(condition, text()) }

    // MARK: Playing

    func play() {
        for client in self.clients { client.connect() }
        for _ in 0..<self.run.random.int(in: 1...80) {
            let events = self.possibleEvents(cooperative: false)
            guard let event = self.run.random.weighted(events) else { break }
            self.apply(event)
        }
        // The world cooperates from here: nobody hangs up or fails, and Ollama answers whole requests.
        var steps = 0
        while steps < 1000 {
            let events = self.possibleEvents(cooperative: true)
            guard let event = self.run.random.weighted(events) else { break }
            self.apply(event)
            steps += 1
        }
        for client in self.clients { client.checkAnsweredWhileOpen() }
        // Then every client leaves, and every connection still coming is handed over.
        for client in self.clients where !client.isClosed { self.apply(.hangUp(client.number)) }
        while !self.pool.pending.isEmpty { self.apply(.connectSucceeds) }
        self.loop.run()
        for client in self.clients { client.checkEnd() }
        for upstream in self.upstreams { upstream.checkEnd() }
        self.checkMetrics()
    }

    enum Event {
        case burst(Int, parts: Int), clientWritable(Int, Bool), hangUp(Int), reset(Int), quiesce(Int)
        case connectSucceeds, connectFails
        case ollamaBurst(Int, items: Int), ollamaWritable(Int, Bool), ollamaCloses(Int), ollamaFails(Int)
    }

    private func possibleEvents(cooperative: Bool) -> [(weight: Int, value: Event)] {
        var events: [(weight: Int, value: Event)] = []
        let hazard = self.run.hazard
        for client in self.clients where !client.isClosed {
            let number = client.number
            if client.canSend { events.append((10, .burst(number, parts: self.run.random.int(in: 1...5)))) }
            if cooperative {
                if !client.channel.isWritable { events.append((4, .clientWritable(number, true))) }
            } else {
                events.append((3, .clientWritable(number, !client.channel.isWritable)))
                events.append((hazard, .hangUp(number)))
                events.append((hazard, .reset(number)))
                if !client.quiesced { events.append((hazard, .quiesce(number))) }
            }
        }
        if !self.pool.pending.isEmpty {
            events.append((8, .connectSucceeds))
            if !cooperative { events.append((hazard, .connectFails)) }
        }
        for upstream in self.upstreams where upstream.channel.isActive {
            let number = upstream.number
            if upstream.canAnswer(cooperative: cooperative) { events.append((10, .ollamaBurst(number, items: self.run.random.int(in: 1...4)))) }
            if cooperative {
                if !upstream.channel.isWritable { events.append((4, .ollamaWritable(number, true))) }
            } else {
                if upstream.state == .leased { events.append((2, .ollamaWritable(number, !upstream.channel.isWritable))) }
                events.append((hazard, .ollamaCloses(number)))
                events.append((hazard, .ollamaFails(number)))
            }
        }
        return events
    }

    private func apply(_ event: Event) {
        switch event {
        case .burst(let number, let parts): self.clients[number].sendBurst(parts: parts)
        case .clientWritable(let number, let writable): self.clients[number].setWritable(writable)
        case .hangUp(let number): self.clients[number].hangUp()
        case .reset(let number): self.clients[number].reset()
        case .quiesce(let number): self.clients[number].quiesce()
        case .connectSucceeds: self.pool.resolve(self.run.random.below(self.pool.pending.count), succeeding: true)
        case .connectFails: self.pool.resolve(self.run.random.below(self.pool.pending.count), succeeding: false)
        case .ollamaBurst(let number, let items): self.upstreams[number].answer(items: items)
        case .ollamaWritable(let number, let writable): self.upstreams[number].setWritable(writable)
        case .ollamaCloses(let number): self.upstreams[number].ollamaCloses(error: false)
        case .ollamaFails(let number): self.upstreams[number].ollamaCloses(error: true)
        }
        self.loop.run()
        for client in self.clients { client.collectOutput() }
    }

    func newUpstream() -> Upstream {
        let upstream = Upstream(world: self, number: self.upstreams.count)
        self.upstreams.append(upstream)
        return upstream
    }

    func upstream(for connection: UpstreamConnection) -> Upstream {
        self.upstreams.first { $0.connection === connection }!
    }

    func plan(id: String) -> RandomExchangePlan? {
        let numbers = id.split(separator: ".").compactMap { Int($0) }
        guard numbers.count == 2, numbers[0] < self.clients.count, numbers[1] < self.clients[numbers[0]].plans.count else { return nil }
        return self.clients[numbers[0]].plans[numbers[1]]
    }

    // MARK: Metrics

    private func checkMetrics() {
        let text = String(decoding: self.metrics.exposition(), as: UTF8.self)
        func sum(_ family: String) -> Double {
            text.split(separator: "\n").filter { $0.hasPrefix(family + "{") }.reduce(0) { total, line in
                total + (line.split(separator: " ").last.flatMap { Double($0) } ?? .nan)
            }
        }
        let completed = self.clients.reduce(0) { $0 + $1.inference.completed }
        let failed = self.clients.reduce(0) { $0 + $1.inference.failed }
        let began = self.clients.reduce(0) { $0 + $1.inference.listeners.count }
        self.expect(sum("ollama_active_requests") == 0, "ollama_active_requests is \(sum("ollama_active_requests")) with everything over")
        self.expect(sum("ollama_requests_total") == Double(completed), "ollama_requests_total \(sum("ollama_requests_total")), completed \(completed)")
        self.expect(
            sum("ollama_request_failures_total") == Double(failed),
            "ollama_request_failures_total \(sum("ollama_request_failures_total")), failed \(failed)"
        )
        self.expect(completed + failed == began, "\(began) inference requests began, \(completed) completed, \(failed) failed")
    }
}

// MARK: - A client connection

private final class Client {
    unowned let world: ProxyWorld
    let number: Int
    let plans: [RandomExchangePlan]
    let channel: EmbeddedChannel
    let handler: ProxyConnectionHandler
    let inference = RecordingInferenceObserver()
    let requests = RecordingRequestObserver()
    private let recorder: ClientSocketRecorder

    /// What the client sends, in order; it may end with bytes that are not HTTP.
    enum Input { case part(HTTPServerRequestPart), malformed }
    private var input = SocketQueue<Input>()
    private var headsSent = 0
    private var malformedSent = false
    var readOutstanding = false
    var quiesced = false
    /// The proxy asked to close this connection, or the client left.
    var closeRequested = false
    var isClosed: Bool { !self.channel.isActive }
    /// What the client read so far, as response parts.
    private var reader = ClientWireReader()
    /// Responses begun so far, for the method of the request each answers.
    private var responsesBegun = 0

    init(world: ProxyWorld, number: Int, plans: [RandomExchangePlan]) {
        self.world = world
        self.number = number
        self.plans = plans
        var logger = Logger(label: "property")
        logger.logLevel = .critical
        let shared = ProxySharedState(
            upstream: try! UpstreamURL(parsing: "http://ollama.local:11434"),
            observer: CompositeLifecycleObserver([MetricsRecorder(metrics: world.metrics), self.inference]),
            requestObserver: self.requests, logger: logger, requestHeadTimeout: .seconds(75),
            maxInspectedRequestBody: plans.first?.maxInspectedRequestBody ?? 1024 * 1024
        )
        self.handler = ProxyConnectionHandler(shared: shared, upstream: ClientPoolView(pool: world.pool, client: number))
        self.recorder = ClientSocketRecorder()
        self.channel = EmbeddedChannel(handlers: [self.recorder, self.handler], loop: world.loop)
        self.recorder.client = self
        for plan in plans {
            self.input.parts.append(.part(.head(plan.head)))
            for part in plan.bodyParts { self.input.parts.append(.part(.body(part))) }
            self.input.parts.append(.part(.end(nil)))
        }
        if world.run.random.oneIn(6) {
            self.input.parts.removeSubrange(world.run.random.below(self.input.parts.count + 1)...)
            self.input.parts.append(.malformed)
        }
    }

    func connect() {
        _ = self.channel.connect(to: try! SocketAddress(ipAddress: "192.0.2.\(self.number + 1)", port: 50000))
        self.channel.read()  // autoRead's first read
    }

    var canSend: Bool { self.readOutstanding && !self.input.isEmpty && !self.closeRequested }

    func sendBurst(parts: Int) {
        self.readOutstanding = false
        var sent: [String] = []
        readBurst(on: self.channel, count: parts) {
            guard let input = self.input.next() else { return false }
            switch input {
            case .part(let part):
                if case .head = part { self.headsSent += 1 }
                sent.append(Self.describe(part))
                do { try self.channel.writeInbound(part) } catch { self.world.fail("client \(self.number): writeInbound threw \(error)") }
            case .malformed:
                sent.append("not HTTP")
                self.malformedSent = true
                self.channel.pipeline.fireErrorCaught(HTTPParserError.invalidMethod)
            }
            return true
        }
        self.world.note("client \(self.number) sent \(sent.joined(separator: ", "))")
    }

    static func describe(_ part: HTTPServerRequestPart) -> String {
        switch part {
        case .head(let head): "head \(head.method) \(head.uri) \(head.headers["x-req"].first ?? "")"
        case .body(let body): "body \(body.readableBytes) B"
        case .end: "end"
        }
    }

    func setWritable(_ writable: Bool) {
        self.world.note("client \(self.number) writable \(writable)")
        self.channel.isWritable = writable
        self.channel.pipeline.fireChannelWritabilityChanged()
    }

    func hangUp() {
        self.world.note("client \(self.number) hangs up")
        self.closeRequested = true
        self.recorder.clientLeaving = true
        _ = self.channel.close()
    }

    func reset() {
        self.world.note("client \(self.number) connection reset")
        self.channel.pipeline.fireErrorCaught(IOError(errnoCode: 104, reason: "read"))
        if self.channel.isActive { self.hangUp() }  // NIO closes a channel whose read failed
    }

    func quiesce() {
        self.world.note("client \(self.number) told to quiesce")
        self.quiesced = true
        self.channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
    }

    func collectOutput() {
        while let bytes = try? self.channel.readOutbound(as: ByteBuffer.self) {
            self.reader.read(bytes) {
                defer { self.responsesBegun += 1 }
                return self.responsesBegun < self.plans.count ? self.plans[self.responsesBegun].head.method : .GET
            }
        }
        for problem in self.reader.problems where !self.reportedReadProblem {
            self.reportedReadProblem = true
            self.world.fail("client \(self.number): \(problem)")
        }
    }

    private var reportedReadProblem = false

    /// The connection is gone: a response delimited by the close (to an HTTP/1.0 client) ended with it, when
    /// the proxy finished it; one cut short stays unfinished, as the client could not tell it was.
    func readClose() {
        guard let index = self.reader.parts.lastIndex(where: { if case .head(let head) = $0 { head.status.code >= 200 } else { false } }) else {
            return
        }
        let responseIndex = self.reader.parts[...index].filter { if case .head(let head) = $0 { head.status.code >= 200 } else { false } }.count - 1
        let completed = responseIndex < self.requests.listeners.count && self.requests.listeners[responseIndex].ending?.outcome == .completed
        if completed { self.reader.connectionClosed() }
    }

    // MARK: What the client got

    struct Response {
        var head: HTTPResponseHead
        var body: [UInt8] = []
        var ended = false
    }

    /// The final responses, in order (informational heads left out), and parts that belong to none.
    var responses: (responses: [Response], strayParts: Int) {
        var responses: [Response] = []
        var stray = 0
        for part in self.reader.parts {
            switch part {
            case .head(let head) where head.status.code >= 200:
                if let last = responses.last, !last.ended { stray += 1 }
                responses.append(Response(head: head))
            case .head:
                break
            case .body(let body):
                guard !responses.isEmpty, !responses[responses.count - 1].ended else {
                    stray += 1
                    continue
                }
                if case .byteBuffer(let bytes) = body { responses[responses.count - 1].body += Array(bytes.readableBytesView) }
            case .end:
                guard !responses.isEmpty, !responses[responses.count - 1].ended else {
                    stray += 1
                    continue
                }
                responses[responses.count - 1].ended = true
            }
        }
        return (responses, stray)
    }

    /// With the world cooperating and the connection open, every request the client sent was answered whole.
    func checkAnsweredWhileOpen() {
        guard !self.isClosed, !self.closeRequested else { return }
        let answered = self.responses.responses.filter(\.ended).count
        self.world.expect(
            self.input.isEmpty && answered == self.plans.count,
            "client \(self.number) stalled: sent \(self.input.delivered)/\(self.input.parts.count) parts, \(answered)/\(self.plans.count) answers, read outstanding \(self.readOutstanding)"
        )
    }

    func checkEnd() {
        self.collectOutput()
        if self.isClosed { self.readClose() }
        let (responses, stray) = self.responses
        let who = "client \(self.number)"
        self.world.expect(stray == 0, "\(who) got \(stray) response parts outside a response (a head over an unfinished one, a body or end after the end)")
        // Bytes that are not HTTP get NIO's 400 when nothing is left to answer before them.
        let badRequests = responses.count > self.headsSent && self.malformedSent ? 1 : 0
        self.world.expect(responses.count <= self.headsSent + badRequests, "\(who) got \(responses.count) responses to \(self.headsSent) requests")
        if badRequests == 1 {
            self.world.expect(responses.last!.head.status == .badRequest && responses.last!.ended, "\(who): bytes that are not HTTP were answered with \(responses.last!.head.status)")
        }
        for (index, response) in responses.enumerated() where index < min(self.plans.count, self.headsSent) {
            let plan = self.plans[index]
            if let id = response.head.headers["x-req"].first {
                self.world.expect(id == plan.id, "\(who) response \(index) answers request \(id): out of order")
            } else {
                // The proxy's own: a 502, or the 400 that ends a request whose body turned out not to be HTTP.
                let refusedBody = self.malformedSent && index == responses.count - 1 && response.head.status == .badRequest
                self.world.expect(
                    response.head.status == .badGateway || refusedBody,
                    "\(who) response \(index) is neither Ollama's, a 502, nor the 400 of a malformed body"
                )
            }
            if response.ended, response.head.headers["x-req"].first == plan.id {
                self.world.expect(
                    response.body == plan.expectedForwarded,
                    "\(who) request \(index): got \(response.body.count) B of a complete answer, expected \(plan.expectedForwarded.count) B"
                )
            }
            if let ending = index < self.requests.listeners.count ? self.requests.listeners[index].ending : nil {
                self.world.expect(ending.status == Int(response.head.status.code), "\(who) request \(index): status counted \(ending.status ?? -1), sent \(response.head.status.code)")
                if response.head.headers["x-req"].first != nil {  // not the proxy's own answer
                    self.world.expect(
                        ending.responseBodyBytes == response.body.count,
                        "\(who) request \(index): \(ending.responseBodyBytes) response bytes counted, \(response.body.count) forwarded"
                    )
                }
            }
        }
        // Every request received ends once; every inference that began ends once; nothing follows an end.
        self.world.expect(self.requests.listeners.count <= self.headsSent, "\(who): more requests received than sent")
        for (index, listener) in self.requests.listeners.enumerated() {
            self.world.expect(listener.endings == 1, "\(who) request \(index) ended \(listener.endings) times")
            for problem in listener.problems { self.world.fail("\(who) request \(index): \(problem)") }
        }
        for (index, listener) in self.inference.listeners.enumerated() {
            self.world.expect(listener.endings == 1, "\(who) inference \(index) ended \(listener.endings) times")
            for problem in listener.problems { self.world.fail("\(who) inference \(index): \(problem)") }
        }
        for problem in self.recorder.problems { self.world.fail("\(who): \(problem)") }
    }
}

/// Sits next to the client's socket: sees every read the proxy lets through, every write and the close.
private final class ClientSocketRecorder: ChannelOutboundHandler {
    typealias OutboundIn = ByteBuffer
    weak var client: Client?
    var clientLeaving = false
    private var closed = false
    private(set) var problems: [String] = []

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if self.closed { self.problems.append("a write after the connection was closed: \(self.unwrapOutboundIn(data).readableBytes) B") }
        context.write(data, promise: promise)
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        if !self.clientLeaving { self.client?.world.note("proxy closes client \(self.client?.number ?? -1)") }
        self.closed = true
        self.client?.closeRequested = true
        context.close(mode: mode, promise: promise)
    }

    func read(context: ChannelHandlerContext) {
        if self.closed { self.problems.append("a read let through after close") }
        self.client?.readOutstanding = true
        context.read()
    }
}

// MARK: - Lifecycle observers

/// One request's lifecycle events, with what breaks their documented order: nothing follows the end.
private class LifecycleRecord: InferenceLifecycleListener {
    var endings = 0
    var problems: [String] = []
    var inferenceOutcome: InferenceEnding.Outcome?

    func event(_ name: String) {
        if self.endings > 0 { self.problems.append("\(name) after the end") }
    }
    func upstreamConnected(reused: Bool) { self.event("upstreamConnected") }
    func responseHeadReceived(status: Int) { self.event("responseHead") }
    func firstContentForwarded() { self.event("firstContent") }
    func usageSeen(_ usage: Usage) { self.event("usage") }
    func ended(_ ending: InferenceEnding) {
        self.event("ended")
        if self.inferenceOutcome != nil { self.problems.append("the inference ended twice") }
        self.inferenceOutcome = ending.outcome
    }
}

/// Every inference request's events, per request.
private final class RecordingInferenceObserver: InferenceLifecycleObserver, @unchecked Sendable {
    final class Listener: LifecycleRecord {
        override func ended(_ ending: InferenceEnding) {
            super.ended(ending)
            self.endings += 1
        }
    }

    private(set) var listeners: [Listener] = []
    var completed: Int { self.listeners.filter { $0.inferenceOutcome == .completed }.count }
    var failed: Int { self.listeners.filter { if case .failed = $0.inferenceOutcome { true } else { false } }.count }

    func requestBegan(_ request: InferenceRequestStart) -> InferenceLifecycleListener {
        let listener = Listener()
        self.listeners.append(listener)
        return listener
    }
}

/// Every request's events, per request.
private final class RecordingRequestObserver: RequestLifecycleObserver, @unchecked Sendable {
    final class Listener: LifecycleRecord, RequestLifecycleListener {
        var inferenceBegan = false
        var ending: RequestEnding?

        func inferenceBegan(_ request: InferenceRequestStart) {
            self.event("inferenceBegan")
            if self.inferenceBegan { self.problems.append("inference began twice") }
            self.inferenceBegan = true
        }
        override func ended(_ ending: InferenceEnding) {
            super.ended(ending)
            if !self.inferenceBegan { self.problems.append("ended without inferenceBegan") }
        }
        func requestEnded(_ ending: RequestEnding) {
            self.event("requestEnded")
            if self.inferenceBegan && self.inferenceOutcome == nil { self.problems.append("requestEnded before the inference ended") }
            self.endings += 1
            self.ending = ending
        }
    }

    private(set) var listeners: [Listener] = []

    func requestReceived(_ request: RequestStart) -> any RequestLifecycleListener {
        let listener = Listener()
        self.listeners.append(listener)
        return listener
    }
}

// MARK: - The pool and Ollama

/// The shared pool as one client connection's handler uses it: the pool learns which client holds what.
private final class ClientPoolView: UpstreamConnectionSource {
    let pool: ScriptedPool
    let client: Int

    init(pool: ScriptedPool, client: Int) {
        self.pool = pool
        self.client = client
    }

    func acquire(_ body: @escaping ScriptedPool.Callback) { self.pool.acquire(for: self.client, body) }
    func release(_ connection: UpstreamConnection) { self.pool.release(connection, by: self.client) }
}

/// Hands out connections as `UpstreamConnectionPool` does: a live idle one at once (reused), else a new one
/// later (or a failure, later or at once, as when no socket can be had). Every client connection shares it.
private final class ScriptedPool {
    unowned let world: ProxyWorld
    typealias Callback = (Result<(connection: UpstreamConnection, reused: Bool), Error>) -> Void
    private(set) var pending: [(client: Int, body: Callback)] = []
    private var idle: [Upstream] = []

    init(world: ProxyWorld) { self.world = world }

    func acquire(for client: Int, _ body: @escaping Callback) {
        while let upstream = self.idle.popLast() {
            guard upstream.channel.isActive else { continue }
            upstream.lease(to: client)
            self.world.note("pool hands out idle connection #\(upstream.number)")
            body(.success((upstream.connection, true)))
            return
        }
        if self.world.run.hazard > 0, self.world.run.random.oneIn(8) {
            self.world.note("pool fails at once")
            body(.failure(IOError(errnoCode: 24, reason: "socket")))
            return
        }
        self.world.note("pool connects")
        self.pending.append((client, body))
    }

    func resolve(_ index: Int, succeeding: Bool) {
        let (client, body) = self.pending.remove(at: index)
        guard succeeding else {
            self.world.note("connect fails")
            body(.failure(IOError(errnoCode: 111, reason: "connect")))
            return
        }
        let upstream = self.world.newUpstream()
        upstream.lease(to: client)
        self.world.note("connected #\(upstream.number)")
        body(.success((upstream.connection, false)))
    }

    func release(_ connection: UpstreamConnection, by client: Int) {
        let upstream = self.world.upstream(for: connection)
        upstream.released(by: client)
        connection.delegate = nil
        connection.setReadsPaused(false)
        guard connection.isActive else {
            upstream.closingFromPool = true
            connection.close()
            return
        }
        self.idle.append(upstream)
    }
}

/// One connection to Ollama: its lease as the pool sees it, what Ollama received on it, and Ollama's answer.
private final class Upstream {
    unowned let world: ProxyWorld
    let number: Int
    let channel: EmbeddedChannel
    let connection: UpstreamConnection

    enum State: Equatable { case leased, pooled, closedByProxy, closedByOllama }
    var state = State.leased
    /// The client connection that holds (or last held) it.
    var lessee = -1
    var readOutstanding = false
    /// Written by the proxy, not yet flushed: Ollama has not seen it.
    var unflushed: [HTTPClientRequestPart] = []
    /// The request Ollama is reading or answering on this connection.
    var request: (plan: RandomExchangePlan, body: [UInt8], ended: Bool)?
    var answer = SocketQueue<HTTPClientResponsePart>()
    /// Frames the answer as Ollama does.
    private var wire = OllamaWireWriter()
    private(set) var problems: [String] = []

    init(world: ProxyWorld, number: Int) {
        self.world = world
        self.number = number
        let handler = UpstreamConnectionHandler()
        let recorder = UpstreamSocketRecorder()
        self.channel = EmbeddedChannel(handlers: [recorder, handler], loop: world.loop)
        _ = self.channel.connect(to: try! SocketAddress(ipAddress: "127.0.0.1", port: 11434))
        let wrapper = ProxySideChannel(self.channel)
        self.connection = UpstreamConnection(channel: wrapper, handler: handler)
        recorder.upstream = self
        wrapper.upstream = self
        self.channel.read()  // autoRead's first read
    }

    func lease(to client: Int) {
        if self.state != .leased && self.state != .pooled { self.problems.append("handed out in state \(self.state)") }
        self.state = .leased
        self.lessee = client
    }

    func released(by client: Int) {
        self.world.note("client \(client) releases #\(self.number)")
        if self.state != .leased { self.problems.append("released to the pool while \(self.state)") }
        if client != self.lessee { self.problems.append("released by client \(client), held by client \(self.lessee)") }
        if self.request != nil { self.problems.append("released in the middle of a request (\(self.request!.plan.id))") }
        self.state = .pooled
    }

    // What the proxy does to the connection.

    func proxyWrites(_ part: HTTPClientRequestPart) {
        if self.state != .leased { self.problems.append("a write while \(self.state)") }
        self.unflushed.append(part)
    }

    func proxyFlushes() {
        if self.state != .leased { self.problems.append("a flush while \(self.state)") }
        let parts = self.unflushed
        self.unflushed.removeAll()
        for part in parts { self.ollamaReceives(part) }
    }

    func proxyCloses() {
        self.world.note("proxy closes #\(self.number)")
        if self.state != .leased && !self.closingFromPool { self.problems.append("closed by the proxy while \(self.state)") }
        self.state = .closedByProxy
    }

    /// The pool closes a connection it does not keep.
    var closingFromPool = false

    private func ollamaReceives(_ part: HTTPClientRequestPart) {
        switch part {
        case .head(let head):
            guard self.request == nil else {
                self.problems.append("a second request head while \(self.request!.plan.id) is in flight")
                return
            }
            guard let id = head.headers["x-req"].first, let plan = self.world.plan(id: id) else {
                self.problems.append("a request head without a known X-Req")
                return
            }
            if !id.hasPrefix("\(self.lessee).") { self.problems.append("request \(id) sent on a connection client \(self.lessee) holds") }
            self.request = (plan, [], false)
            var answer: [HTTPClientResponsePart] = []
            if let informational = plan.informational { answer.append(.head(informational)) }
            answer.append(.head(plan.responseHead))
            answer += plan.responseParts.map { .body($0) }
            answer.append(.end(nil))
            self.answer = SocketQueue(parts: answer)
        case .body(.byteBuffer(let bytes)):
            guard self.request != nil, !self.request!.ended else { return self.problems.append("request body outside a request") }
            self.request!.body += Array(bytes.readableBytesView)
        case .body:
            self.problems.append("a request body that is not a ByteBuffer")
        case .end:
            guard let request = self.request, !request.ended else { return self.problems.append("request end outside a request") }
            self.request!.ended = true
            let expected = request.plan.expectedUpstreamBody
            if request.body != expected {
                self.problems.append("request \(request.plan.id) reached Ollama with \(request.body.count) B of body, not \(expected.count) B")
            }
        }
    }

    // What Ollama does.

    /// Ollama answers a request it has seen: when cooperating, only once the whole request arrived.
    func canAnswer(cooperative: Bool) -> Bool {
        guard self.readOutstanding, let request = self.request, !self.answer.isEmpty else { return false }
        return request.ended || !cooperative
    }

    func answer(items: Int) {
        self.readOutstanding = false
        var sent: [String] = []
        readBurst(on: self.channel, count: items) {
            guard let part = self.answer.next() else { return false }
            let bytes = self.wire.bytes(of: part, method: self.request?.plan.head.method ?? .GET)
            var isEnd = false
            switch part {
            case .head(let head): sent.append("head \(head.status.code)")
            case .body(let body): sent.append("body \(body.readableBytes) B")
            case .end:
                sent.append("end")
                isEnd = true
            }
            if !isEnd, case .end? = self.answer.peek, !self.wire.endHasBytes {
                // These bytes complete the response (a head with no body to follow, the last of a
                // Content-Length body): its end has no bytes of its own, and the proxy sees it now.
                _ = self.answer.next()
                sent.append("end")
                isEnd = true
            }
            if isEnd {
                if !self.request!.ended { self.world.note("(the answer ends before the request did)") }
                self.request = nil  // the connection may carry the next request
            }
            do { try self.channel.writeInbound(bytes) } catch { self.problems.append("writeInbound threw \(error)") }
            // Whatever the proxy sends next on this connection is answered in a later read, not this one.
            return !isEnd
        }
        self.world.note("Ollama #\(self.number) sent \(sent.joined(separator: ", ")) of \(self.answer.parts.count) parts")
    }

    func setWritable(_ writable: Bool) {
        self.world.note("Ollama #\(self.number) writable \(writable)")
        self.channel.isWritable = writable
        self.channel.pipeline.fireChannelWritabilityChanged()
    }

    func ollamaCloses(error: Bool) {
        self.world.note("Ollama #\(self.number) \(error ? "resets" : "closes") (\(self.state))")
        self.state = .closedByOllama
        self.request = nil
        if error {
            self.channel.pipeline.fireErrorCaught(IOError(errnoCode: 104, reason: "read"))
        } else {
            _ = self.channel.close()
        }
    }

    func checkEnd() {
        self.world.expect(self.state != .leased, "connection #\(self.number) leaked: still leased with every client gone")
        for problem in self.problems { self.world.fail("connection #\(self.number): \(problem)") }
    }
}

/// What a peer still has to send on a socket, in order.
private struct SocketQueue<Part> {
    var parts: [Part] = []
    private(set) var delivered = 0

    var isEmpty: Bool { self.delivered == self.parts.count }

    var peek: Part? { self.isEmpty ? nil : self.parts[self.delivered] }

    mutating func next() -> Part? {
        guard !self.isEmpty else { return nil }
        self.delivered += 1
        return self.parts[self.delivered - 1]
    }
}

/// One read burst as NIO delivers it: parts one after another (`deliverNext` returns false when the burst
/// ends early) while the channel stays open, then `channelReadComplete`, then autoRead's next `read()`.
private func readBurst(on channel: EmbeddedChannel, count: Int, _ deliverNext: () -> Bool) {
    for _ in 0..<count where channel.isActive {
        guard deliverNext() else { break }
    }
    guard channel.isActive else { return }
    channel.pipeline.fireChannelReadComplete()
    if channel.isActive { channel.read() }
}

/// Next to Ollama's socket: sees the reads that reach it, and the closes (the proxy's, unless Ollama or the
/// connection's own error handling closed it).
private final class UpstreamSocketRecorder: ChannelOutboundHandler {
    typealias OutboundIn = HTTPClientRequestPart
    weak var upstream: Upstream?

    func read(context: ChannelHandlerContext) {
        self.upstream?.readOutstanding = true
        context.read()
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        if let upstream, upstream.state != .closedByOllama { upstream.proxyCloses() }
        context.close(mode: mode, promise: promise)
    }
}

/// The channel as the proxy holds it (`UpstreamConnection.channel`): every write and flush the proxy makes
/// is seen here before it goes to the embedded channel, even after that channel closed. (A close is seen by
/// `UpstreamSocketRecorder`: `close(promise:)` is an extension method that goes straight to the pipeline.)
private final class ProxySideChannel: Channel, @unchecked Sendable {
    let inner: EmbeddedChannel
    weak var upstream: Upstream?

    init(_ inner: EmbeddedChannel) { self.inner = inner }

    var allocator: ByteBufferAllocator { self.inner.allocator }
    var closeFuture: EventLoopFuture<Void> { self.inner.closeFuture }
    var pipeline: ChannelPipeline { self.inner.pipeline }
    var localAddress: SocketAddress? { self.inner.localAddress }
    var remoteAddress: SocketAddress? { self.inner.remoteAddress }
    var parent: Channel? { nil }
    var isWritable: Bool { self.inner.isWritable }
    var isActive: Bool { self.inner.isActive }
    var _channelCore: ChannelCore { self.inner._channelCore }
    var eventLoop: EventLoop { self.inner.eventLoop }

    func setOption<Option: ChannelOption>(_ option: Option, value: Option.Value) -> EventLoopFuture<Void> {
        self.inner.setOption(option, value: value)
    }

    func getOption<Option: ChannelOption>(_ option: Option) -> EventLoopFuture<Option.Value> {
        self.inner.getOption(option)
    }

    func write<T: Sendable>(_ data: T, promise: EventLoopPromise<Void>?) {
        if let part = data as? HTTPClientRequestPart { self.upstream?.proxyWrites(part) }
        self.inner.write(data, promise: promise)
    }

    func flush() {
        self.upstream?.proxyFlushes()
        self.inner.flush()
    }

}
