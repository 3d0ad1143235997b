import ArgumentParser
import Logging
import OllamaMetricsProxy
import NIOCore
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

@main
struct OllamaMetricsProxyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ollama-metrics-proxy",
        abstract: "A transparent reverse proxy for Ollama that exposes Prometheus metrics.",
        discussion: "Point clients at --listen instead of Ollama and scrape http://<metrics-listen>/metrics. "
            + "Addresses are :PORT (every interface), HOST:PORT or [IPv6]:PORT. Flags also take the Go tool's "
            + "single-dash form (-listen :11435) and --flag=value. Every flag can also be set by the environment "
            + "variable named after it (OLLAMA_METRICS_PROXY_LISTEN, …); a flag wins over its variable, and an "
            + "empty variable counts as unset.",
        version: ProxyVersion.current
    )

    @Option(name: [.customLong("listen"), .customLong("listen", withSingleDash: true)],
            help: "Address the proxy listens on. (default: :11435; env: OLLAMA_METRICS_PROXY_LISTEN)")
    var listen: String?

    @Option(name: [.customLong("metrics-listen"), .customLong("metrics-listen", withSingleDash: true)],
            help: "Address for /metrics, /healthz, /readyz and the status page. (default: :9836; env: OLLAMA_METRICS_PROXY_METRICS_LISTEN)")
    var metricsListen: String?

    @Option(name: [.customLong("ollama-url"), .customLong("ollama-url", withSingleDash: true)],
            help: "Ollama backend URL. (default: http://localhost:11434; env: OLLAMA_METRICS_PROXY_OLLAMA_URL)")
    var ollamaURL: String?

    @Option(name: [.customLong("max-models"), .customLong("max-models", withSingleDash: true)],
            help: "Distinct model label values kept before new names share the '__overflow__' label. (default: 100; env: OLLAMA_METRICS_PROXY_MAX_MODELS)")
    var maxModels: String?

    @Option(name: [.customLong("threads"), .customLong("threads", withSingleDash: true)],
            help: "Event loop threads. (default: one per core; env: OLLAMA_METRICS_PROXY_THREADS)")
    var threads: String?

    @Option(name: [.customLong("client-header"), .customLong("client-header", withSingleDash: true)],
            help: "Request header whose value labels per-client counters (credential headers are hashed). (default: off; env: OLLAMA_METRICS_PROXY_CLIENT_HEADER)")
    var clientHeader: String?

    @Option(name: [.customLong("max-connections"), .customLong("max-connections", withSingleDash: true)],
            help: "Client connections open at once; more are answered 503 and closed. (default: 10000, or what the open-file limit allows; env: OLLAMA_METRICS_PROXY_MAX_CONNECTIONS)")
    var maxConnections: String?

    @Option(name: [.customLong("max-request-head-size"), .customLong("max-request-head-size", withSingleDash: true)],
            help: "Largest request head in bytes, 1024 to 81920; larger ones are answered 431. (default: 65536; env: OLLAMA_METRICS_PROXY_MAX_REQUEST_HEAD_SIZE)")
    var maxRequestHeadSize: String?

    @Option(name: [.customLong("max-request-headers"), .customLong("max-request-headers", withSingleDash: true)],
            help: "Most header fields in a request; more are answered 431. (default: 100; env: OLLAMA_METRICS_PROXY_MAX_REQUEST_HEADERS)")
    var maxRequestHeaders: String?

    @Option(name: [.customLong("metrics-token-file"), .customLong("metrics-token-file", withSingleDash: true)],
            help: "File holding a token that /metrics then requires as 'Authorization: Bearer <token>'. (default: none, /metrics open; env: OLLAMA_METRICS_PROXY_METRICS_TOKEN_FILE)")
    var metricsTokenFile: String?

    @Option(name: [.customLong("client-hash-key-file"), .customLong("client-hash-key-file", withSingleDash: true)],
            help: "File holding the secret (16 bytes or more) that --client-header credential labels are keyed with. (default: a random key kept in $STATE_DIRECTORY, $XDG_STATE_HOME/ollama-metrics-proxy or ~/.local/state/ollama-metrics-proxy; env: OLLAMA_METRICS_PROXY_CLIENT_HASH_KEY_FILE)")
    var clientHashKeyFile: String?

    @Option(name: [.customLong("log-level"), .customLong("log-level", withSingleDash: true)],
            help: "Log level: trace, debug, info, notice, warning, error or critical. (default: info; env: OLLAMA_METRICS_PROXY_LOG_LEVEL)")
    var logLevel: String?

    @Option(name: [.customLong("log-format"), .customLong("log-format", withSingleDash: true)],
            help: "Log line format: text (key=value pairs) or json (one object per line). (default: text; env: OLLAMA_METRICS_PROXY_LOG_FORMAT)")
    var logFormat: String?

    @Flag(name: .customLong("access-log"), inversion: .prefixedNo,
          help: "One log line per proxied request, at info level. (default: on; env: OLLAMA_METRICS_PROXY_ACCESS_LOG=true|false)")
    var accessLog: Bool?

    @Flag(name: .customLong("status-page"), inversion: .prefixedNo,
          help: "The live status page at / on the metrics port, and its JSON at /status.json. (default: on; env: OLLAMA_METRICS_PROXY_STATUS_PAGE=true|false)")
    var statusPage: Bool?

    func run() async throws {
        var configuration: ProxyConfiguration
        var keyWarning: String?
        let level: Logger.Level
        let format: LogFormat
        let accessLog: Bool
        var settings = Settings(environment: Settings.processEnvironment())
        let openFileLimit = FileDescriptorLimit.raise()
        do {
            let listen = settings.resolve(self.listen, flag: "listen", default: ":11435")
            let metricsListen = settings.resolve(self.metricsListen, flag: "metrics-listen", default: ":9836")
            let ollamaURL = settings.resolve(self.ollamaURL, flag: "ollama-url", default: "http://localhost:11434")
            let maxModels = settings.resolve(self.maxModels, flag: "max-models", default: "100")
            let threads = settings.resolve(self.threads, flag: "threads", default: String(System.coreCount))
            let clientHeader = settings.resolveOptional(self.clientHeader, flag: "client-header")
            // Without a value, as many as the open-file limit allows, up to the default.
            let maxConnections = settings.resolve(
                self.maxConnections, flag: "max-connections",
                default: String(min(ProxyConfiguration.defaultMaxConnections, FileDescriptorLimit.connections(within: openFileLimit)))
            )
            let maxRequestHeadSize = settings.resolve(
                self.maxRequestHeadSize, flag: "max-request-head-size", default: String(ProxyConfiguration.defaultMaxRequestHeadSize)
            )
            let maxRequestHeaders = settings.resolve(
                self.maxRequestHeaders, flag: "max-request-headers", default: String(ProxyConfiguration.defaultMaxRequestHeaders)
            )
            let metricsTokenFile = settings.resolveOptional(self.metricsTokenFile, flag: "metrics-token-file")
            let clientHashKeyFile = settings.resolveOptional(self.clientHashKeyFile, flag: "client-hash-key-file")
            let logLevel = settings.resolve(self.logLevel, flag: "log-level", default: "info")
            let logFormat = settings.resolve(self.logFormat, flag: "log-format", default: "text")
            let accessLogSetting = settings.resolve(self.accessLog.map { $0 ? "true" : "false" }, flag: "access-log", default: "true")
            let statusPageSetting = settings.resolve(self.statusPage.map { $0 ? "true" : "false" }, flag: "status-page", default: "true")

            configuration = ProxyConfiguration(
                listen: try settings.parse(listen, ListenAddress.init(parsing:)),
                metricsListen: try settings.parse(metricsListen, ListenAddress.init(parsing:)),
                upstream: try settings.parse(ollamaURL, UpstreamURL.init(parsing:)),
                maxModelLabels: try settings.integer(maxModels),
                threads: try settings.integer(threads),
                clientHeader: try clientHeader.map { try settings.parse($0, ProxyConfiguration.clientHeaderName) },
                clientHashKey: try clientHashKeyFile.map { try settings.parse($0, Self.readClientHashKey) },
                maxRequestHeadSize: try settings.integer(maxRequestHeadSize),
                maxRequestHeaders: try settings.integer(maxRequestHeaders),
                maxConnections: try settings.integer(maxConnections),
                metricsToken: try metricsTokenFile.map { try settings.parse($0, Self.readMetricsToken) },
                statusPage: try settings.boolean(statusPageSetting)
            )
            if configuration.clientHashKey == nil, let header = configuration.clientHeader, ProxyConfiguration.isCredentialHeader(header) {
                let (key, warning) = try Self.stateFileClientHashKey()
                configuration.clientHashKey = key
                keyWarning = warning
            }
            // The log settings configure logging, not the proxy: they are the command's to parse.
            level = try settings.parse(logLevel) { text in
                guard let level = Logger.Level(rawValue: text.lowercased()) else { throw ConfigurationError.invalidLogLevel(text) }
                return level
            }
            format = try settings.parse(logFormat) { text in
                guard let format = LogFormat(rawValue: text.lowercased()) else { throw ConfigurationError.invalidLogFormat(text) }
                return format
            }
            accessLog = try settings.boolean(accessLogSetting)
            try settings.attributing { try configuration.validate() }
        } catch {
            Self.fail("\(error)")
        }

        LoggingSystem.bootstrap { label in
            LogLineHandler(label: label, format: format, level: level)
        }
        let logger = Logger(label: "ollama-metrics-proxy")
        FileDescriptorLimit.warnIfTooLow(openFileLimit, forMaxConnections: configuration.maxConnections, logger: logger)
        if let keyWarning { logger.warning("\(keyWarning)") }
        let server = ProxyServer(
            configuration: configuration, logger: logger,
            accessLogger: accessLog ? Logger(label: ProxyServer.accessLogLabel) : nil
        )
        let group = ServiceGroup(
            services: [ProxyService(server: server, logger: logger)],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: Logger(label: "ollama-metrics-proxy.lifecycle", factory: { _ in SwiftLogNoOpLogHandler() })
        )
        do {
            try await group.run()
        } catch let error as ServiceGroupError {
            Self.fail("\(error)")
        } catch {
            Self.fail("\(error)")
        }
    }

    /// The token in the file at `path`, read once, now: a file that cannot be read stops the start.
    static func readMetricsToken(_ path: String) throws -> MetricsToken {
        try MetricsToken(fileContents: SecretFile.load(path, source: "--metrics-token-file '\(path)'"), path: path)
    }

    /// The key in the file at `path`, read once, now: a file that cannot be read stops the start.
    static func readClientHashKey(_ path: String) throws -> ClientHashKey {
        let source = "--client-hash-key-file '\(path)'"
        return try ClientHashKey(fileContents: SecretFile.load(path, source: source), source: source)
    }

    /// The default key of credential `client` labels: the state file's, made at the first start. Without a
    /// usable state file, a key for this run only and the warning that says so.
    static func stateFileClientHashKey() throws -> (ClientHashKey, warning: String?) {
        var environment: [String: String] = [:]
        for name in ["STATE_DIRECTORY", "XDG_STATE_HOME", "HOME"] {
            if let value = getenv(name) { environment[name] = String(cString: value) }
        }
        let consequence = "using a random key for this run only: --client-header credential labels change at each start (set --client-hash-key-file to keep them)"
        guard let path = ClientHashKey.stateFilePath(environment: environment) else {
            return (.random(), "no state directory (STATE_DIRECTORY, XDG_STATE_HOME and HOME are unset); \(consequence)")
        }
        switch try ClientHashKey.stateFileKey(at: path) {
        case .success(let key): return (key, nil)
        case .failure(let unavailable): return (.random(), "\(unavailable); \(consequence)")
        }
    }

    /// One clear line on stderr and a non-zero exit: no stack trace, no usage dump.
    static func fail(_ message: String) -> Never {
        let line = "ollama-metrics-proxy: \(message)\n"
        _ = line.withCString { write(STDERR_FILENO, $0, strlen($0)) }
        _exit(1)
    }
}

extension ConfigurationError {
    static func invalidLogLevel(_ text: String) -> ConfigurationError {
        ConfigurationError(description: "invalid --log-level '\(text)': expected trace, debug, info, notice, warning, error or critical")
    }

    static func invalidLogFormat(_ text: String) -> ConfigurationError {
        ConfigurationError(description: "invalid --log-format '\(text)': expected text or json")
    }
}
