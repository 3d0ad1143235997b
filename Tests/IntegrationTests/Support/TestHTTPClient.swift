import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// A complete HTTP response as a client received it.
struct ReceivedResponse: Sendable {
    var head: HTTPResponseHead
    var body: ByteBuffer
    /// Body pieces in arrival order, each with the time it arrived.
    var pieces: [(bytes: ByteBuffer, at: NIODeadline)]

    var status: Int { Int(self.head.status.code) }
    var bodyString: String { String(buffer: self.body) }
    func header(_ name: String) -> String? { self.head.headers.first(name: name) }
}

/// One HTTP/1.1 connection driven by the tests: sends requests, and hands back response parts as they
/// arrive, so tests can see streaming, keep-alive and disconnects for real.
/// Used by one task at a time (hence `@unchecked`): the iterator is not shared.
final class TestHTTPConnection: @unchecked Sendable {
    let channel: Channel
    private var iterator: AsyncStream<HTTPClientResponsePart>.AsyncIterator

    static func connect(to address: SocketAddress, group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton)
        async throws -> TestHTTPConnection
    {
        let (stream, continuation) = AsyncStream<HTTPClientResponsePart>.makeStream()
        let channel = try await ClientBootstrap(group: group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(PartCollector(continuation: continuation))
                }
            }
            .connect(to: address).get()
        return TestHTTPConnection(channel: channel, parts: stream)
    }

    private init(channel: Channel, parts: AsyncStream<HTTPClientResponsePart>) {
        self.channel = channel
        self.iterator = parts.makeAsyncIterator()
    }

    func send(
        _ method: HTTPMethod, _ uri: String, headers: [(String, String)] = [], body: ByteBuffer? = nil
    ) async throws {
        var head = HTTPRequestHead(version: .http1_1, method: method, uri: uri)
        head.headers.add(name: "Host", value: "localhost")
        for (name, value) in headers { head.headers.add(name: name, value: value) }
        if let body, !head.headers.contains(name: "content-length"), !head.headers.contains(name: "transfer-encoding") {
            head.headers.add(name: "Content-Length", value: String(body.readableBytes))
        }
        self.channel.write(HTTPClientRequestPart.head(head), promise: nil)
        if let body, body.readableBytes > 0 {
            self.channel.write(HTTPClientRequestPart.body(.byteBuffer(body)), promise: nil)
        }
        try await self.channel.writeAndFlush(HTTPClientRequestPart.end(nil)).get()
    }

    /// The next response part, or nil when the connection closed.
    func nextPart() async -> HTTPClientResponsePart? {
        await self.iterator.next()
    }

    /// Reads one whole response. Throws if the connection closes before its end.
    func readResponse() async throws -> ReceivedResponse {
        guard case .head(let head) = await self.nextPart() else { throw TestClientError.closedBeforeResponse }
        var response = ReceivedResponse(head: head, body: ByteBuffer(), pieces: [])
        while let part = await self.nextPart() {
            switch part {
            case .head:
                throw TestClientError.unexpectedHead
            case .body(var buffer):
                response.pieces.append((buffer, .now()))
                response.body.writeBuffer(&buffer)
            case .end:
                return response
            }
        }
        throw TestClientError.truncated(response)
    }

    func request(
        _ method: HTTPMethod, _ uri: String, headers: [(String, String)] = [], body: String? = nil
    ) async throws -> ReceivedResponse {
        try await self.send(method, uri, headers: headers, body: body.map { ByteBuffer(string: $0) })
        return try await self.readResponse()
    }

    func close() async {
        try? await self.channel.close()
    }
}

enum TestClientError: Error {
    case closedBeforeResponse
    case unexpectedHead
    case truncated(ReceivedResponse)
}

private final class PartCollector: ChannelInboundHandler, Sendable {
    typealias InboundIn = HTTPClientResponsePart
    let continuation: AsyncStream<HTTPClientResponsePart>.Continuation

    init(continuation: AsyncStream<HTTPClientResponsePart>.Continuation) {
        self.continuation = continuation
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        self.continuation.yield(self.unwrapInboundIn(data))
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.continuation.finish()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}

/// One request on a fresh connection.
func httpRequest(
    _ address: SocketAddress, _ method: HTTPMethod, _ uri: String, headers: [(String, String)] = [],
    body: String? = nil
) async throws -> ReceivedResponse {
    let connection = try await TestHTTPConnection.connect(to: address)
    defer { Task { await connection.close() } }
    return try await connection.request(method, uri, headers: headers, body: body)
}
