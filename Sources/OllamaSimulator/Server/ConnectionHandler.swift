import NIOCore
import NIOHTTP1

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Serves the requests of one connection, one at a time (NIO's pipelining handler queues the next request until
/// this one's response has ended), and notices when the client goes away mid-response.
final class SimulatorConnectionHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let simulator: SimulatorState
    private let checksHost: Bool

    init(simulator: SimulatorState, checksHost: Bool) {
        self.simulator = simulator
        self.checksHost = checksHost
    }

    /// A request whose head has arrived and whose body is being read.
    private struct Receiving {
        var head: HTTPRequestHead
        var body: [UInt8] = []
        var byteCount = 0
        /// Blob uploads are counted, not kept.
        var keepsBody: Bool
    }

    /// Why the response is not advancing right now.
    private enum Suspension {
        case timer(Scheduled<Void>)
        case gate(name: String, ticket: Int)
        case writability
    }

    /// A response being produced.
    private final class ActiveResponse {
        let sequence: Int
        let facts: RequestFacts
        var producer: any ResponseProducer
        var rendered: RenderedHead?
        var suspension: Suspension?

        init(sequence: Int, facts: RequestFacts, producer: any ResponseProducer) {
            self.sequence = sequence
            self.facts = facts
            self.producer = producer
        }
    }

    private enum State {
        case idle
        case receiving(Receiving)
        case responding(ActiveResponse)
        case closed

        mutating func appendBody(_ buffer: ByteBuffer) {
            guard case .receiving(var receiving) = self else {
                preconditionFailure("request body received in state \(self)")
            }
            self = .idle  // drop the enum's reference so that the append below does not copy the whole body
            receiving.byteCount += buffer.readableBytes
            if receiving.keepsBody { receiving.body.append(contentsOf: buffer.readableBytesView) }
            self = .receiving(receiving)
        }
    }

    private var state = State.idle

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // Switch on the part alone: a copy of `state` held during the switch would make every body append copy
        // the whole body received so far.
        switch unwrapInboundIn(data) {
        case .head(let head):
            if case .closed = state { return }
            guard case .idle = state else { preconditionFailure("request head received in state \(state)") }
            if head.headers[canonicalForm: "expect"].contains(where: { $0.lowercased() == "100-continue" }) {
                let continueHead = HTTPResponseHead(version: head.version, status: .continue)
                context.writeAndFlush(wrapOutboundOut(.head(continueHead)), promise: nil)
            }
            let isBlobUpload = head.method == .POST && head.uri.hasPrefix("/api/blobs/")
            state = .receiving(Receiving(head: head, keepsBody: !isBlobUpload))

        case .body(let buffer):
            if case .closed = state { return }
            state.appendBody(buffer)

        case .end:
            if case .closed = state { return }
            guard case .receiving(let receiving) = state else {
                preconditionFailure("request end received in state \(state)")
            }
            startResponse(to: receiving, context: context)
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, case .responding(let response) = state,
            case .writability = response.suspension
        {
            response.suspension = nil
            pump(response, context: context)
        }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        let outcome: RequestOutcome = simulator.isShuttingDown ? .dropped : .cancelled
        switch state {
        case .receiving(let receiving):
            let sequence = commit(receiving)
            simulator.finishRequest(sequence, outcome: outcome)
        case .responding(let response):
            switch response.suspension {
            case .timer(let scheduled): scheduled.cancel()
            case .gate(let name, let ticket): simulator.release(ticket: ticket, atGate: name)
            case .writability, nil: break
            }
            response.suspension = nil
            simulator.finishRequest(response.sequence, outcome: outcome)
        case .idle, .closed:
            break
        }
        state = .closed
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    // MARK: Producing the response

    private func commit(_ receiving: Receiving) -> Int {
        simulator.commitRequest(
            method: receiving.head.method.rawValue,
            uri: receiving.head.uri,
            version: "HTTP/\(receiving.head.version.major).\(receiving.head.version.minor)",
            headers: receiving.head.headers,
            body: receiving.body,
            bodyByteCount: receiving.byteCount
        )
    }

    private func startResponse(to receiving: Receiving, context: ChannelHandlerContext) {
        let sequence = commit(receiving)
        let incoming = Router.Incoming(
            sequence: sequence,
            method: receiving.head.method.rawValue,
            uri: receiving.head.uri,
            headers: receiving.head.headers,
            body: receiving.body,
            bodyByteCount: receiving.byteCount
        )
        let producer = Router.respond(to: incoming, state: simulator, checksHost: checksHost)
        let facts = RequestFacts(
            version: receiving.head.version,
            isKeepAlive: receiving.head.isKeepAlive,
            isHead: receiving.head.method == .HEAD
        )
        let response = ActiveResponse(sequence: sequence, facts: facts, producer: producer)
        state = .responding(response)
        pump(response, context: context)
    }

    /// Carries out the response's steps until it must wait (timer, gate, backpressure) or is finished.
    private func pump(_ response: ActiveResponse, context: ChannelHandlerContext) {
        let clock = simulator.options.clock
        while response.suspension == nil {
            guard case .responding(let current) = state, current === response else { return }
            guard context.channel.isWritable else {
                response.suspension = .writability
                return
            }
            switch response.producer.nextStep(clock: clock) ?? .end {
            case .wait(let amount):
                guard amount > .zero else { continue }
                response.suspension = .timer(
                    context.eventLoop.assumeIsolated().scheduleTask(in: amount) {
                        response.suspension = nil
                        self.pump(response, context: context)
                    }
                )

            case .gate(let name):
                let resumeOnLoop = NIOLoopBound((self, response, context), eventLoop: context.eventLoop)
                let ticket = simulator.hold(atGate: name) {
                    resumeOnLoop.eventLoop.execute {
                        let (handler, response, context) = resumeOnLoop.value
                        guard case .gate = response.suspension else { return }
                        response.suspension = nil
                        handler.pump(response, context: context)
                    }
                }
                if let ticket { response.suspension = .gate(name: name, ticket: ticket) }

            case .head(let head):
                precondition(response.rendered == nil, "a response's head was produced twice")
                let rendered = GoHTTP.render(head, for: response.facts, date: clock.now().httpDate)
                response.rendered = rendered
                context.write(wrapOutboundOut(.head(rendered.head)), promise: nil)

            case .headFragment(let head, let byteCount):
                precondition(response.rendered == nil, "a response's head was produced twice")
                let rendered = GoHTTP.render(head, for: response.facts, date: clock.now().httpDate)
                let bytes = GoHTTP.serialize(rendered.head)
                writeRaw(Array(bytes.prefix(min(byteCount, bytes.count - 1))), context: context)

            case .flush:
                context.flush()

            case .chunk(let bytes):
                guard let rendered = response.rendered else { preconditionFailure("body produced before the head") }
                if !rendered.suppressesBody && !bytes.isEmpty {
                    let buffer = context.channel.allocator.buffer(bytes: bytes)
                    context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
                }
                context.flush()

            case .end:
                finish(response, context: context)
                return

            case .drop:
                drop(response, context: context)
                return

            case .reset:
                reset(response, context: context)
                return
            }
        }
    }

    private func finish(_ response: ActiveResponse, context: ChannelHandlerContext) {
        guard let rendered = response.rendered else { preconditionFailure("a response ended without a head") }
        simulator.finishRequest(response.sequence, outcome: .completed)
        // The pipelining handler may hand over the next request while `.end` is written: be idle before that.
        state = rendered.closesConnection ? .closed : .idle
        if rendered.closesConnection {
            context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
        } else {
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
    }

    /// Closes the connection without ending the response, after what was written has been sent.
    private func drop(_ response: ActiveResponse, context: ChannelHandlerContext) {
        simulator.finishRequest(response.sequence, outcome: .dropped)
        state = .closed
        guard response.rendered != nil else {
            context.close(promise: nil)
            return
        }
        let empty = context.channel.allocator.buffer(capacity: 0)
        context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(empty)))).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }

    /// Resets the connection (RST instead of FIN: `SO_LINGER` 0 before closing) without ending the response,
    /// after what was written has been sent.
    private func reset(_ response: ActiveResponse, context: ChannelHandlerContext) {
        simulator.finishRequest(response.sequence, outcome: .dropped)
        state = .closed
        let channel = context.channel
        // An empty write completes once everything written before it has been handed to the kernel.
        writeRaw([], context: context).assumeIsolated().whenComplete { _ in
            guard let options = channel as? any SocketOptionProvider else {
                channel.close(promise: nil)
                return
            }
            options.setSoLinger(linger(l_onoff: 1, l_linger: 0)).whenComplete { _ in channel.close(promise: nil) }
        }
    }

    /// Writes bytes to the socket as they are, past the HTTP encoder (a head cut short is no HTTP part), and
    /// flushes everything written so far.
    @discardableResult
    private func writeRaw(_ bytes: [UInt8], context: ChannelHandlerContext) -> EventLoopFuture<Void> {
        let buffer = context.channel.allocator.buffer(bytes: bytes)
        guard let encoder = try? context.pipeline.syncOperations.context(handlerType: HTTPResponseEncoder.self) else {
            preconditionFailure("the simulator's pipeline has no HTTP response encoder")
        }
        return encoder.writeAndFlush(NIOAny(buffer))
    }
}
