import NIOCore
import NIOHTTP1
import NIOPosix

/// Keep-alive connections to Ollama for one event loop. Client and upstream channels share the loop, so
/// forwarding never hops threads and the pool needs no lock: it is only touched on its own loop.
///
/// Connections left idle for `idleTimeout` are closed, so that a burst of concurrent requests does not leave
/// hundreds of sockets open in Ollama for good. When a loop has been quiet that long, freed heap memory is
/// handed back to the system too (`HeapTrimmer`, off the event loops): after a burst, memory returns to its
/// idle level.
final class UpstreamConnectionPool {
    private struct IdleConnection {
        let connection: UpstreamConnection
        let since: NIODeadline
    }

    let eventLoop: EventLoop
    let upstream: UpstreamURL
    /// Idle connections kept per event loop; more are closed when they are returned.
    let maxIdleConnections: Int
    let idleTimeout: TimeAmount
    let connectTimeout: TimeAmount
    /// Most recently returned last: reuse takes the warmest connection, expiry starts with the oldest.
    private var idle: [IdleConnection] = []
    private var expiryTimer: Scheduled<Void>?

    init(
        eventLoop: EventLoop, upstream: UpstreamURL, maxIdleConnections: Int, idleTimeout: TimeAmount,
        connectTimeout: TimeAmount
    ) {
        self.eventLoop = eventLoop
        self.upstream = upstream
        self.maxIdleConnections = maxIdleConnections
        self.idleTimeout = idleTimeout
        self.connectTimeout = connectTimeout
    }

    var idleConnectionCount: Int { self.idle.count }

    /// Hands a connection to `body`: a live idle one at once if there is one (`reused` is then true),
    /// else a new one when it is connected. `body` runs on the pool's event loop.
    func acquire(_ body: @escaping (Result<(connection: UpstreamConnection, reused: Bool), Error>) -> Void) {
        self.eventLoop.preconditionInEventLoop()
        while let entry = self.idle.popLast() {
            if entry.connection.isActive {
                body(.success((entry.connection, true)))
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
        let now = NIODeadline.now()
        self.idle.append(IdleConnection(connection: connection, since: now))
        if self.expiryTimer == nil {
            self.scheduleExpiry(at: now + self.idleTimeout)
        }
    }

    /// Closes every idle connection (at shutdown).
    func closeIdleConnections() {
        self.eventLoop.preconditionInEventLoop()
        self.expiryTimer?.cancel()
        self.expiryTimer = nil
        let idle = self.idle
        self.idle.removeAll()
        for entry in idle { entry.connection.close() }
    }

    /// One timer per pool, not per connection: it wakes when the oldest idle connection expires.
    private func scheduleExpiry(at deadline: NIODeadline) {
        self.expiryTimer = self.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) {
            self.expiryTimer = nil
            self.closeExpiredConnections()
        }
    }

    private func closeExpiredConnections() {
        let now = NIODeadline.now()
        let expired = self.idle.prefix { $0.since + self.idleTimeout <= now }
        self.idle.removeFirst(expired.count)
        for entry in expired { entry.connection.close() }
        if let oldest = self.idle.first {
            self.scheduleExpiry(at: oldest.since + self.idleTimeout)
        } else if !expired.isEmpty {
            // No connection was returned for a whole `idleTimeout`: this loop is quiet.
            HeapTrimmer.trimInBackground()
        }
    }

    private func connect() -> EventLoopFuture<Channel> {
        ClientBootstrap(group: self.eventLoop)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelOption(.socketOption(.so_keepalive), value: 1)
            .connectTimeout(self.connectTimeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    // Framing headers are forwarded as the client wrote them (NIO would re-case them).
                    var encoder = HTTPRequestEncoder.Configuration()
                    encoder.automaticallySetFramingHeaders = false
                    // No outbound header validation: the headers were already parsed from a valid client request.
                    // Responses are read by `UpstreamConnectionHandler` itself, not by NIO's decoder.
                    try channel.pipeline.syncOperations.addHandler(HTTPRequestEncoder(configuration: encoder))
                    try channel.pipeline.syncOperations.addHandler(UpstreamConnectionHandler())
                }
            }
            .connect(host: self.upstream.host, port: self.upstream.port)
    }
}

/// The pools of every event loop of a group, found by the loop a client connection runs on.
final class UpstreamConnectionPools: Sendable {
    private let pools: [ObjectIdentifier: NIOLoopBoundBox<UpstreamConnectionPool>]

    /// One pool per loop of `group`, with the upstream and the limits of `configuration`.
    init(group: EventLoopGroup, configuration: ProxyConfiguration) {
        var pools: [ObjectIdentifier: NIOLoopBoundBox<UpstreamConnectionPool>] = [:]
        for loop in group.makeIterator() {
            let pool = UpstreamConnectionPool(
                eventLoop: loop,
                upstream: configuration.upstream,
                maxIdleConnections: configuration.maxIdleUpstreamConnectionsPerThread,
                idleTimeout: TimeAmount(configuration.upstreamIdleTimeout),
                connectTimeout: TimeAmount(configuration.upstreamConnectTimeout)
            )
            pools[ObjectIdentifier(loop)] = NIOLoopBoundBox.makeBoxSendingValue(pool, eventLoop: loop)
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

    /// Idle connections of every pool, for tests.
    func idleConnectionCount() async -> Int {
        var total = 0
        for pool in self.pools.values {
            total += (try? await pool.eventLoop.submit { pool.value.idleConnectionCount }.get()) ?? 0
        }
        return total
    }

    func closeIdleConnections() async {
        for pool in self.pools.values {
            try? await pool.eventLoop.submit { pool.value.closeIdleConnections() }.get()
        }
    }
}
