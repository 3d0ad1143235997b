import Foundation
import NIOCore
import NIOHTTP1
import Testing

/// The real `ollama-metrics-proxy` binary, started as users start it.
@Suite struct CommandLineInterface {
    /// The binary SwiftPM built next to this test bundle.
    static var binary: URL {
        let testExecutable = URL(fileURLWithPath: try! FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
        var directory = testExecutable.deletingLastPathComponent()
        while !FileManager.default.fileExists(atPath: directory.appendingPathComponent("ollama-metrics-proxy").path),
            directory.path != "/"
        {
            directory = directory.deletingLastPathComponent()
        }
        return directory.appendingPathComponent("ollama-metrics-proxy")
    }

    /// A started binary, stopped by its PID when the test ends.
    final class RunningProxy: @unchecked Sendable {
        let process = Process()
        let stderr = Pipe()
        private let lock = NSLock()
        private var output = ""

        /// `environment` is added to the test's own, without any `OLLAMA_METRICS_PROXY_*` variable of it.
        init(_ arguments: [String], environment: [String: String] = [:]) throws {
            self.process.executableURL = CommandLineInterface.binary
            self.process.arguments = arguments
            self.process.environment = ProcessInfo.processInfo.environment
                .filter { !$0.key.hasPrefix("OLLAMA_METRICS_PROXY_") }
                .merging(environment) { _, new in new }
            // Both streams in `log`: help and version go to stdout, everything else to stderr.
            self.process.standardError = self.stderr
            self.process.standardOutput = self.stderr
            self.stderr.fileHandleForReading.readabilityHandler = { [weak self] handle in
                let data = handle.availableData
                guard let self, !data.isEmpty else { return }
                self.lock.withLock { self.output += String(decoding: data, as: UTF8.self) }
            }
            try self.process.run()
        }

        var log: String { self.lock.withLock { self.output } }

        /// Waits for the process to exit (or kills it after `timeout`); returns its status.
        func waitForExit(timeout: Duration = .seconds(20)) async -> Int32 {
            let deadline = ContinuousClock.now + timeout
            while self.process.isRunning, ContinuousClock.now < deadline {
                try? await Task.sleep(for: .milliseconds(20))
            }
            if self.process.isRunning { kill(self.process.processIdentifier, SIGKILL) }
            self.process.waitUntilExit()
            try? await Task.sleep(for: .milliseconds(50))  // let the last stderr bytes arrive
            return self.process.terminationStatus
        }

        /// The port in a startup line `… <prefix><host>:<port> …`.
        func waitForPort(after prefix: String, timeout: Duration = .seconds(20)) async -> Int? {
            let deadline = ContinuousClock.now + timeout
            while ContinuousClock.now < deadline, self.process.isRunning {
                if let range = self.log.firstRange(of: prefix) {
                    let rest = self.log[range.upperBound...]
                    let address = rest.prefix { !$0.isWhitespace && $0 != "," }
                    if let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]) {
                        return port
                    }
                }
                try? await Task.sleep(for: .milliseconds(20))
            }
            return nil
        }

