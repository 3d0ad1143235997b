import NIOCore
import NIOHTTP1
import Testing

@testable import OllamaMetricsProxy

/// Every transition of `ClientConnectionStateMachine`, as plain values: no sockets, no event loop.
@Suite struct ClientConnectionStateMachineTests {
    typealias Machine = ClientConnectionStateMachine

    static let t0 = NIODeadline.uptimeNanoseconds(1_000_000_000)
    static let timeout = TimeAmount.seconds(75)

    static func head(_ uri: String = "/api/tags", _ method: HTTPMethod = .GET) -> HTTPRequestHead {
        HTTPRequestHead(version: .http1_1, method: method, uri: uri)
    }

    static func bytes(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }

    /// Drains what `nextPipelined` hands out now.
    static func pipelined(_ machine: inout Machine) -> [Machine.Action] {
        var actions: [Machine.Action] = []
        while let next = machine.nextPipelined(now: Self.t0) { actions.append(next) }
        return actions
    }

    @Test func oneRequestAfterAnother() {
        var machine = Machine(now: Self.t0)
        #expect(machine.readRequested() == true)
        #expect(machine.receivedHead(Self.head()) == .startExchange(Self.head()))
        #expect(machine.receivedBody(Self.bytes("x")) == .forwardBody(Self.bytes("x")))
        #expect(machine.receivedEnd(nil, now: Self.t0) == .forwardEnd(nil))
        #expect(!machine.closesAfterResponse)
        #expect(machine.responseEnded(closeConnection: false, now: Self.t0) == .awaitNextRequest)
        #expect(Self.pipelined(&machine).isEmpty)
        #expect(machine.receivedHead(Self.head("/b")) == .startExchange(Self.head("/b")))
    }

    @Test func pipelinedRequestsWaitTheirTurnWithReadsHeld() {
        var machine = Machine(now: Self.t0)
        _ = machine.receivedHead(Self.head("/1"))
        _ = machine.receivedEnd(nil, now: Self.t0)
        #expect(machine.receivedHead(Self.head("/2", .POST)) == .none, "queued behind the response in progress")
        #expect(machine.receivedBody(Self.bytes("b")) == .none)
        #expect(machine.receivedEnd(nil, now: Self.t0) == .none)
        #expect(machine.receivedHead(Self.head("/3")) == .none)
        #expect(machine.readRequested() == false, "reading stops while requests wait")
        #expect(machine.takePendingRead() == false)

        #expect(machine.responseEnded(closeConnection: false, now: Self.t0) == .awaitNextRequest)
        #expect(Self.pipelined(&machine) == [.startExchange(Self.head("/2", .POST)), .forwardBody(Self.bytes("b")), .forwardEnd(nil)])
        #expect(machine.takePendingRead() == false, "/3 still waits")
        #expect(machine.responseEnded(closeConnection: false, now: Self.t0) == .awaitNextRequest)
        #expect(Self.pipelined(&machine) == [.startExchange(Self.head("/3"))])
        #expect(machine.takePendingRead() == true, "the held read goes ahead once the queue is empty")
        #expect(machine.takePendingRead() == false, "once")
    }

    @Test func connectionCloseEndsTheConnectionAfterTheResponseAndDropsWhatWasPipelined() {
        var machine = Machine(now: Self.t0)
        _ = machine.receivedHead(Self.head())
        _ = machine.receivedEnd(nil, now: Self.t0)
        _ = machine.receivedHead(Self.head("/next"))
        #expect(machine.responseEnded(closeConnection: true, now: Self.t0) == .close)
        #expect(machine.isClosed)
        #expect(Self.pipelined(&machine).isEmpty)
        #expect(machine.receivedHead(Self.head()) == .none)
        #expect(machine.receivedBody(Self.bytes("x")) == .none)
        #expect(machine.receivedEnd(nil, now: Self.t0) == .none)
        #expect(machine.takePendingRead() == false)
    }

    @Test func anEarlyResponseDrainsTheRestOfTheRequestBody() {
        var machine = Machine(now: Self.t0)
        _ = machine.receivedHead(Self.head("/api/blobs/x", .POST))
        _ = machine.receivedBody(Self.bytes("1"))
        #expect(machine.responseEnded(closeConnection: false, now: Self.t0) == .none, "the body is still arriving")
        #expect(machine.receivedBody(Self.bytes("2")) == .none, "dropped")
        #expect(machine.receivedEnd(nil, now: Self.t0) == .awaitNextRequest)
        #expect(machine.receivedHead(Self.head()) == .startExchange(Self.head()))
    }

    @Test func aRequestPipelinedBehindAnEarlyResponseIsDrainedThenAnswered() {
        var machine = Machine(now: Self.t0)
        _ = machine.receivedHead(Self.head("/1", .POST))
        #expect(machine.responseEnded(closeConnection: false, now: Self.t0) == .none)
        // Its body still arrives; what follows is the next request.
        _ = machine.receivedBody(Self.bytes("rest"))
        #expect(machine.receivedEnd(nil, now: Self.t0) == .awaitNextRequest)
        #expect(machine.receivedHead(Self.head("/2")) == .startExchange(Self.head("/2")))
    }

