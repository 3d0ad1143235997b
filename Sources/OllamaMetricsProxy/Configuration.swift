import NIOCore

/// Everything the proxy needs to run, parsed and validated before any socket is opened.
public struct ProxyConfiguration: Sendable {
    /// Where clients connect (`--listen`, default `:11435`).
    public var listen: ListenAddress
    /// Where Prometheus scrapes `/metrics` (`--metrics-listen`, default `:9836`).
    public var metricsListen: ListenAddress
    /// The Ollama server every request is forwarded to (`--ollama-url`, default `http://localhost:11434`).
    public var upstream: UpstreamURL
    /// How many distinct `model` label values are kept before new names are folded into one overflow value.
    public var maxModelLabels: Int
    /// How long a client may take to send a complete request head, and how long an idle keep-alive
    /// connection is kept open. Nothing else in the proxy times out: streams may last hours.
    public var requestHeadTimeout: Duration
    /// How long an unused keep-alive connection to Ollama is kept (Go's HTTP client keeps them 90 s).
    /// This is not a timeout on requests: a connection in use is never closed by the proxy.
    public var upstreamIdleTimeout: Duration
    /// Event loop threads serving the proxy; defaults to one per core.
    public var threads: Int
    /// A request header whose value labels per-client counters (`--client-header`); nil (the default): none.
    public var clientHeader: String?

    public init(
        listen: ListenAddress = .init(host: nil, port: 11435),
        metricsListen: ListenAddress = .init(host: nil, port: 9836),
        upstream: UpstreamURL = try! .init(parsing: "http://localhost:11434"),
        maxModelLabels: Int = 100,
        requestHeadTimeout: Duration = .seconds(75),
        upstreamIdleTimeout: Duration = .seconds(60),
        threads: Int = System.coreCount,
        clientHeader: String? = nil
    ) {
        self.listen = listen
        self.metricsListen = metricsListen
        self.upstream = upstream
        self.maxModelLabels = maxModelLabels
        self.requestHeadTimeout = requestHeadTimeout
        self.upstreamIdleTimeout = upstreamIdleTimeout
        self.threads = threads
        self.clientHeader = clientHeader
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
