import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The running proxy: the client-facing listener and the metrics listener, on one event loop group.
public final class ProxyServer: Sendable {
    public let configuration: ProxyConfiguration
    public let metrics: ProxyMetrics
    private let logger: Logger
    private let accessLogger: Logger?
    private let group: MultiThreadedEventLoopGroup
    private let ownsGroup: Bool
    private let pools: UpstreamConnectionPools
    private let connections: ClientConnectionTracker
    private let refusals: RefusalReporter
    private let channels: NIOLockedValueBox<(proxy: Channel, metrics: Channel)?>
    private let ollamaStatusTimeout: Duration

    /// The label of the access log's logger.
    public static let accessLogLabel = AccessLogRecorder.label

    /// The address the proxy accepts clients on (with the real port when configured with port 0).
    public var proxyAddress: SocketAddress? { self.channels.withLockedValue { $0?.proxy.localAddress } }
    /// The address `/metrics` is served on.
    public var metricsAddress: SocketAddress? { self.channels.withLockedValue { $0?.metrics.localAddress } }

    /// - Precondition: `configuration.validate()` does not throw. A program checks what its users typed
    ///   (the command does, and reports it in one line) before it builds a server; an invalid configuration
    ///   reaching this point is a bug in that program and stops it here, at its cause.
    /// - Parameter ollamaStatusTimeout: How long a scrape waits for Ollama's `/api/ps` and `/api/version`
    ///   before reporting `ollama_up 0`; their answer is cached for a second.
    /// - Parameter accessLogger: Where the access log goes, one `info` line per proxied request (see
    ///   `AccessLogRecorder` for its keys); nil (the default): no access log. The command passes a logger
    ///   labelled `accessLogLabel`.
    public init(
        configuration: ProxyConfiguration,
        metrics: ProxyMetrics? = nil,
        logger: Logger = Logger(label: "ollama-metrics-proxy"),
        accessLogger: Logger? = nil,
        group: MultiThreadedEventLoopGroup? = nil,
        ollamaStatusTimeout: Duration = .seconds(1)
    ) {
        do {
            try configuration.validate()
        } catch {
            preconditionFailure("ProxyServer needs a valid configuration: \(error)")
        }
        self.configuration = configuration
        self.ollamaStatusTimeout = ollamaStatusTimeout
        self.metrics = metrics ?? ProxyMetrics(maxModelLabels: configuration.maxModelLabels, logger: logger)
        self.logger = logger
        self.accessLogger = accessLogger
        self.ownsGroup = group == nil
        self.group = group ?? MultiThreadedEventLoopGroup(numberOfThreads: configuration.threads)
        self.pools = UpstreamConnectionPools(group: self.group, configuration: configuration)
        self.refusals = RefusalReporter(registry: self.metrics.registry, logger: logger)
        self.connections = ClientConnectionTracker(limit: configuration.maxConnections, gauge: self.refusals.openConnections)
        self.channels = NIOLockedValueBox(nil)
    }

