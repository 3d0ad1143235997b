import Logging
import NIOCore

/// The connection handler for the benchmark package, which drives it between in-memory channels to count
/// what one proxied request costs (allocations, time) without sockets. Not API: `@_spi(Benchmarking)`.
@_spi(Benchmarking)
public enum BenchmarkingHooks {
    /// The last handler of every connection to Ollama.
    public static func makeUpstreamHandler() -> ChannelHandler {
        UpstreamConnectionHandler()
    }

    /// The handler of one client connection, recording into `metrics`. Each new connection to Ollama it
    /// needs is `connect()`, a channel whose pipeline ends with a `makeUpstreamHandler()`; connections come
    /// back for reuse as with the real pool.
    public static func makeClientHandler(
        upstream: UpstreamURL, metrics: ProxyMetrics, connect: @escaping () -> Channel
    ) -> ChannelHandler {
        var logger = Logger(label: "ollama-metrics-proxy.benchmark")
        logger.logLevel = .critical
        let shared = ProxySharedState(
            upstream: upstream, observer: MetricsRecorder(metrics: metrics), logger: logger,
            requestHeadTimeout: .seconds(75), maxInspectedRequestBody: 32 * 1024 * 1024
        )
        return ProxyConnectionHandler(shared: shared, upstream: ChannelFactoryUpstreams(connect: connect))
    }
}

/// Connections to Ollama made by a closure and kept for reuse: the pool without sockets or timers.
private final class ChannelFactoryUpstreams: UpstreamConnectionSource {
    private let connect: () -> Channel
    private var idle: [UpstreamConnection] = []

    init(connect: @escaping () -> Channel) {
        self.connect = connect
    }

    func acquire(_ body: @escaping (Result<(connection: UpstreamConnection, reused: Bool), Error>) -> Void) {
        if let connection = self.idle.popLast() {
            body(.success((connection, true)))
            return
        }
        let channel = self.connect()
        body(Result {
            let handler = try channel.pipeline.syncOperations.handler(type: UpstreamConnectionHandler.self)
            return (UpstreamConnection(channel: channel, handler: handler), false)
        })
    }

    func release(_ connection: UpstreamConnection) {
        connection.delegate = nil
        self.idle.append(connection)
    }
}
