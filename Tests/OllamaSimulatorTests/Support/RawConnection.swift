import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A plain TCP connection that keeps every byte the server sends, so tests can check exact bytes, framing and
/// HTTP chunk boundaries.
final class RawConnection: Sendable {
    private let channel: any Channel
    private let inbox: Inbox

    private init(channel: any Channel, inbox: Inbox) {
        self.channel = channel
        self.inbox = inbox
    }

    static func connect(port: Int, host: String = "127.0.0.1") async throws -> RawConnection {
        let inbox = Inbox()
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(InboxHandler(inbox: inbox))
                }
            }
            .connect(host: host, port: port)
            .get()
        return RawConnection(channel: channel, inbox: inbox)
    }

    func send(_ text: String) async throws {
        try await send(Array(text.utf8))
    }

    func send(_ bytes: [UInt8]) async throws {
        try await channel.writeAndFlush(channel.allocator.buffer(bytes: bytes))
    }

    /// Closes the connection (the client going away).
    func close() async {
        try? await channel.close()
    }

    /// Every byte received so far, consumed or not.
    var receivedBytes: [UInt8] { inbox.allBytes }

    /// Whether the server has closed the connection (read EOF or reset).
    var isClosedByPeer: Bool { inbox.isClosed }

    /// Waits until the server closes the connection.
    func waitForClose(timeout: Duration = .seconds(10)) async -> Bool {
        await inbox.waitUntil(timeout: timeout, eventLoop: channel.eventLoop) { $0.closed }
    }

    /// Waits until at least `count` bytes have been received in total.
    func waitForBytes(_ count: Int, timeout: Duration = .seconds(10)) async -> Bool {
        await inbox.waitUntil(timeout: timeout, eventLoop: channel.eventLoop) { $0.bytes.count >= count }
    }

    // MARK: Reading responses

    /// Reads one HTTP response. `isHeadRequest` means the response has no body whatever its headers say.
    func readResponse(isHeadRequest: Bool = false, timeout: Duration = .seconds(10)) async throws -> RawResponse {
        let headText = try await readUntil("\r\n\r\n", timeout: timeout)
        var response = try RawResponse(head: headText)
        if response.status == 100 {  // an interim response: the real one follows
            return try await readResponse(isHeadRequest: isHeadRequest, timeout: timeout)
        }
        if isHeadRequest || response.status == 204 || response.status == 304 {
            response.isComplete = true
            return response
        }
        if response.header("Transfer-Encoding")?.lowercased() == "chunked" {
            var chunks: [[UInt8]] = []
            while true {
                guard let sizeLine = try? await readUntil("\r\n", timeout: timeout) else {
                    response.chunks = chunks
                    response.isComplete = false
                    return response
                }
                // The line ends with CRLF, a single Character in Swift: keep only the hex digits before any extension.
                let sizeText = (sizeLine.split(separator: ";").first ?? "").filter(\.isHexDigit)
                let size = Int(sizeText, radix: 16) ?? -1
                if size == 0 {
                    _ = try? await readUntil("\r\n", timeout: timeout)  // no trailers: the final CRLF
                    response.chunks = chunks
                    response.isComplete = true
                    return response
                }
                guard size > 0, let data = try? await readExactly(size + 2, timeout: timeout) else {
                    response.chunks = chunks
                    response.isComplete = false
                    return response
                }
                chunks.append(Array(data.dropLast(2)))
                response.body += data.dropLast(2)
            }
        }
        if let length = response.header("Content-Length").flatMap({ Int($0) }) {
            if let data = try? await readExactly(length, timeout: timeout) {
                response.body = data
                response.isComplete = true
            }
            return response
        }
        response.body = try await readToEnd(timeout: timeout)
        response.isComplete = true
        return response
    }

    /// Reads bytes up to and including `delimiter`, as text.
    func readUntil(_ delimiter: String, timeout: Duration) async throws -> String {
        let pattern = Array(delimiter.utf8)
        while true {
            if let bytes = inbox.consume(upTo: pattern) { return String(decoding: bytes, as: UTF8.self) }
            guard await inbox.waitForMore(timeout: timeout, eventLoop: channel.eventLoop) else {
                throw RawConnectionError.endOfStream(received: inbox.unconsumedText)
            }
        }
    }

    func readExactly(_ count: Int, timeout: Duration) async throws -> [UInt8] {
        while true {
            if let bytes = inbox.consume(count: count) { return bytes }
            guard await inbox.waitForMore(timeout: timeout, eventLoop: channel.eventLoop) else {
                throw RawConnectionError.endOfStream(received: inbox.unconsumedText)
            }
        }
    }

    func readToEnd(timeout: Duration) async throws -> [UInt8] {
        _ = await waitForClose(timeout: timeout)
        return inbox.consumeAll()
    }
}

enum RawConnectionError: Error {
    case endOfStream(received: String)
    case malformedHead(String)
}

