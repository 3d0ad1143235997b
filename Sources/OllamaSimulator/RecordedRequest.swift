import NIOHTTP1

/// A request as the simulator received it.
public struct RecordedRequest: Sendable {
    /// 1-based position among all requests this simulator received since it started (``OllamaSimulator/reset()``
    /// does not restart it). The simulated response IDs derive from it.
    public let sequenceNumber: Int
    /// `GET`, `POST`, …
    public let method: String
    /// The request target exactly as on the request line, query string included.
    public let uri: String
    /// `HTTP/1.1` or `HTTP/1.0`.
    public let version: String
    /// The headers in the order and spelling received (`Host`, `X-Forwarded-For`, …).
    public let headers: HTTPHeaders
    /// The body bytes. Empty for blob uploads, whose size is in ``bodyByteCount`` only.
    public let body: [UInt8]
    /// The number of body bytes received.
    public let bodyByteCount: Int
    /// What became of the response.
    public internal(set) var outcome: RequestOutcome

    /// The path part of ``uri``.
    public var path: String {
        uri.firstIndex(of: "?").map { String(uri[..<$0]) } ?? uri
    }

    /// The query string after `?`, or `nil`.
    public var query: String? {
        uri.firstIndex(of: "?").map { String(uri[uri.index(after: $0)...]) }
    }

    /// The first value of a header (case-insensitive), or `nil`.
    public func header(_ name: String) -> String? { headers.first(name: name) }

    /// The body as UTF-8 text.
    public var bodyText: String { String(decoding: body, as: UTF8.self) }
}

/// How the simulator's handling of a request ended.
public enum RequestOutcome: Sendable, Equatable {
    /// The response is still being produced.
    case inProgress
    /// The whole response was written (errors answered as responses included).
    case completed
    /// The client's connection closed before the response was complete: the client went away (what a proxy must
    /// propagate to Ollama so that it stops generating).
    case cancelled
    /// The simulator closed or reset the connection on purpose (`X-Sim-Drop-After`, `X-Sim-Reset-After`,
    /// `X-Sim-Reset-Mid-Head`).
    case dropped
}

/// The simulator's counters at one instant, for ``OllamaSimulator/waitUntil(timeout:_:)``.
public struct SimulatorSnapshot: Sendable {
    /// Requests fully received (head and body), since the last reset.
    public var requestCount: Int
    /// Requests whose client disconnected before the response was complete, since the last reset.
    public var cancellationCount: Int
    /// Requests whose response is being produced now.
    public var activeResponses: Int
    /// Responses held at each gate now.
    public var heldAtGate: [String: Int]
}
