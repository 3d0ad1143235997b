import NIOCore
import NIOHTTP1
import NIOPosix

/// Keep-alive connections to Ollama for one event loop. Client and upstream channels share the loop, so
/// forwarding never hops threads and the pool needs no lock: it is only touched on its own loop.
final class UpstreamConnectionPool {
    let eventLoop: EventLoop
    let upstream: UpstreamURL
    /// Idle connections kept per event loop; more are closed when they are returned.
    let maxIdleConnections: Int
    private var idle: [UpstreamConnection] = []

    init(eventLoop: EventLoop, upstream: UpstreamURL, maxIdleConnections: Int = 128) {
        self.eventLoop = eventLoop
        self.upstream = upstream
        self.maxIdleConnections = maxIdleConnections
    }

    /// Hands a connection to `body`: a live idle one at once if there is one (`reused` is then true),
    /// else a new one when it is connected. `body` runs on the pool's event loop.
    func acquire(_ body: @escaping (Result<(connection: UpstreamConnection, reused: Bool), Error>) -> Void) {
        self.eventLoop.preconditionInEventLoop()
        while let connection = self.idle.popLast() {
            if connection.isActive {
                body(.success((connection, true)))
                return
            }
        }
        self.connect().assumeIsolated().whenComplete { result in
            body(result.flatMap { channel in
                Result {
                    let handler = try channel.pipeline.syncOperations.handler(type: UpstreamConnectionHandler.self)
                    return (UpstreamConnection(channel: channel, handler: handler), false)
                }
            })
        }
    }

    /// Takes a connection back after a complete exchange, or closes it if the pool is full.
    func release(_ connection: UpstreamConnection) {
        self.eventLoop.preconditionInEventLoop()
        connection.delegate = nil
        connection.setReadsPaused(false)
        guard connection.isActive, self.idle.count < self.maxIdleConnections else {
            connection.close()
            return
        }
        self.idle.append(connection)
    }

    /// Closes every idle connection (at shutdown).
    func closeIdleConnections() {
        self.eventLoop.preconditionInEventLoop()
        let idle = self.idle
        self.idle.removeAll()
        for connection in idle { connection.close() }
    }

    private func connect() -> EventLoopFuture<Channel> {
        ClientBootstrap(group: self.eventLoop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelOption(.socketOption(.so_keepalive), value: 1)
            .connectTimeout(.seconds(10))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    // Framing headers are forwarded as the client wrote them (NIO would re-case them).
                    var encoder = HTTPRequestEncoder.Configuration()
                    encoder.automaticallySetFramingHeaders = false
                    // Outbound validation is off: the headers were already parsed from a valid client request.
                    try channel.pipeline.syncOperations.addHTTPClientHandlers(
                        enableOutboundHeaderValidation: false, encoderConfiguration: encoder
                    )
                    try channel.pipeline.syncOperations.addHandler(UpstreamConnectionHandler())
                }
            }
            .connect(host: self.upstream.host, port: self.upstream.port)
    }
}

/// The pools of every event loop of a group, found by the loop a client connection runs on.
final class UpstreamConnectionPools: Sendable {
    private let pools: [ObjectIdentifier: NIOLoopBoundBox<UpstreamConnectionPool>]

    init(group: EventLoopGroup, upstream: UpstreamURL) {
        var pools: [ObjectIdentifier: NIOLoopBoundBox<UpstreamConnectionPool>] = [:]
        for loop in group.makeIterator() {
            pools[ObjectIdentifier(loop)] = NIOLoopBoundBox.makeBoxSendingValue(
                UpstreamConnectionPool(eventLoop: loop, upstream: upstream), eventLoop: loop
            )
        }
        self.pools = pools
    }

    /// The pool of `eventLoop`; must be called on that loop.
    func pool(for eventLoop: EventLoop) -> UpstreamConnectionPool {
        guard let pool = self.pools[ObjectIdentifier(eventLoop)] else {
            preconditionFailure("no upstream pool for event loop \(eventLoop)")
        }
        return pool.value
    }

    func closeIdleConnections() async {
        for pool in self.pools.values {
            try? await pool.eventLoop.submit { pool.value.closeIdleConnections() }.get()
        }
    }
}
