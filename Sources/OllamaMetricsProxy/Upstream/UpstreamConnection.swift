import NIOCore
import NIOHTTP1

/// Receives what happens on an upstream connection while an exchange owns it.
/// Everything is called on the connection's event loop, which is also the client connection's.
protocol UpstreamConnectionDelegate: AnyObject {
    func upstreamReceived(_ part: HTTPClientResponsePart)
    func upstreamReadComplete()
    func upstreamWritabilityChanged(isWritable: Bool)
    func upstreamClosed(error: Error?)
}

/// One keep-alive HTTP/1.1 connection to Ollama, lent to one exchange at a time by the pool.
final class UpstreamConnection {
    let channel: Channel
    let handler: UpstreamConnectionHandler

    init(channel: Channel, handler: UpstreamConnectionHandler) {
        self.channel = channel
        self.handler = handler
    }

    var delegate: UpstreamConnectionDelegate? {
        get { self.handler.delegate }
        set { self.handler.delegate = newValue }
    }

    var isActive: Bool { self.channel.isActive }

    func write(_ part: HTTPClientRequestPart) {
        self.channel.write(part, promise: nil)
    }

    func flush() {
        self.channel.flush()
    }

    /// Stops (or resumes) reading the response, for backpressure from a slow client.
    func setReadsPaused(_ paused: Bool) {
        self.handler.setReadsPaused(paused)
    }

    /// Closes the connection: that is how Ollama learns that nobody wants the rest of the answer.
    func close() {
        self.handler.delegate = nil
        self.channel.close(promise: nil)
    }
}

/// The last handler of an upstream channel: hands response parts to the owning exchange and withholds
/// `read()` while the client cannot take more bytes.
final class UpstreamConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = HTTPClientRequestPart

    weak var delegate: UpstreamConnectionDelegate?
    private var context: ChannelHandlerContext?
    private var readsPaused = false
    private var readPending = false
    private var closed = false

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        self.delegate?.upstreamReceived(self.unwrapInboundIn(data))
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        self.delegate?.upstreamReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        self.delegate?.upstreamWritabilityChanged(isWritable: context.channel.isWritable)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        self.reportClosed(error: error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.reportClosed(error: nil)
        context.fireChannelInactive()
    }

    private func reportClosed(error: Error?) {
        guard !self.closed else { return }
        self.closed = true
        let delegate = self.delegate
        self.delegate = nil
        delegate?.upstreamClosed(error: error)
    }

    func read(context: ChannelHandlerContext) {
        if self.readsPaused {
            self.readPending = true
        } else {
            context.read()
        }
    }

    func setReadsPaused(_ paused: Bool) {
        self.readsPaused = paused
        if !paused, self.readPending, let context = self.context {
            self.readPending = false
            context.read()
        }
    }
}
