import NIOCore

/// Answers a connection opened beyond `--max-connections`: `503 Service Unavailable` with `Retry-After`,
/// then closes. It does not parse the request.
///
/// It answers when the request's first bytes arrive (or after `answerDelay` if none do), so the client is
/// not told before it has finished sending: a client still writing to a closed connection sees a broken
/// pipe, not the 503. It then closes its side of the connection first, reads and drops whatever the
/// client still sends for up to `lingerTime`, and only then closes fully: closing with the request unread
/// would send a reset, and a reset can destroy the 503 before the client reads it. The SDKs retry a 503
/// after `Retry-After`.
final class ConnectionLimitResponder: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let response: ByteBuffer
    private let answerDelay: TimeAmount
    private let lingerTime: TimeAmount
    private var timer: Scheduled<Void>?
    private var answered = false

    /// - Parameter response: The refusal's bytes, from `wireBytes(of:)`: built once, shared by every
    ///   refused connection.
    init(response: ByteBuffer, answerDelay: TimeAmount = .milliseconds(500), lingerTime: TimeAmount = .seconds(2)) {
        self.response = response
        self.answerDelay = answerDelay
        self.lingerTime = lingerTime
    }

    /// The refusal's response as written on the wire: no HTTP handler sits on a refused connection.
    static func wireBytes(of refusal: ClientRefusal) -> ByteBuffer {
        let (head, body) = refusal.response
        var encoder = ClientResponseEncoder()
        encoder.head(head, requestMethod: .GET)
        if let body { encoder.body(body, write: { _ in preconditionFailure("a refusal's body is small") }) }
        encoder.end(trailers: nil)
        return encoder.take()!
    }

    func channelActive(context: ChannelHandlerContext) {
        let channel = context.channel
        self.timer = context.eventLoop.assumeIsolated().scheduleTask(in: self.answerDelay) {
            self.answer(channel)
        }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // The request nobody will forward: dropped, once it has shown up.
        self.answer(context.channel)
    }

    private func answer(_ channel: Channel) {
        guard !self.answered else { return }
        self.answered = true
        self.timer?.cancel()
        channel.writeAndFlush(self.response).whenComplete { _ in
            channel.close(mode: .output, promise: nil)
        }
        self.timer = channel.eventLoop.scheduleTask(in: self.lingerTime) {
            channel.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.timer?.cancel()
        self.timer = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}
