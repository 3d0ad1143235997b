import NIOCore

/// Everything the proxy needs to run. Parsing (`ListenAddress`, `UpstreamURL`) rejects malformed text;
/// `validate()` checks every value against its accepted range, and `ProxyServer` requires a valid one.
///
/// Every limit the proxy has is a field here, with a default that is the safe choice.
public struct ProxyConfiguration: Sendable {
    /// Where clients connect (`--listen`, default `:11435`).
    public var listen: ListenAddress
    /// Where Prometheus scrapes `/metrics` (`--metrics-listen`, default `:9836`).
    public var metricsListen: ListenAddress
    /// The Ollama server every request is forwarded to (`--ollama-url`, default `http://localhost:11434`).
    public var upstream: UpstreamURL
    /// How many distinct `model` label values are kept (`--max-models`, default 100, at least 1). At the
    /// limit, new names are recorded under the one overflow value `__overflow__`.
    public var maxModelLabels: Int
    /// How long a client may take to send a complete request head, and how long an idle keep-alive client
    /// connection is kept open (default 75 s, like nginx's keep-alive timeout; 1 ms to 24 h). At the limit
    /// the connection is closed. Nothing else in the proxy times out a client: streams may last hours.
    public var requestHeadTimeout: Duration
    /// How long an unused keep-alive connection to Ollama is kept (default 60 s; 1 ms to 24 h). At the limit
    /// it is closed; a thread that got no connection back for that long also gives freed heap memory back
    /// to the system.
    /// This is not a timeout on requests: a connection in use is never closed by the proxy.
    public var upstreamIdleTimeout: Duration
    /// How long opening a TCP connection to Ollama may take (default 10 s; 1 ms to 10 min). At the limit the
    /// client gets `502 Bad Gateway`. Only the connect is timed: Ollama sends no response head until the
    /// first token, which can take minutes, so nothing after the connect has a timeout.
    public var upstreamConnectTimeout: Duration
    /// Idle keep-alive connections to Ollama kept per event loop thread (default 128; 0 to 65,536, where 0
    /// means no reuse). A connection returned to a full pool is closed instead of kept.
    public var maxIdleUpstreamConnectionsPerThread: Int
    /// The largest inference request body held in memory to read the model name and add the OpenAI usage
    /// option (default 32 MiB; 1 KiB to 1 GiB). A larger body streams through untouched, without the usage
    /// option, and the request is recorded as model `unknown`.
    public var maxInspectedRequestBody: Int
    /// Event loop threads serving the proxy (`--threads`, default one per core; 1 to 1024).
    public var threads: Int
    /// A request header whose value labels per-client counters (`--client-header`); nil (the default): none.
    public var clientHeader: String?
    /// The key of the `client` labels of credential headers (`--client-hash-key-file`, or the command's state
    /// file); nil (the default): a random key for this server's life, so labels change at each start.
    public var clientHashKey: ClientHashKey?
    /// The largest request head forwarded, request line and header lines with their line ends
    /// (`--max-request-head-size`, default 64 KiB; 1 KiB to 80 KiB, NIO's decoder's own ceiling). A larger one
    /// is answered `431 Request Header Fields Too Large` and the connection closed.
    public var maxRequestHeadSize: Int
    /// The most header fields a request may have (`--max-request-headers`, default 100; 1 to 10,000). More
    /// are answered `431` and the connection closed.
    public var maxRequestHeaders: Int
    /// The most client connections open at once (`--max-connections`, default 10,000; 1 to 1,000,000). A
    /// connection beyond them is answered `503 Service Unavailable` with `Retry-After: 1` and closed.
    public var maxConnections: Int
    /// The bearer token `/metrics` requires (`--metrics-token-file`); nil (the default): open to everyone
    /// who reaches the metrics port. `/healthz` and `/readyz` never ask for it.
    public var metricsToken: MetricsToken?
    /// Whether the metrics port serves the live status page at `/` and its JSON at `/status.json`
    /// (`--status-page`, default on), behind `metricsToken` like `/metrics`. Off, both paths are 404 and the
    /// proxy keeps nothing for them.
    public var statusPage: Bool

    public static let defaultMaxRequestHeadSize = 64 * 1024
    public static let defaultMaxRequestHeaders = 100
    public static let defaultMaxConnections = 10_000