        func stop() async -> Int32 {
            if self.process.isRunning { kill(self.process.processIdentifier, SIGTERM) }
            return await self.waitForExit()
        }
    }

    @Test func helpListsTheFlagsAndVersionPrintsTheVersion() async throws {
        let help = try RunningProxy(["--help"])
        #expect(await help.waitForExit() == 0)
        let version = try RunningProxy(["--version"])
        #expect(await version.waitForExit() == 0)
    }

    @Test(arguments: [
        (["--ollama-url", "ftp://x"], "invalid --ollama-url 'ftp://x'"),
        (["--listen", "11435"], "invalid listen address '11435'"),
        (["--metrics-listen=:99999"], "invalid port in listen address ':99999'"),
        (["--log-level", "loud"], "invalid --log-level 'loud'"),
        (["--log-format", "xml"], "invalid --log-format 'xml': expected text or json"),
        (["--max-models", "0"], "invalid --max-models 0: expected 1 or more"),
        (["-threads=2000"], "invalid --threads 2000: expected 1 to 1024"),
        (["--client-header", "X User"], "invalid --client-header 'X User'"),
        (["--threads", "x"], "invalid --threads 'x': expected a whole number"),
        (["--max-connections", "0"], "invalid --max-connections 0: expected 1 to 1000000"),
        (["--max-request-head-size", "100"], "invalid --max-request-head-size 100: expected 1024 to 81920 bytes"),
        (["--max-request-headers", "0"], "invalid --max-request-headers 0: expected 1 to 10000"),
        (["--metrics-token-file", "/nonexistent/token"], "cannot read --metrics-token-file '/nonexistent/token': No such file or directory"),
    ])
    func badFlagsGiveOneClearLineAndExitOne(arguments: [String], message: String) async throws {
        let proxy = try RunningProxy(arguments)
        #expect(await proxy.waitForExit() == 1)
        #expect(proxy.log.hasPrefix("ollama-metrics-proxy: \(message)"))
        #expect(proxy.log.split(separator: "\n").count == 1, "one line, no stack trace: \(proxy.log)")
    }

    @Test func anAddressInUseIsReportedByName() async throws {
        let occupied = try await ServerBootstrapHolder.listen()
        defer { Task { await occupied.close() } }
        let proxy = try RunningProxy(["--listen", "127.0.0.1:\(occupied.port)", "--metrics-listen", "127.0.0.1:0"])
        #expect(await proxy.waitForExit() == 1)
        #expect(proxy.log == "ollama-metrics-proxy: cannot listen on 127.0.0.1:\(occupied.port) (--listen): address already in use\n")
    }

    @Test func systemdUnitFlagsWorkVerbatimAndTheBinaryProxiesAndMeasures() async throws {
        try await ProxyHarness.with { harness in
            // The unit's `--flag=value` form, and the Go tool's single-dash form.
            let proxy = try RunningProxy([
                "--listen=127.0.0.1:0", "-metrics-listen", "127.0.0.1:0",
                "-ollama-url=http://127.0.0.1:\(harness.simulator.port)",
            ])
            let proxyPort = try #require(await proxy.waitForPort(after: "listening on "))
            let metricsPort = try #require(await proxy.waitForPort(after: "metrics on "))
            let proxyAddress = try SocketAddress(ipAddress: "127.0.0.1", port: proxyPort)
            let metricsAddress = try SocketAddress(ipAddress: "127.0.0.1", port: metricsPort)

            let response = try await httpRequest(
                proxyAddress, .POST, "/api/chat", body: #"{"model":"llama3.2","messages":[{"role":"user","content":"hi"}]}"#
            )
            #expect(response.status == 200)
            let scrape = try await httpRequest(metricsAddress, .GET, "/metrics")
            #expect(scrape.header("content-type") == "text/plain; version=0.0.4; charset=utf-8")
            let metrics = MetricsScrape(text: scrape.bodyString)
            #expect(metrics.value("ollama_requests_total", ["model": "llama3.2", "endpoint": "/api/chat"]) == 1)
            #expect(try await httpRequest(metricsAddress, .GET, "/other").status == 404, "only its paths")

            #expect(await proxy.stop() == 0, "SIGTERM is a clean exit: \(proxy.log)")
            #expect(proxy.log.contains("forwarding to http://127.0.0.1:\(harness.simulator.port)"))
        }
    }
}

extension CommandLineInterface {
    @Test func helpNamesTheEnvironmentVariableOfEveryFlag() async throws {
        let help = try RunningProxy(["--help"])
        #expect(await help.waitForExit() == 0)
        let text = help.log.replacing("\n", with: " ").split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
        for name in ["LISTEN", "METRICS_LISTEN", "OLLAMA_URL", "MAX_MODELS", "THREADS", "CLIENT_HEADER", "LOG_LEVEL", "LOG_FORMAT", "ACCESS_LOG",
                     "MAX_CONNECTIONS", "MAX_REQUEST_HEAD_SIZE", "MAX_REQUEST_HEADERS", "METRICS_TOKEN_FILE", "STATUS_PAGE"] {
            #expect(text.contains("OLLAMA_METRICS_PROXY_\(name)"), "\(name) in \(help.log)")
        }
    }