    @Test func malformedInputWithNothingToAnswerIsA400() {
        var machine = Machine(now: Self.t0)
        #expect(machine.receivedMalformedInput() == .refuseAndClose(.malformedRequest))
        #expect(machine.isClosed)
        #expect(machine.receivedMalformedInput() == .none)
    }

    @Test func malformedInputAfterACompleteRequestIsAnsweredAfterIt() {
        var machine = Machine(now: Self.t0)
        _ = machine.receivedHead(Self.head())
        _ = machine.receivedEnd(nil, now: Self.t0)
        #expect(machine.receivedMalformedInput() == .none)
        #expect(machine.receivedMalformedInput() == .none, "reported once")
        #expect(machine.responseEnded(closeConnection: false, now: Self.t0) == .awaitNextRequest)
        #expect(Self.pipelined(&machine) == [.refuseAndClose(.malformedRequest)])
        #expect(machine.isClosed)
    }

    @Test func malformedInputInsideABodyFailsThatRequestAndClosesAfterItsAnswer() {
        var machine = Machine(now: Self.t0)
        _ = machine.receivedHead(Self.head("/x", .POST))
        _ = machine.receivedBody(Self.bytes("part"))
        #expect(machine.receivedMalformedInput() == .failRequestBody)
        #expect(machine.closesAfterResponse, "the 400 says Connection: close")
        #expect(machine.receivedMalformedInput() == .none, "reported once")
        #expect(machine.receivedHead(Self.head("/y")) == .none, "nothing after it is answered")
        #expect(machine.responseEnded(closeConnection: false, now: Self.t0) == .close)
        #expect(machine.isClosed)
    }

    @Test func malformedInputInsideABodyAnsweredEarlyJustCloses() {
        var machine = Machine(now: Self.t0)
        _ = machine.receivedHead(Self.head("/x", .POST))
        #expect(machine.responseEnded(closeConnection: false, now: Self.t0) == .none, "draining the rest of the body")
        #expect(machine.receivedMalformedInput() == .close)
    }

    @Test func malformedInputInsideAPipelinedBodyFailsThatRequestAfterTheResponsesBeforeIt() {
        var machine = Machine(now: Self.t0)
        _ = machine.receivedHead(Self.head("/1"))
        _ = machine.receivedEnd(nil, now: Self.t0)
        _ = machine.receivedHead(Self.head("/2", .POST))
        _ = machine.receivedBody(Self.bytes("part"))
        #expect(machine.receivedMalformedInput() == .none)
        #expect(machine.responseEnded(closeConnection: false, now: Self.t0) == .awaitNextRequest)
        #expect(Self.pipelined(&machine) == [.startExchange(Self.head("/2", .POST)), .forwardBody(Self.bytes("part")), .failRequestBody])
        #expect(machine.responseEnded(closeConnection: false, now: Self.t0) == .close)
    }

    @Test func aHeadOverALimitWhileIdleIsRefusedAndWhatFollowsIsIgnored() {
        var machine = Machine(now: Self.t0)
        let refusal = ClientRefusal.tooManyHeaders(limit: 3, endpoint: .chat)
        #expect(machine.receivedUnanswerable(refusal) == .refuseAndClose(refusal))
        #expect(machine.isClosed)
        #expect(machine.receivedBody(Self.bytes("its body")) == .none)
        #expect(machine.receivedEnd(nil, now: Self.t0) == .none)
        #expect(machine.receivedHead(Self.head()) == .none)
    }

    @Test func aPipelinedHeadOverALimitIsRefusedInItsTurnWithItsBodyDropped() {
        var machine = Machine(now: Self.t0)
        let refusal = ClientRefusal.requestHeadTooLarge(limit: 1024, endpoint: nil)
        _ = machine.receivedHead(Self.head("/1"))
        _ = machine.receivedEnd(nil, now: Self.t0)
        #expect(machine.receivedUnanswerable(refusal) == .none)
        #expect(machine.receivedBody(Self.bytes("dropped")) == .none)
        #expect(machine.receivedEnd(nil, now: Self.t0) == .none)
        #expect(machine.receivedHead(Self.head("/3")) == .none)
        #expect(machine.readRequested() == false, "reads wait while something is queued")
        #expect(machine.responseEnded(closeConnection: false, now: Self.t0) == .awaitNextRequest)
        #expect(Self.pipelined(&machine) == [.refuseAndClose(refusal)])
        #expect(machine.isClosed)
    }

    @Test func shutdownWhileIdleClosesAtOnce() {
        var machine = Machine(now: Self.t0)
        #expect(machine.quiesce() == .close)
        #expect(machine.quiesce() == .none)
    }

    @Test func shutdownMidRequestLetsTheResponseFinishWithConnectionClose() {
        var machine = Machine(now: Self.t0)
        _ = machine.receivedHead(Self.head())
        #expect(machine.quiesce() == .none)
        #expect(machine.closesAfterResponse)
        #expect(machine.receivedEnd(nil, now: Self.t0) == .forwardEnd(nil), "the request in progress is still read")
        #expect(machine.responseEnded(closeConnection: false, now: Self.t0) == .close)
    }

