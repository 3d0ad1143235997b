import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A plain TCP connection for what an HTTP client library hides: pipelining, `Expect: 100-continue`,
/// exact bytes on the wire.
final class RawTCPConnection: Sendable {
    let channel: Channel
    private let received: NIOLockedValueBox<(bytes: [UInt8], closed: Bool)>

    static func connect(to address: SocketAddress) async throws -> RawTCPConnection {
        let box = NIOLockedValueBox<(bytes: [UInt8], closed: Bool)>(([], false))
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteCollector(box: box))
                }
            }
            .connect(to: address).get()
        return RawTCPConnection(channel: channel, received: box)
    }

    private init(channel: Channel, received: NIOLockedValueBox<(bytes: [UInt8], closed: Bool)>) {
        self.channel = channel
        self.received = received
    }

    func write(_ text: String) async throws {
        try await self.channel.writeAndFlush(ByteBuffer(string: text)).get()
    }

    func write(_ buffer: ByteBuffer) async throws {
        try await self.channel.writeAndFlush(buffer).get()
    }

    var text: String { String(decoding: self.received.withLockedValue { $0.bytes }, as: UTF8.self) }
    var isClosed: Bool { self.received.withLockedValue { $0.closed } }

    /// Waits until what was received satisfies `condition`, or the timeout passes; returns the text. The default
    /// bound only proves "no hang": three pipelined responses took over 10 s under ThreadSanitizer.
    @discardableResult
    func waitFor(timeout: Duration = .seconds(30), _ condition: (String) -> Bool) async throws -> String {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let text = self.text
            if condition(text) { return text }
            if self.isClosed { break }
            try await Task.sleep(for: .milliseconds(10))
        }
        return self.text
    }

    func close() async {
        try? await self.channel.close()
    }
}

private final class ByteCollector: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let box: NIOLockedValueBox<(bytes: [UInt8], closed: Bool)>
    init(box: NIOLockedValueBox<(bytes: [UInt8], closed: Bool)>) { self.box = box }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = self.unwrapInboundIn(data)
        self.box.withLockedValue { $0.bytes.append(contentsOf: buffer.readableBytesView) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.box.withLockedValue { $0.closed = true }
        context.fireChannelInactive()
    }
}

extension String {
    /// How many times `needle` occurs.
    func occurrences(of needle: String) -> Int {
        guard !needle.isEmpty else { return 0 }
        var count = 0
        var rest = Substring(self)
        while let range = rest.firstRange(of: needle) {
            count += 1
            rest = rest[range.upperBound...]
        }
        return count
    }
}
