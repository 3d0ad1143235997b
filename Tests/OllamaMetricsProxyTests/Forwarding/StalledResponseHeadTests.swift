import NIOCore
import NIOHTTP1
import Testing

@testable import OllamaMetricsProxy

/// A response head that arrives on its own (Ollama stalls after it) goes to the client when its read burst
/// ends, not only with the first body bytes, which may be minutes away.
@Suite struct StalledResponseHeadTests {
    typealias Exchange = ExchangeStateMachineTests
    typealias Action = ExchangeStateMachine.Action

    @Test(arguments: [false, true])
    func aHeadThatArrivesAloneIsFlushedWhenItsReadBurstEnds(inference: Bool) {
        var machine = inference ? Exchange.chatAwaitingResponse(stream: true) : Exchange.machine()
        if !inference {
            _ = machine.connected(reused: false)
            _ = machine.clientSentEnd(trailers: nil)
        }
        guard case .writeClientHead = machine.upstreamReceivedHead(Exchange.ndjsonHead).io else {
            Issue.record("the head is written")
            return
        }
        #expect(machine.upstreamReadComplete() == Action(io: .writeClientBody(nil)), "the head goes out on its own")
        #expect(machine.upstreamReadComplete() == .none, "and only once")
        let line = #"{"model":"llama3.2","message":{"role":"assistant","content":"Hel"},"done":false}"# + "\n"
        _ = machine.upstreamReceivedBody(Exchange.bytes(line))
        #expect(machine.upstreamReadComplete() == Action(io: .writeClientBody(Exchange.bytes(line))))
    }

    @Test func aHeadWithBodyBytesInTheSameBurstGoesOutWithThemInOneFlush() {
        var machine = Exchange.chatAwaitingResponse(stream: true)
        _ = machine.upstreamReceivedHead(Exchange.ndjsonHead)
        let line = #"{"model":"llama3.2","message":{"role":"assistant","content":"Hel"},"done":false}"# + "\n"
        _ = machine.upstreamReceivedBody(Exchange.bytes(line))
        #expect(machine.upstreamReadComplete() == Action(io: .writeClientBody(Exchange.bytes(line))))
        #expect(machine.upstreamReadComplete() == .none, "nothing left to flush")
    }
}