    public init(
        listen: ListenAddress = .init(host: nil, port: 11435),
        metricsListen: ListenAddress = .init(host: nil, port: 9836),
        upstream: UpstreamURL = try! .init(parsing: "http://localhost:11434"),
        maxModelLabels: Int = 100,
        requestHeadTimeout: Duration = .seconds(75),
        upstreamIdleTimeout: Duration = .seconds(60),
        upstreamConnectTimeout: Duration = .seconds(10),
        maxIdleUpstreamConnectionsPerThread: Int = 128,
        maxInspectedRequestBody: Int = 32 * 1024 * 1024,
        threads: Int = System.coreCount,
        clientHeader: String? = nil,
        clientHashKey: ClientHashKey? = nil,
        maxRequestHeadSize: Int = Self.defaultMaxRequestHeadSize,
        maxRequestHeaders: Int = Self.defaultMaxRequestHeaders,
        maxConnections: Int = Self.defaultMaxConnections,
        metricsToken: MetricsToken? = nil,
        statusPage: Bool = true
    ) {
        self.listen = listen
        self.metricsListen = metricsListen
        self.upstream = upstream
        self.maxModelLabels = maxModelLabels
        self.requestHeadTimeout = requestHeadTimeout
        self.upstreamIdleTimeout = upstreamIdleTimeout
        self.upstreamConnectTimeout = upstreamConnectTimeout
        self.maxIdleUpstreamConnectionsPerThread = maxIdleUpstreamConnectionsPerThread
        self.maxInspectedRequestBody = maxInspectedRequestBody
        self.threads = threads
        self.clientHeader = clientHeader
        self.clientHashKey = clientHashKey
        self.maxRequestHeadSize = maxRequestHeadSize
        self.maxRequestHeaders = maxRequestHeaders
        self.maxConnections = maxConnections
        self.metricsToken = metricsToken
        self.statusPage = statusPage
    }

    /// Throws the first value outside its accepted range, naming the flag (or, for values without one, the
    /// field) and the range. Addresses and the URL are already valid: their types cannot hold a bad value.
    public func validate() throws(ConfigurationError) {
        guard self.maxModelLabels >= 1 else {
            throw ConfigurationError("invalid --max-models \(self.maxModelLabels): expected 1 or more")
        }
        guard (1...1024).contains(self.threads) else {
            throw ConfigurationError("invalid --threads \(self.threads): expected 1 to 1024")
        }
        try Self.check(self.requestHeadTimeout, "requestHeadTimeout", within: .milliseconds(1)...(.seconds(24 * 3600)), "1 ms to 24 h")
        try Self.check(self.upstreamIdleTimeout, "upstreamIdleTimeout", within: .milliseconds(1)...(.seconds(24 * 3600)), "1 ms to 24 h")
        try Self.check(self.upstreamConnectTimeout, "upstreamConnectTimeout", within: .milliseconds(1)...(.seconds(600)), "1 ms to 10 min")
        guard (0...65_536).contains(self.maxIdleUpstreamConnectionsPerThread) else {
            throw ConfigurationError(
                "invalid maxIdleUpstreamConnectionsPerThread \(self.maxIdleUpstreamConnectionsPerThread): expected 0 to 65536"
            )
        }
        guard (1024...(1 << 30)).contains(self.maxInspectedRequestBody) else {
            throw ConfigurationError(
                "invalid maxInspectedRequestBody \(self.maxInspectedRequestBody): expected 1024 to 1073741824 bytes (1 KiB to 1 GiB)"
            )
        }
        guard (1024...RequestHeadLimits.decoderCeiling).contains(self.maxRequestHeadSize) else {
            throw ConfigurationError(
                "invalid --max-request-head-size \(self.maxRequestHeadSize): expected 1024 to \(RequestHeadLimits.decoderCeiling) bytes (1 KiB to 80 KiB)"
            )
        }
        guard (1...10_000).contains(self.maxRequestHeaders) else {
            throw ConfigurationError("invalid --max-request-headers \(self.maxRequestHeaders): expected 1 to 10000")
        }
        guard (1...1_000_000).contains(self.maxConnections) else {
            throw ConfigurationError("invalid --max-connections \(self.maxConnections): expected 1 to 1000000")
        }
        if let clientHeader = self.clientHeader {
            _ = try Self.clientHeaderName(clientHeader)
        }
    }

    private static func check(
        _ value: Duration, _ name: String, within range: ClosedRange<Duration>, _ rangeText: String
    ) throws(ConfigurationError) {
        guard range.contains(value) else {
            throw ConfigurationError("invalid \(name) \(value): expected \(rangeText)")
        }
    }
}

extension ProxyConfiguration {
    /// Validates a `--client-header` value: an HTTP header name (letters, digits and `!#$%&'*+-.^_`|~`).
    public static func clientHeaderName(_ name: String) throws(ConfigurationError) -> String {
        let allowed = Set("!#$%&'*+-.^_`|~".utf8)
        let isToken = name.utf8.allSatisfy { byte in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte | 0x20) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
                || allowed.contains(byte)
        }
        guard !name.isEmpty, isToken else {
            throw ConfigurationError("invalid --client-header '\(name)': expected a header name such as X-OpenWebUI-User-Email")
        }
        return name
    }

    /// Whether `--client-header` names a header whose values are secrets, labelled by a keyed hash.
    public static func isCredentialHeader(_ name: String) -> Bool {
        ClientAttributionRecorder.credentialHeaders.contains(name.lowercased())
    }
}