    @Test func shutdownMidPipelineDropsTheWaitingRequests() {
        var machine = Machine(now: Self.t0)
        _ = machine.receivedHead(Self.head("/1"))
        _ = machine.receivedEnd(nil, now: Self.t0)
        _ = machine.receivedHead(Self.head("/2"))
        #expect(machine.quiesce() == .none)
        #expect(machine.takePendingRead() == false)
        #expect(machine.responseEnded(closeConnection: false, now: Self.t0) == .close)
        #expect(Self.pipelined(&machine).isEmpty)
    }

    /// Found by the property test: the dropped request's body, read once the exchange released a held read
    /// (a replayed request sent again), hit a `preconditionFailure` and stopped the proxy mid-shutdown.
    @Test func aRequestDroppedAtShutdownIsDroppedWholeWhenTheRestOfItArrives() {
        var machine = Machine(now: Self.t0)
        _ = machine.receivedHead(Self.head("/1"))
        _ = machine.receivedEnd(nil, now: Self.t0)
        _ = machine.receivedHead(Self.head("/2", .POST))
        #expect(machine.readRequested() == false, "reading stops while /2 waits")
        #expect(machine.quiesce() == .none)
        #expect(machine.exchangeHoldsReads(false) == true, "nothing waits any more: the held read goes ahead")
        #expect(machine.receivedBody(Self.bytes("b")) == .none, "the rest of /2 is dropped with it")
        #expect(machine.receivedEnd(nil, now: Self.t0) == .none)
        #expect(machine.receivedHead(Self.head("/3")) == .none, "nothing new starts")
        #expect(machine.responseEnded(closeConnection: false, now: Self.t0) == .close)
        #expect(Self.pipelined(&machine).isEmpty)
    }

    @Test func shutdownWhileDrainingClosesAtOnce() {
        var machine = Machine(now: Self.t0)
        _ = machine.receivedHead(Self.head("/x", .POST))
        _ = machine.responseEnded(closeConnection: false, now: Self.t0)
        #expect(machine.quiesce() == .close)
    }

    @Test func theIdleTimerClosesOnlyAConnectionIdleForTheWholeTimeout() {
        var machine = Machine(now: Self.t0)
        #expect(machine.idleTimerFired(now: Self.t0 + Self.timeout, timeout: Self.timeout) == .close)
        #expect(machine.idleTimerFired(now: Self.t0 + .seconds(10), timeout: Self.timeout) == .reschedule(Self.t0 + Self.timeout))
        _ = machine.receivedHead(Self.head())
        #expect(machine.idleTimerFired(now: Self.t0 + .hours(2), timeout: Self.timeout) == .none, "a request in progress never times out")
        _ = machine.receivedEnd(nil, now: Self.t0)
        let later = Self.t0 + .hours(2)
        _ = machine.responseEnded(closeConnection: false, now: later)
        #expect(machine.idleTimerFired(now: later + .seconds(1), timeout: Self.timeout) == .reschedule(later + Self.timeout))
        machine.idleTimedOut()
        #expect(machine.isClosed)
    }

    @Test func theExchangeHoldsAndReleasesReads() {
        var machine = Machine(now: Self.t0)
        _ = machine.receivedHead(Self.head("/api/pull", .POST))
        #expect(machine.exchangeHoldsReads(true) == false)
        #expect(machine.readRequested() == false)
        #expect(machine.exchangeHoldsReads(false) == true, "the held read goes ahead")
        #expect(machine.readRequested() == true)
        _ = machine.exchangeHoldsReads(true)
        _ = machine.receivedEnd(nil, now: Self.t0)
        #expect(machine.responseEnded(closeConnection: false, now: Self.t0) == .awaitNextRequest)
        #expect(machine.readRequested() == true, "a new request starts with reads released")
    }

    @Test func aClosedConnectionIgnoresEverythingAfter() {
        var machine = Machine(now: Self.t0)
        _ = machine.receivedHead(Self.head())
        machine.closed()
        #expect(machine.receivedBody(Self.bytes("x")) == .none)
        #expect(machine.responseEnded(closeConnection: false, now: Self.t0) == .none)
        #expect(machine.responseAborted() == .none)
        #expect(machine.quiesce() == .none)
        #expect(machine.failed() == .none)
        #expect(machine.receivedMalformedInput() == .none)
        #expect(machine.idleTimerFired(now: Self.t0 + .hours(1), timeout: Self.timeout) == .none)
    }

    @Test func aResponseCutShortClosesTheConnection() {
        var machine = Machine(now: Self.t0)
        _ = machine.receivedHead(Self.head())
        _ = machine.receivedEnd(nil, now: Self.t0)
        _ = machine.receivedHead(Self.head("/next"))
        #expect(machine.responseAborted() == .close)
        #expect(Self.pipelined(&machine).isEmpty)
    }
}
