import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// The listening socket and the open connections of one simulator.
final class SimulatorServer: Sendable {
    let serverChannel: any Channel
    private let connections: ConnectionRegistry

    private init(serverChannel: any Channel, connections: ConnectionRegistry) {
        self.serverChannel = serverChannel
        self.connections = connections
    }

    static func bind(
        host: String,
        port: Int,
        group: any EventLoopGroup,
        state: SimulatorState
    ) async throws -> SimulatorServer {
        let connections = ConnectionRegistry()
        // Ollama's host check only applies when it listens on a loopback address.
        let checksHost = state.options.checksHost && Self.isLoopback(host)
        let encoderConfiguration = {
            var configuration = HTTPResponseEncoder.Configuration()
            configuration.automaticallySetFramingHeaders = false  // Go's framing headers, spelled as Go does.
            return configuration
        }()

        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: false)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(
                        withPipeliningAssistance: true,
                        withErrorHandling: true,
                        withEncoderConfiguration: encoderConfiguration
                    )
                    try channel.pipeline.syncOperations.addHandler(
                        SimulatorConnectionHandler(
                            simulator: state,
                            checksHost: checksHost
                        )
                    )
                    connections.add(channel)
                }
            }

        let serverChannel: any Channel
        do {
            serverChannel = try await bootstrap.bind(host: host, port: port).get()
        } catch {
            throw SimulatorStartError(host: host, port: port, underlying: error)
        }
        return SimulatorServer(serverChannel: serverChannel, connections: connections)
    }

    var port: Int { serverChannel.localAddress?.port ?? 0 }

    /// Stops accepting, then closes every open connection (a response in progress ends abruptly).
    func shutdown() async throws {
        do {
            try await serverChannel.close()
        } catch ChannelError.alreadyClosed {}
        for channel in connections.all() {
            try? await channel.close()  // already closed by its client: nothing left to do
        }
    }

    private static func isLoopback(_ host: String) -> Bool {
        host.hasPrefix("127.") || host == "::1" || host == "[::1]" || host.lowercased() == "localhost"
    }
}

/// Why ``OllamaSimulator/start(host:port:defaults:options:group:)`` failed.
public struct SimulatorStartError: Error, CustomStringConvertible {
    public let host: String
    public let port: Int
    public let underlying: any Error
    public var description: String { "cannot listen on \(host):\(port): \(underlying)" }
}

/// The open connections, so that shutdown can close them.
private final class ConnectionRegistry: Sendable {
    /// Not `Synchronization.Mutex`, whose contended path ThreadSanitizer cannot see on Linux (see `SimulatorState`).
    private let channels = NIOLockedValueBox<[ObjectIdentifier: any Channel]>([:])

    func add(_ channel: any Channel) {
        let key = ObjectIdentifier(channel)
        channels.withLockedValue { $0[key] = channel }
        channel.closeFuture.whenComplete { _ in
            _ = self.channels.withLockedValue { $0.removeValue(forKey: key) }
        }
    }

    func all() -> [any Channel] { channels.withLockedValue { Array($0.values) } }
}
