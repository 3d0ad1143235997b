import NIOCore
import NIOPosix

/// A faithful, deterministic stand-in for Ollama's HTTP API, served on a real socket.
///
/// It speaks every endpoint of `ollama-wire-formats.md` with Go's framing (headers only with the first event,
/// one HTTP chunk per event, `Content-Length` up to 2048 bytes), records every request, counts client
/// disconnects, and can be steered per request with `X-Sim-*` headers (see ``SimulatorControl``).
///
/// ```swift
/// let ollama = try await OllamaSimulator.start()
/// defer { Task { try await ollama.shutdown() } }
/// // … point the proxy at ollama.baseURL …
/// #expect(await ollama.waitForCancellations(1, timeout: .seconds(5)))
/// ```
public final class OllamaSimulator: Sendable {
    private let server: SimulatorServer
    private let state: SimulatorState

    /// The address it listens on, as given to ``start(host:port:defaults:options:group:)``.
    public let host: String
    /// The port it listens on (the one the system chose when started with port 0).
    public let port: Int

    private init(server: SimulatorServer, state: SimulatorState, host: String) {
        self.server = server
        self.state = state
        self.host = host
        self.port = server.port
    }

    /// Starts listening. Port 0 lets the system choose a free port (see ``port``).
    ///
    /// - Parameters:
    ///   - defaults: The behaviour of requests without `X-Sim-*` headers; changeable later through ``defaults``.
    ///   - options: Instance-wide settings (clock, recording, host check, model catalogue).
    ///   - group: The event loops to run on; by default NIO's shared singleton group.
    public static func start(
        host: String = "127.0.0.1",
        port: Int = 0,
        defaults: SimulatorBehaviour = .init(),
        options: SimulatorOptions = .init(),
        group: (any EventLoopGroup)? = nil
    ) async throws -> OllamaSimulator {
        let state = SimulatorState(defaults: defaults, options: options)
        let server = try await SimulatorServer.bind(
            host: host,
            port: port,
            group: group ?? MultiThreadedEventLoopGroup.singleton,
            state: state
        )
        return OllamaSimulator(server: server, state: state, host: host)
    }

    /// `http://HOST:PORT` (IPv6 hosts in brackets), without a trailing slash.
    public var baseURL: String {
        let printableHost = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
        return "http://\(printableHost):\(port)"
    }

    /// Stops listening and closes every open connection. Responses still in progress end abruptly and are
    /// recorded as ``RequestOutcome/dropped`` (not as cancellations).
    public func shutdown() async throws {
        state.beginShutdown()
        try await server.shutdown()
    }

    // MARK: Behaviour

    /// The behaviour each request starts from before its `X-Sim-*` headers apply. Thread-safe.
    public var defaults: SimulatorBehaviour {
        get { state.defaults }
        set { state.defaults = newValue }
    }

    /// The instance-wide settings it was started with.
    public var options: SimulatorOptions { state.options }

    // MARK: Recording

    /// Every request received since the last ``reset()``, in order of arrival (empty when
    /// ``SimulatorOptions/recordsRequests`` is off).
    public var requests: [RecordedRequest] { state.records }

    /// Requests fully received since the last ``reset()``.
    public var requestCount: Int { state.snapshot.requestCount }

    /// Requests whose client connection closed before their response was complete, since the last ``reset()``.
    public var cancellationCount: Int { state.snapshot.cancellationCount }

    /// Responses being produced right now.
    public var activeResponses: Int { state.snapshot.activeResponses }

    /// All counters at once.
    public var snapshot: SimulatorSnapshot { state.snapshot }

    /// Blobs uploaded with `POST /api/blobs/:digest` since the last ``reset()``: digest → byte count.
    public var uploadedBlobs: [String: Int] { state.blobSizes() }

    /// Forgets recorded requests, the request and cancellation counts, uploaded blobs and loaded models, and closes
    /// every gate again. Responses in progress, ``activeResponses`` and ``defaults`` are untouched.
    public func reset() { state.reset() }

    // MARK: Waiting

    /// Waits until `condition` holds for the counters, or `timeout` passes. Returns whether it holds.
    public func waitUntil(
        timeout: Duration = .seconds(10),
        _ condition: @escaping @Sendable (SimulatorSnapshot) -> Bool
    ) async -> Bool {
        await state.waitUntil(timeout: timeout, condition)
    }

    /// Waits until at least `count` requests have been fully received.
    public func waitForRequests(_ count: Int, timeout: Duration = .seconds(10)) async -> Bool {
        await waitUntil(timeout: timeout) { $0.requestCount >= count }
    }

    /// Waits until at least `count` client disconnects have been counted.
    public func waitForCancellations(_ count: Int, timeout: Duration = .seconds(10)) async -> Bool {
        await waitUntil(timeout: timeout) { $0.cancellationCount >= count }
    }

    /// Waits until no response is in progress.
    public func waitForIdle(timeout: Duration = .seconds(10)) async -> Bool {
        await waitUntil(timeout: timeout) { $0.activeResponses == 0 }
    }

    // MARK: Gates

    /// Lets every response held at gate `name` (header `X-Sim-Gate`) go on, and every later one pass without
    /// stopping, until ``closeGate(_:)`` or ``reset()``.
    public func openGate(_ name: String) { state.openGate(name) }

    /// Makes gate `name` hold responses again.
    public func closeGate(_ name: String) { state.closeGate(name) }

    /// Waits until at least `count` responses are held at gate `name`.
    public func waitForHeld(atGate name: String, count: Int = 1, timeout: Duration = .seconds(10)) async -> Bool {
        await waitUntil(timeout: timeout) { ($0.heldAtGate[name] ?? 0) >= count }
    }
}