/// One HTTP response as received.
struct RawResponse {
    /// Status line and headers exactly as received, including the blank line.
    var head: String
    var statusLine: String
    var status: Int
    var headers: [(name: String, value: String)]
    /// The body, de-chunked.
    var body: [UInt8] = []
    /// The chunk payloads, one per HTTP chunk, when chunked.
    var chunks: [[UInt8]]? = nil
    /// Whether the body ended properly (length reached, chunked terminator seen).
    var isComplete = false

    init(head: String) throws {
        self.head = head
        let lines = head.split(separator: "\r\n").map(String.init)
        guard let first = lines.first, first.hasPrefix("HTTP/") else { throw RawConnectionError.malformedHead(head) }
        statusLine = first
        let parts = first.split(separator: " ", maxSplits: 2)
        status = parts.count > 1 ? Int(parts[1]) ?? 0 : 0
        headers = lines.dropFirst().map { line in
            let colon = line.firstIndex(of: ":") ?? line.endIndex
            let value = line[colon...].dropFirst().drop { $0 == " " }
            return (String(line[..<colon]), String(value))
        }
    }

    func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }

    var headerNames: [String] { headers.map(\.name) }
    var bodyText: String { String(decoding: body, as: UTF8.self) }
    var chunkTexts: [String] { (chunks ?? []).map { String(decoding: $0, as: UTF8.self) } }
}

/// Bytes received on a connection, with waiting.
private final class Inbox: Sendable {
    struct State {
        var bytes: [UInt8] = []
        var consumed = 0
        var closed = false
        var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
        var nextWaiter = 0
    }

    /// Not `Synchronization.Mutex`, whose contended path ThreadSanitizer cannot see on Linux.
    private let state = NIOLockedValueBox(State())

    var allBytes: [UInt8] { state.withLockedValue { $0.bytes } }
    var isClosed: Bool { state.withLockedValue { $0.closed } }
    var unconsumedText: String {
        state.withLockedValue { String(decoding: $0.bytes[$0.consumed...], as: UTF8.self) }
    }

    func append(_ bytes: [UInt8]) {
        let waiters = state.withLockedValue { state in
            state.bytes += bytes
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        waiters.forEach { $0.resume() }
    }

    func markClosed() {
        let waiters = state.withLockedValue { state in
            state.closed = true
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        waiters.forEach { $0.resume() }
    }

    func consume(upTo pattern: [UInt8]) -> [UInt8]? {
        state.withLockedValue { state in
            let available = state.bytes.count - state.consumed
            guard available >= pattern.count else { return nil }
            var index = state.consumed
            while index + pattern.count <= state.bytes.count {
                if state.bytes[index..<(index + pattern.count)].elementsEqual(pattern) {
                    let end = index + pattern.count
                    let result = Array(state.bytes[state.consumed..<end])
                    state.consumed = end
                    return result
                }
                index += 1
            }
            return nil
        }
    }

    func consume(count: Int) -> [UInt8]? {
        state.withLockedValue { state in
            guard state.bytes.count - state.consumed >= count else { return nil }
            let result = Array(state.bytes[state.consumed..<(state.consumed + count)])
            state.consumed += count
            return result
        }
    }

    func consumeAll() -> [UInt8] {
        state.withLockedValue { state in
            let result = Array(state.bytes[state.consumed...])
            state.consumed = state.bytes.count
            return result
        }
    }

    /// Waits for new bytes or the close; false on timeout or when closed with nothing new.
    func waitForMore(timeout: Duration, eventLoop: any EventLoop) async -> Bool {
        let before = state.withLockedValue { ($0.bytes.count, $0.closed) }
        if before.1 { return false }
        _ = await waitUntil(timeout: timeout, eventLoop: eventLoop) { $0.bytes.count > before.0 || $0.closed }
        return state.withLockedValue { $0.bytes.count > before.0 }
    }

    func waitUntil(
        timeout: Duration,
        eventLoop: any EventLoop,
        _ condition: @escaping @Sendable (State) -> Bool
    ) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while true {
            if state.withLockedValue({ condition($0) }) { return true }
            if ContinuousClock.now >= deadline { return false }
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let id: Int? = state.withLockedValue { state in
                    if condition(state) { return nil }
                    state.nextWaiter += 1
                    state.waiters[state.nextWaiter] = continuation
                    return state.nextWaiter
                }
                guard let id else {
                    continuation.resume()
                    return
                }
                let remaining = deadline - ContinuousClock.now
                let (seconds, attoseconds) = remaining.components
                let nanoseconds = max(0, seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
                eventLoop.scheduleTask(in: .nanoseconds(nanoseconds)) {
                    let waiter = self.state.withLockedValue { $0.waiters.removeValue(forKey: id) }
                    waiter?.resume()
                }
            }
        }
    }
}

private final class InboxHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let inbox: Inbox

    init(inbox: Inbox) { self.inbox = inbox }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        inbox.append(Array(buffer.readableBytesView))
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event { inbox.markClosed() }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        inbox.markClosed()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        inbox.markClosed()
        context.close(promise: nil)
    }
}