    @Test(arguments: [
        ("THREADS", "x", "invalid OLLAMA_METRICS_PROXY_THREADS 'x': expected a whole number"),
        ("THREADS", "2000", "invalid OLLAMA_METRICS_PROXY_THREADS 2000: expected 1 to 1024"),
        ("MAX_MODELS", "0", "invalid OLLAMA_METRICS_PROXY_MAX_MODELS 0: expected 1 or more"),
        ("OLLAMA_URL", "ftp://x", "invalid OLLAMA_METRICS_PROXY_OLLAMA_URL 'ftp://x'"),
        ("LISTEN", "11435", "OLLAMA_METRICS_PROXY_LISTEN: invalid listen address '11435'"),
        ("METRICS_LISTEN", ":99999", "OLLAMA_METRICS_PROXY_METRICS_LISTEN: invalid port in listen address ':99999'"),
        ("CLIENT_HEADER", "X User", "invalid OLLAMA_METRICS_PROXY_CLIENT_HEADER 'X User'"),
        ("LOG_LEVEL", "loud", "invalid OLLAMA_METRICS_PROXY_LOG_LEVEL 'loud'"),
        ("LOG_FORMAT", "xml", "invalid OLLAMA_METRICS_PROXY_LOG_FORMAT 'xml': expected text or json"),
        ("ACCESS_LOG", "maybe", "invalid OLLAMA_METRICS_PROXY_ACCESS_LOG 'maybe': expected true or false"),
        ("STATUS_PAGE", "maybe", "invalid OLLAMA_METRICS_PROXY_STATUS_PAGE 'maybe': expected true or false"),
        ("MAX_CONNECTIONS", "-1", "invalid OLLAMA_METRICS_PROXY_MAX_CONNECTIONS -1: expected 1 to 1000000"),
        ("METRICS_TOKEN_FILE", "/nonexistent/t", "cannot read OLLAMA_METRICS_PROXY_METRICS_TOKEN_FILE '/nonexistent/t'"),
    ])
    func badEnvironmentValuesGiveOneLineNamingTheVariable(name: String, value: String, message: String) async throws {
        let proxy = try RunningProxy([], environment: ["OLLAMA_METRICS_PROXY_\(name)": value])
        #expect(await proxy.waitForExit() == 1)
        #expect(proxy.log.hasPrefix("ollama-metrics-proxy: \(message)"), "\(proxy.log)")
        #expect(proxy.log.split(separator: "\n").count == 1, "one line: \(proxy.log)")
    }

    @Test func theEnvironmentConfiguresTheProxyAndFlagsWin() async throws {
        try await ProxyHarness.with { harness in
            let environment = [
                "OLLAMA_METRICS_PROXY_LISTEN": "127.0.0.1:0", "OLLAMA_METRICS_PROXY_METRICS_LISTEN": "127.0.0.1:0",
                "OLLAMA_METRICS_PROXY_OLLAMA_URL": "http://127.0.0.1:\(harness.simulator.port)",
                "OLLAMA_METRICS_PROXY_LOG_FORMAT": "json", "OLLAMA_METRICS_PROXY_ACCESS_LOG": "false",
                // Bad, but never read: the flag wins.
                "OLLAMA_METRICS_PROXY_THREADS": "x",
                "OLLAMA_METRICS_PROXY_CLIENT_HEADER": "",  // empty: unset
            ]
            for flags in [["--threads", "2"], ["--threads", "2", "--log-format", "text", "--access-log"]] {
                let proxy = try RunningProxy(flags, environment: environment)
                let port = try #require(await proxy.waitForPort(after: "listening on "), "\(proxy.log)")
                let address = try SocketAddress(ipAddress: "127.0.0.1", port: port)
                #expect(try await httpRequest(address, .GET, "/api/tags").status == 200, "forwards to the variable's Ollama")
                #expect(await proxy.stop() == 0, "\(proxy.log)")
                let lines = proxy.log.split(separator: "\n")
                let access = lines.filter { $0.contains("ollama-metrics-proxy.access") }
                if flags.contains("--log-format") {
                    #expect(lines.allSatisfy { !$0.hasPrefix("{") }, "the flag's text wins: \(proxy.log)")
                    #expect(access.count == 1, "--access-log wins over the variable's false: \(proxy.log)")
                } else {
                    #expect(lines.allSatisfy { $0.hasPrefix(#"{"time":""#) }, "the variable's json: \(proxy.log)")
                    #expect(access.isEmpty, "the variable turned the access log off: \(proxy.log)")
                }
            }
        }
    }

