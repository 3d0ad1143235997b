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
            + "single-dash form (-listen :11435) and --flag=value.",
        version: ProxyVersion.current
    )

    @Option(name: [.customLong("listen"), .customLong("listen", withSingleDash: true)],
            help: "Address the proxy listens on.")
    var listen: String = ":11435"

    @Option(name: [.customLong("metrics-listen"), .customLong("metrics-listen", withSingleDash: true)],
            help: "Address for the Prometheus /metrics endpoint.")
    var metricsListen: String = ":9836"

    @Option(name: [.customLong("ollama-url"), .customLong("ollama-url", withSingleDash: true)],
            help: "Ollama backend URL.")
    var ollamaURL: String = "http://localhost:11434"

    @Option(name: [.customLong("max-models"), .customLong("max-models", withSingleDash: true)],
            help: "Distinct model label values kept before new names share the '__overflow__' label.")
    var maxModels: Int = 100

    @Option(name: [.customLong("threads"), .customLong("threads", withSingleDash: true)],
            help: "Event loop threads; the default is one per core.")
    var threads: Int = System.coreCount

    @Option(name: [.customLong("client-header"), .customLong("client-header", withSingleDash: true)],
            help: "Request header whose value labels per-client counters (credential headers are hashed); off by default.")
    var clientHeader: String?

    @Option(name: [.customLong("log-level"), .customLong("log-level", withSingleDash: true)],
            help: "Log level: trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = "info"

    @Option(name: [.customLong("log-format"), .customLong("log-format", withSingleDash: true)],
            help: "Log line format: text (key=value pairs) or json (one object per line).")
    var logFormat: String = "text"

    @Flag(name: .customLong("access-log"), inversion: .prefixedNo,
          help: "One log line per proxied request, at info level (label ollama-metrics-proxy.access).")
    var accessLog: Bool = true

    func run() async throws {
        let configuration: ProxyConfiguration
        let level: Logger.Level
        let format: LogFormat
        do {
            configuration = ProxyConfiguration(
                listen: try ListenAddress(parsing: self.listen),
                metricsListen: try ListenAddress(parsing: self.metricsListen),
                upstream: try UpstreamURL(parsing: self.ollamaURL),
                maxModelLabels: self.maxModels,
                threads: self.threads,
                clientHeader: try self.clientHeader.map(ProxyConfiguration.clientHeaderName)
            )
            // The log level configures logging, not the proxy: it is the command's to parse.
            guard let parsedLevel = Logger.Level(rawValue: self.logLevel.lowercased()) else {
                throw ConfigurationError.invalidLogLevel(self.logLevel)
            }
            level = parsedLevel
            guard let parsedFormat = LogFormat(rawValue: self.logFormat.lowercased()) else {
                throw ConfigurationError.invalidLogFormat(self.logFormat)
            }
            format = parsedFormat
            try configuration.validate()
        } catch {
            Self.fail("\(error)")
        }

        LoggingSystem.bootstrap { label in
            LogLineHandler(label: label, format: format, level: level)
        }
        let logger = Logger(label: "ollama-metrics-proxy")
        let server = ProxyServer(
            configuration: configuration, logger: logger,
            accessLogger: self.accessLog ? Logger(label: ProxyServer.accessLogLabel) : nil
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