/// A configuration value the user got wrong, with a message that says how to fix it.
public struct ConfigurationError: Error, CustomStringConvertible, Equatable {
    public var description: String
    public init(description: String) { self.description = description }
    init(_ description: String) { self.description = description }
}

/// A listen address as the Go tool accepted it: `:PORT` (every interface), `HOST:PORT` or `[IPv6]:PORT`.
public struct ListenAddress: Sendable, Equatable, CustomStringConvertible {
    /// nil means every interface.
    public var host: String?
    public var port: Int

    public init(host: String?, port: Int) {
        self.host = host
        self.port = port
    }

    public init(parsing text: String) throws(ConfigurationError) {
        guard let colon = text.lastIndex(of: ":") else {
            throw ConfigurationError("invalid listen address '\(text)': expected :PORT, HOST:PORT or [IPv6]:PORT")
        }
        var host = String(text[..<colon])
        let portText = text[text.index(after: colon)...]
        guard let port = Int(portText), (0...65535).contains(port) else {
            throw ConfigurationError("invalid port in listen address '\(text)': expected a number from 0 to 65535")
        }
        if host.hasPrefix("[") {
            guard host.hasSuffix("]"), host.count > 2 else {
                throw ConfigurationError("invalid listen address '\(text)': unbalanced brackets around the IPv6 host")
            }
            host = String(host.dropFirst().dropLast())
        } else if host.contains(":") {
            throw ConfigurationError("invalid listen address '\(text)': write IPv6 hosts in brackets, e.g. [::1]:\(port)")
        }
        self.host = host.isEmpty ? nil : host
        self.port = port
    }

    public var description: String {
        switch self.host {
        case .none: ":\(self.port)"
        case .some(let host) where host.contains(":"): "[\(host)]:\(self.port)"
        case .some(let host): "\(host):\(self.port)"
        }
    }
}

/// The Ollama base URL. Only plain `http` is spoken: Ollama itself serves no TLS.
public struct UpstreamURL: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int
    /// Prefix put before every forwarded path; empty or starting with `/` and without a trailing `/`.
    public var basePath: String
    /// The `Host` header sent upstream: the URL's authority, as Ollama checks it against its allow-list.
    public var hostHeader: String

    public init(parsing text: String) throws(ConfigurationError) {
        let prefix = "http://"
        guard text.lowercased().hasPrefix(prefix) else {
            if text.lowercased().hasPrefix("https://") {
                throw ConfigurationError("unsupported --ollama-url '\(text)': only http:// is supported (Ollama serves plain HTTP)")
            }
            throw ConfigurationError("invalid --ollama-url '\(text)': expected http://HOST[:PORT][/PATH]")
        }
        let rest = text.dropFirst(prefix.count)
        let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? rest.endIndex
        let authority = String(rest[..<authorityEnd])
        var path = String(rest[authorityEnd...])
        if path.contains("?") || path.contains("#") {
            throw ConfigurationError("invalid --ollama-url '\(text)': a query string or fragment is not allowed")
        }
        while path.hasSuffix("/") { path.removeLast() }
        guard !authority.isEmpty, !authority.contains("@") else {
            throw ConfigurationError("invalid --ollama-url '\(text)': missing host")
        }

        var host: String
        var port = 80
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else {
                throw ConfigurationError("invalid --ollama-url '\(text)': unbalanced brackets around the IPv6 host")
            }
            host = String(authority[authority.index(after: authority.startIndex)..<close])
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":"), let p = Int(after.dropFirst()), (1...65535).contains(p) else {
                    throw ConfigurationError("invalid port in --ollama-url '\(text)'")
                }
                port = p
            }
        } else if let colon = authority.lastIndex(of: ":") {
            host = String(authority[..<colon])
            guard let p = Int(authority[authority.index(after: colon)...]), (1...65535).contains(p) else {
                throw ConfigurationError("invalid port in --ollama-url '\(text)'")
            }
            port = p
        } else {
            host = authority
        }
        guard !host.isEmpty else {
            throw ConfigurationError("invalid --ollama-url '\(text)': missing host")
        }
        self.host = host
        self.port = port
        self.basePath = path
        self.hostHeader = authority
    }

    public var description: String { "http://\(self.hostHeader)\(self.basePath)" }
}
