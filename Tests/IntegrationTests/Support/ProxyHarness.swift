import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import OllamaMetricsProxy
import OllamaSimulator

/// A simulator and a proxy in front of it, both on kernel-chosen loopback ports, torn down after the test.
struct ProxyHarness: Sendable {
    let simulator: OllamaSimulator
    let proxy: ProxyServer

    var proxyAddress: SocketAddress { self.proxy.proxyAddress! }
    var metricsAddress: SocketAddress { self.proxy.metricsAddress! }
    var simulatorAddress: SocketAddress { try! SocketAddress(ipAddress: "127.0.0.1", port: self.simulator.port) }

    static func with<T: Sendable>(
        upstreamBasePath: String = "",
        upstreamURL: String? = nil,
        maxModelLabels: Int = 100,
        requestHeadTimeout: Duration = .seconds(75),
        upstreamIdleTimeout: Duration = .seconds(60),
        clientHeader: String? = nil,
        // Far longer than the proxy's one second, so that tests expecting `ollama_up 1` hold on a loaded machine
        // and under ThreadSanitizer (5 s was exceeded there); tests of the timeout itself pass their own.
        ollamaStatusTimeout: Duration = .seconds(20),
        accessLog: CapturedLog? = nil,
        configure: @Sendable (inout ProxyConfiguration) -> Void = { _ in },
        _ body: @Sendable (ProxyHarness) async throws -> T
    ) async throws -> T {
        let simulator = try await OllamaSimulator.start(host: "127.0.0.1", port: 0)
        let upstream = try UpstreamURL(parsing: upstreamURL ?? "http://127.0.0.1:\(simulator.port)\(upstreamBasePath)")
        var configuration = ProxyConfiguration(
            listen: ListenAddress(host: "127.0.0.1", port: 0),
            metricsListen: ListenAddress(host: "127.0.0.1", port: 0),
            upstream: upstream,
            maxModelLabels: maxModelLabels,
            requestHeadTimeout: requestHeadTimeout,
            upstreamIdleTimeout: upstreamIdleTimeout,
            threads: 2,
            clientHeader: clientHeader
        )
        configure(&configuration)
        var logger = Logger(label: "test-proxy")
        logger.logLevel = .critical
        let proxy = ProxyServer(
            configuration: configuration, logger: logger,
            accessLogger: accessLog.map { log in Logger(label: ProxyServer.accessLogLabel) { CapturingLogHandler(label: $0, log: log) } },
            ollamaStatusTimeout: ollamaStatusTimeout
        )
        do {
            try await proxy.start()
        } catch {
            try? await simulator.shutdown()
            throw error
        }
        let harness = ProxyHarness(simulator: simulator, proxy: proxy)
        do {
            let result = try await body(harness)
            await proxy.shutdown(drainTimeout: .seconds(2))
            try? await simulator.shutdown()
            return result
        } catch {
            await proxy.shutdown(drainTimeout: .seconds(2))
            try? await simulator.shutdown()
            throw error
        }
    }

    /// One request through the proxy on a fresh connection.
    func viaProxy(
        _ method: HTTPMethod, _ uri: String, headers: [(String, String)] = [], body: String? = nil
    ) async throws -> ReceivedResponse {
        try await httpRequest(self.proxyAddress, method, uri, headers: headers, body: body)
    }

    /// The same request straight to the simulator, to compare.
    func direct(
        _ method: HTTPMethod, _ uri: String, headers: [(String, String)] = [], body: String? = nil
    ) async throws -> ReceivedResponse {
        try await httpRequest(self.simulatorAddress, method, uri, headers: headers, body: body)
    }

    func scrape() async throws -> MetricsScrape {
        let response = try await httpRequest(self.metricsAddress, .GET, "/metrics")
        return MetricsScrape(text: response.bodyString)
    }

    /// Polls the metrics until `condition` holds (a request's metrics are final before the client sees its
    /// last byte, but a disconnect is noticed asynchronously). Gives up after `timeout`.
    func scrape(until condition: (MetricsScrape) -> Bool, timeout: Duration = .seconds(10)) async throws
        -> MetricsScrape
    {
        let deadline = ContinuousClock.now + timeout
        var scrape = try await self.scrape()
        while !condition(scrape), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
            scrape = try await self.scrape()
        }
        return scrape
    }
}

import NIOHTTP1

/// A hung Ollama: a listener that accepts connections and never answers (like one stopped with SIGSTOP).
/// Close it when done.
func startHungListener() async throws -> (channel: Channel, port: Int) {
    let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .childChannelInitializer { $0.eventLoop.makeSucceededVoidFuture() }
        .bind(host: "127.0.0.1", port: 0).get()
    return (channel, channel.localAddress!.port!)
}

/// Log entries captured in-process, for tests of what the proxy logs.
final class CapturedLog: Sendable {
    struct Entry: Sendable {
        var label: String
        var level: Logger.Level
        var message: String
        var metadata: Logger.Metadata

        /// A metadata value as text (`nil` when absent).
        subscript(key: String) -> String? { self.metadata[key].map { "\($0)" } }
    }

    private let box = NIOLockedValueBox<[Entry]>([])

    var entries: [Entry] { self.box.withLockedValue { $0 } }

    func append(_ entry: Entry) { self.box.withLockedValue { $0.append(entry) } }

    /// Waits until `count` entries were logged (a disconnect is noticed asynchronously); gives up after
    /// `timeout` and returns what there is.
    func entries(count: Int, timeout: Duration = .seconds(10)) async throws -> [Entry] {
        let deadline = ContinuousClock.now + timeout
        while self.entries.count < count, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        return self.entries
    }
}

struct CapturingLogHandler: LogHandler {
    let label: String
    let log: CapturedLog
    var logLevel: Logger.Level = .trace
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { self.metadata[key] }
        set { self.metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        self.log.append(.init(
            label: self.label, level: event.level, message: "\(event.message)",
            metadata: self.metadata.merging(event.metadata ?? [:]) { _, new in new }
        ))
    }
}