    @Test func jsonLogLinesAreObjectsAndTheAccessLogCanBeTurnedOff() async throws {
        try await ProxyHarness.with { harness in
            for accessLog in [true, false] {
                let proxy = try RunningProxy([
                    "--listen=127.0.0.1:0", "--metrics-listen=127.0.0.1:0", "--ollama-url=http://127.0.0.1:\(harness.simulator.port)",
                    "--log-format=json",
                ] + (accessLog ? [] : ["--no-access-log"]))
                let port = try #require(await proxy.waitForPort(after: "listening on "))
                let address = try SocketAddress(ipAddress: "127.0.0.1", port: port)
                #expect(try await httpRequest(address, .GET, "/api/tags?x=1").status == 200)
                #expect(await proxy.stop() == 0)
                let lines = proxy.log.split(separator: "\n")
                #expect(lines.allSatisfy { $0.hasPrefix(#"{"time":""#) && $0.hasSuffix("}") }, "\(proxy.log)")
                let access = lines.filter { $0.contains(#""logger":"ollama-metrics-proxy.access""#) }
                if accessLog {
                    #expect(access.count == 1)
                    #expect(access.first?.contains(#""method":"GET","path":"/api/tags","status":200,"outcome":"completed""#) == true, "\(access)")
                } else {
                    #expect(access.isEmpty, "\(proxy.log)")
                }
            }
        }
    }
}

/// A listener that occupies a port for the address-in-use test.
struct ServerBootstrapHolder: Sendable {
    let channel: Channel
    var port: Int { self.channel.localAddress!.port! }

    static func listen() async throws -> ServerBootstrapHolder {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0).get()
        return ServerBootstrapHolder(channel: channel)
    }

    func close() async { try? await self.channel.close() }
}

import NIOPosix

extension CommandLineInterface {
    @Test func theMetricsTokenFileIsReadAtStartAndGuardsMetrics() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("omp-token-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("token")

        try Data().write(to: file)
        let empty = try RunningProxy(["--metrics-token-file", file.path, "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"])
        #expect(await empty.waitForExit() == 1)
        #expect(empty.log == "ollama-metrics-proxy: invalid --metrics-token-file '\(file.path)': the file is empty; put the token on its one line\n")

        try Data("tok-123\n".utf8).write(to: file)
        try await ProxyHarness.with { harness in
            let proxy = try RunningProxy([
                "--metrics-token-file", file.path, "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",
                "--ollama-url", "http://127.0.0.1:\(harness.simulator.port)",
            ])
            let port = try #require(await proxy.waitForPort(after: "serving Prometheus metrics on "), "\(proxy.log)")
            let address = try SocketAddress(ipAddress: "127.0.0.1", port: port)
            // The file is read once: changing it later changes nothing.
            try Data("other\n".utf8).write(to: file)
            #expect(try await httpRequest(address, .GET, "/metrics").status == 401)
            #expect(try await httpRequest(address, .GET, "/metrics", headers: [("Authorization", "Bearer other")]).status == 401)
            #expect(try await httpRequest(address, .GET, "/metrics", headers: [("Authorization", "Bearer tok-123")]).status == 200)
            #expect(try await httpRequest(address, .GET, "/healthz").status == 200)
            #expect(await proxy.stop() == 0, "\(proxy.log)")
        }
    }
}

extension CommandLineInterface {
    @Test func theStatusPageIsOnByDefaultAndTurnedOffByFlagOrVariable() async throws {
        try await ProxyHarness.with { harness in
            let cases: [([String], [String: String], Int)] = [
                ([], [:], 200),
                (["--no-status-page"], [:], 404),
                ([], ["OLLAMA_METRICS_PROXY_STATUS_PAGE": "false"], 404),
                (["--status-page"], ["OLLAMA_METRICS_PROXY_STATUS_PAGE": "off"], 200),
            ]
            for (flags, environment, status) in cases {
                let proxy = try RunningProxy(
                    ["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--ollama-url", "http://127.0.0.1:\(harness.simulator.port)"]
                        + flags,
                    environment: environment
                )
                let port = try #require(await proxy.waitForPort(after: "serving Prometheus metrics on "), "\(proxy.log)")
                let address = try SocketAddress(ipAddress: "127.0.0.1", port: port)
                #expect(try await httpRequest(address, .GET, "/").status == status, "\(flags) \(environment)")
                #expect(try await httpRequest(address, .GET, "/status.json").status == status, "\(flags) \(environment)")
                #expect(await proxy.stop() == 0, "\(proxy.log)")
                #expect(proxy.log.contains("the status page at /") == (status == 200), "\(proxy.log)")
            }
        }
    }
}