    /// Binds both listeners. Throws a `ServerStartError` that names the address and the reason.
    public func start() async throws {
        let accessLog = self.accessLogger.map { AccessLogRecorder(logger: $0) }
        // The status page lists client addresses only when the access log writes them anyway (it is on, and
        // its `info` lines are not below the log level).
        let accessLogWrites = self.accessLogger.map { $0.logLevel <= .info } ?? false
        let statusPage = self.configuration.statusPage
            ? StatusRecorder(modelLabels: self.metrics.modelLabels, showsClientAddresses: accessLogWrites) : nil
        let shared = ProxySharedState(
            upstream: self.configuration.upstream,
            observer: CompositeLifecycleObserver(
                [
                    MetricsRecorder(metrics: self.metrics),
                    ServingRecorder(metrics: self.metrics, timeToFirstToken: statusPage?.timeToFirstTokenSink),
                ]
                    + (self.configuration.clientHeader.map {
                        [ClientAttributionRecorder(header: $0, metrics: self.metrics, key: self.configuration.clientHashKey ?? .random())]
                    } ?? [])
            ),
            requestObserver: CompositeRequestLifecycleObserver.combining(
                [accessLog as (any RequestLifecycleObserver)?, statusPage].compactMap { $0 }
            ),
            logger: self.logger,
            requestHeadTimeout: TimeAmount(self.configuration.requestHeadTimeout),
            maxInspectedRequestBody: self.configuration.maxInspectedRequestBody,
            headLimits: RequestHeadLimits(
                maxBytes: self.configuration.maxRequestHeadSize, maxHeaderCount: self.configuration.maxRequestHeaders
            ),
            refusals: self.refusals
        )
        let pools = self.pools
        let connections = self.connections
        let refusals = self.refusals
        let tooManyConnections = ClientRefusal.tooManyConnections(limit: self.configuration.maxConnections)
        let tooManyConnectionsResponse = ConnectionLimitResponder.wireBytes(of: tooManyConnections)
        let proxyBootstrap = ServerBootstrap(group: self.group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    guard connections.admit(channel) else {
                        refusals.refused(tooManyConnections, clientAddress: channel.remoteAddress?.ipAddress, on: channel.eventLoop)
                        try channel.pipeline.syncOperations.addHandler(ConnectionLimitResponder(response: tooManyConnectionsResponse))
                        return
                    }
                    // Requests are read by NIO's llhttp decoder: it is what guards against request smuggling.
                    // Responses are written by `ProxyConnectionHandler` itself (`ClientResponseEncoder`), with
                    // framing headers as Ollama wrote them. Pipelining and malformed requests are handled by
                    // the handler too: fewer handlers, and no stopping and restarting of reads around every
                    // request.
                    try channel.pipeline.syncOperations.addHandler(
                        ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes))
                    )
                    try channel.pipeline.syncOperations.addHandler(
                        ProxyConnectionHandler(shared: shared, upstream: pools.pool(for: channel.eventLoop))
                    )
                }
            }
        let proxyChannel = try await Self.bind(proxyBootstrap, to: self.configuration.listen, role: "--listen")

        let metrics = self.metrics
        let metricsToken = self.configuration.metricsToken
        let modelLabels = self.metrics.modelLabels
        let ollama = OllamaStatusProbe(
            upstream: self.configuration.upstream, group: self.group, timeout: TimeAmount(self.ollamaStatusTimeout),
            listed: { modelLabels.updateListed($0) }
        )
        let metricsBootstrap = ServerBootstrap(group: self.group)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(
                        MetricsRequestHandler(metrics: metrics, ollama: ollama, token: metricsToken, statusPage: statusPage)
                    )
                }
            }
        let metricsChannel: Channel
        do {
            metricsChannel = try await Self.bind(
                metricsBootstrap, to: self.configuration.metricsListen, role: "--metrics-listen"
            )
        } catch {
            try? await proxyChannel.close()
            throw error
        }
        self.channels.withLockedValue { $0 = (proxyChannel, metricsChannel) }
    }

    /// Keep-alive connections to Ollama that are open and unused right now.
    public func idleUpstreamConnectionCount() async -> Int {
        await self.pools.idleConnectionCount()
    }

    /// Stops accepting connections, lets in-flight requests finish for up to `drainTimeout`, then closes
    /// whatever is left.
    public func shutdown(drainTimeout: Duration = .seconds(30)) async {
        guard let channels = self.channels.withLockedValue({ current in
            defer { current = nil }
            return current
        }) else {
            if self.ownsGroup { try? await self.group.shutdownGracefully() }
            return
        }
        try? await channels.metrics.close()
        try? await channels.proxy.close()
        await self.connections.drain(timeout: drainTimeout)
        await self.pools.closeIdleConnections()
        if self.ownsGroup {
            try? await self.group.shutdownGracefully()
        }
    }

    private static func bind(_ bootstrap: ServerBootstrap, to address: ListenAddress, role: String) async throws
        -> Channel
    {
        do {
            if let host = address.host {
                return try await bootstrap.bind(host: host, port: address.port).get()
            }
            // `:PORT` means every interface: IPv6 and IPv4 where the machine has IPv6, IPv4 alone otherwise.
            do {
                return try await bootstrap.bind(host: "::", port: address.port).get()
            } catch {
                return try await bootstrap.bind(host: "0.0.0.0", port: address.port).get()
            }
        } catch {
            throw ServerStartError(role: role, address: address, underlying: error)
        }
    }
}

/// A listener that could not be opened, said the way a user can act on it.
public struct ServerStartError: Error, CustomStringConvertible {
    public let role: String
    public let address: ListenAddress
    public let underlying: Error

    public var description: String {
        "cannot listen on \(self.address) (\(self.role)): \(Self.reason(self.underlying))"
    }

    static func reason(_ error: Error) -> String {
        if let ioError = error as? IOError {
            switch ioError.errnoCode {
            case EADDRINUSE: return "address already in use"
            case EACCES: return "permission denied (ports below 1024 need privileges)"
            case EADDRNOTAVAIL: return "address not available on this machine"
            default: return "\(ioError)"
            }
        }
        if error is SocketAddressError {
            return "unknown host"
        }
        return "\(error)"
    }
}
