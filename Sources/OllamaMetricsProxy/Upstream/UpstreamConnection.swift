import NIOCore
import NIOHTTP1

/// Receives what happens on an upstream connection while an exchange owns it.
/// Everything is called on the connection's event loop, which is also the client connection's.
protocol UpstreamConnectionDelegate: AnyObject {
    func upstreamReceived(_ part: HTTPClientResponsePart)
    func upstreamReadComplete()
    func upstreamWritabilityChanged(isWritable: Bool)
    /// The connection closed or failed. `answerStarted`: some bytes of the answer to the current request
    /// had arrived, so Ollama did start on it and it must not be sent again.
    func upstreamClosed(error: Error?, answerStarted: Bool)
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
        if case .head(let head) = part {
            self.handler.requestSent(method: head.method)
        }
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

/// The last handler of an upstream channel: reads Ollama's responses off the socket's bytes with the
/// proxy's own `UpstreamResponseParser`, hands their parts to the owning exchange, and withholds `read()`
/// while the client cannot take more bytes. Requests go out through NIO's `HTTPRequestEncoder` before it.
final class UpstreamConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = HTTPClientRequestPart

    weak var delegate: UpstreamConnectionDelegate?
    private var context: ChannelHandlerContext?
    private var parser = UpstreamResponseParser()
    /// Bytes arrived since the current request was sent.
    private var answerStarted = false
    private var readsPaused = false
    private var readPending = false
    private var closed = false

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    /// A request head is about to be written: its answer is the next one on the connection.
    func requestSent(method: HTTPMethod) {
        self.parser.expectResponse(toHEAD: method == .HEAD)
        self.answerStarted = false
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = self.unwrapInboundIn(data)
        // After the connection was reported closed (a parse error, then its close), its bytes are nobody's.
        guard !self.closed else { return }
        if bytes.readableBytes > 0 { self.answerStarted = true }
        self.parser.feed(bytes)
        do {
            while let part = try self.parser.next() {
                // Parts of an answer nobody waits for any more (the client left) go nowhere.
                self.delegate?.upstreamReceived(part)
            }
        } catch {
            self.reportClosed(error: error)
            context.close(promise: nil)
        }
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
        if !self.closed {
            do {
                // A body delimited by the close ends here.
                if let end = try self.parser.inputEnded() { self.delegate?.upstreamReceived(end) }
                self.reportClosed(error: nil)
            } catch {
                self.reportClosed(error: error)
            }
        }
        context.fireChannelInactive()
    }

    private func reportClosed(error: Error?) {
        guard !self.closed else { return }
        self.closed = true
        let delegate = self.delegate
        self.delegate = nil
        delegate?.upstreamClosed(error: error, answerStarted: self.answerStarted)
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
