import Logging
import NIOCore
import ServiceLifecycle

/// Runs a `ProxyServer` under swift-service-lifecycle: binds on start, and on SIGTERM/SIGINT stops
/// accepting, drains in-flight requests, then exits.
public struct ProxyService: Service {
    public let server: ProxyServer
    let logger: Logger

    public init(server: ProxyServer, logger: Logger) {
        self.server = server
        self.logger = logger
    }

    public func run() async throws {
        try await self.server.start()
        let configuration = self.server.configuration
        let listen = Self.describe(configuration.listen, bound: self.server.proxyAddress)
        let metricsListen = Self.describe(configuration.metricsListen, bound: self.server.metricsAddress)
        self.logger.info(
            "ollama-metrics-proxy \(ProxyVersion.current) listening on \(listen), forwarding to \(configuration.upstream)"
        )
        let access = configuration.metricsToken == nil ? "" : " (bearer token required)"
        let page = configuration.statusPage ? ", the status page at / and its JSON at /status.json" : ""
        self.logger.info("serving Prometheus metrics on \(metricsListen) at /metrics\(page)\(access)")
        try? await gracefulShutdown()
        self.logger.info("shutting down: draining in-flight requests")
        await self.server.shutdown()
    }
}

extension ProxyService {
    /// The configured address with the port actually bound (they differ for port 0).
    static func describe(_ address: ListenAddress, bound: SocketAddress?) -> String {
        var address = address
        if let port = bound?.port { address.port = port }
        return address.host == nil ? "\(address) (all interfaces)" : "\(address)"
    }
}
