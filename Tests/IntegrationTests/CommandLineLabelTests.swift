import Foundation
import NIOCore
import NIOHTTP1
import Testing

/// What may become a label value, with the real binary in front of the simulator: junk model names, huge
/// ones, and the key behind credential `client` labels.
extension CommandLineInterface {
    /// The binary in front of `harness`' simulator, on free loopback ports, with `arguments` added.
    static func startBinary(
        _ harness: ProxyHarness, _ arguments: [String] = [], environment: [String: String] = [:]
    ) async throws -> (proxy: RunningProxy, address: SocketAddress, metrics: SocketAddress) {
        let proxy = try RunningProxy(
            ["--listen=127.0.0.1:0", "--metrics-listen=127.0.0.1:0", "--ollama-url=http://127.0.0.1:\(harness.simulator.port)"] + arguments,
            environment: environment
        )
        let port = try #require(await proxy.waitForPort(after: "listening on "), "\(proxy.log)")
        let metricsPort = try #require(await proxy.waitForPort(after: "metrics on "), "\(proxy.log)")
        return (proxy, try SocketAddress(ipAddress: "127.0.0.1", port: port), try SocketAddress(ipAddress: "127.0.0.1", port: metricsPort))
    }

    static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("labels-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    @Test func moreThanMaxModelsJunkNamesLeaveARealModelItsOwnLabel() async throws {
        try await ProxyHarness.with { harness in
            let (proxy, address, metricsAddress) = try await Self.startBinary(harness)
            // 120 names Ollama refuses, beyond the default --max-models of 100: unknown models (404) and
            // undecodable requests (400).
            for index in 0..<60 {
                let unknown = try await httpRequest(
                    address, .POST, "/api/chat", body: #"{"model":"missing-\#(index)","messages":[{"role":"user","content":"hi"}]}"#
                )
                #expect(unknown.status == 404)
                let undecodable = try await httpRequest(address, .POST, "/api/chat", body: #"{"model":"junk-\#(index)","stream":"x"}"#)
                #expect(undecodable.status == 400)
            }
            let real = try await httpRequest(
                address, .POST, "/api/chat", body: #"{"model":"llama3.2","messages":[{"role":"user","content":"hi"}],"stream":false}"#
            )
            #expect(real.status == 200)

            let text = try await httpRequest(metricsAddress, .GET, "/metrics").bodyString
            let metrics = MetricsScrape(text: text)
            #expect(metrics.value("ollama_requests_total", ["model": "llama3.2", "endpoint": "/api/chat"]) == 1)
            #expect(metrics.value("ollama_request_failures_total", ["model": "__rejected__", "endpoint": "/api/chat", "reason": "http_4xx"]) == 120)
            #expect(!text.contains("__overflow__"), "no --max-models slot was used by junk")
            #expect(!text.contains("missing-") && !text.contains("junk-"))
            let status = try await httpRequest(metricsAddress, .GET, "/status.json").bodyString
            #expect(status.contains(#""model":"llama3.2""#))
            #expect(!status.contains("missing-") && !status.contains("junk-"))
            #expect(await proxy.stop() == 0, "\(proxy.log)")
        }
    }

    @Test func aFourMegabyteModelNameLeavesMetricsStatusAndLogSmall() async throws {
        try await ProxyHarness.with { harness in
            let (proxy, address, metricsAddress) = try await Self.startBinary(harness)
            let name = String(repeating: "x", count: 4 << 20)
            // The issue's request (Ollama answers 400), and ones the simulator answers 200: no name that long
            // is a label, whatever Ollama says.
            for body in [#"{"model":"\#(name)","stream":"x"}"#, #"{"model":"\#(name)","messages":[],"stream":false}"#] {
                for _ in 0..<(body.contains(#""x"}"#) ? 3 : 2) {
                    _ = try await httpRequest(address, .POST, "/api/chat", body: body)
                }
            }
            let metrics = try await httpRequest(metricsAddress, .GET, "/metrics").bodyString
            let status = try await httpRequest(metricsAddress, .GET, "/status.json").bodyString
            #expect(metrics.utf8.count < 64 * 1024, "/metrics is \(metrics.utf8.count) bytes")
            #expect(status.utf8.count < 64 * 1024, "/status.json is \(status.utf8.count) bytes")
            #expect(!metrics.contains(String(repeating: "x", count: 300)) && !status.contains(String(repeating: "x", count: 300)))
            let scrape = MetricsScrape(text: metrics)
            #expect(scrape.value("ollama_request_duration_seconds_count", ["model": "__rejected__", "endpoint": "/api/chat"]) == 5)
            #expect(await proxy.stop() == 0)
            let lines = proxy.log.split(separator: "\n")
            let access = lines.filter { $0.contains("ollama-metrics-proxy.access") }
            #expect(access.count == 5, "\(lines.count) lines")
            #expect(lines.allSatisfy { $0.utf8.count < 2048 }, "longest line: \(lines.map(\.utf8.count).max() ?? 0) bytes")
            #expect(access.allSatisfy { $0.contains("…[4194304 bytes]") })
        }
    }

    static func keyLabel(_ harness: ProxyHarness, _ arguments: [String], environment: [String: String]) async throws
        -> (label: String?, log: String)
    {
        let (proxy, address, metricsAddress) = try await Self.startBinary(
            harness, ["--client-header", "Authorization"] + arguments, environment: environment
        )
        _ = try await httpRequest(
            address, .POST, "/api/chat", headers: [("Authorization", "Bearer sk-123")],
            body: #"{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":false}"#
        )
        let scrape = MetricsScrape(text: try await httpRequest(metricsAddress, .GET, "/metrics").bodyString)
        #expect(await proxy.stop() == 0, "\(proxy.log)")
        return (scrape.samples(named: "ollama_client_requests_total").first?.labels["client"], proxy.log)
    }

    @Test func theDefaultClientHashKeyIsKeptInTheStateDirectoryAcrossRestarts() async throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try await ProxyHarness.with { harness in
            let environment = ["XDG_STATE_HOME": directory.path, "STATE_DIRECTORY": ""]
            let first = try await Self.keyLabel(harness, [], environment: environment)
            let second = try await Self.keyLabel(harness, [], environment: environment)
            #expect(first.label != nil && first.label?.hasPrefix("key-") == true)
            #expect(first.label != "key-acb42a4fa3d3", "not the unsalted SHA-256 of the key")
            #expect(first.label == second.label, "the same label after a restart")
            #expect(!first.log.contains("warning"), "\(first.log)")
            let file = directory.path + "/ollama-metrics-proxy/client-hash-key"
            let attributes = try FileManager.default.attributesOfItem(atPath: file)
            #expect((attributes[.posixPermissions] as? Int) == 0o600)

            // systemd's StateDirectory= wins; another directory, another key.
            let systemd = try Self.temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: systemd) }
            let third = try await Self.keyLabel(harness, [], environment: ["XDG_STATE_HOME": directory.path, "STATE_DIRECTORY": systemd.path])
            #expect(FileManager.default.fileExists(atPath: systemd.path + "/client-hash-key"))
            #expect(third.label != first.label)
        }
    }

    @Test func theKeyFileFlagSetsTheKeyAndAnUnwritableStateDirectoryOnlyWarns() async throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let keyFile = directory.path + "/key"
        try "a key of at least sixteen bytes\n".write(toFile: keyFile, atomically: true, encoding: .utf8)
        let notADirectory = directory.path + "/file"
        FileManager.default.createFile(atPath: notADirectory, contents: Data())
        try await ProxyHarness.with { harness in
            let keyed = try await Self.keyLabel(harness, ["--client-hash-key-file", keyFile], environment: ["STATE_DIRECTORY": notADirectory])
            #expect(keyed.label == "key-31385fb6f4fe", "HMAC-SHA256 under the file's key")
            #expect(!keyed.log.contains("warning"), "the state directory is not used: \(keyed.log)")
            let viaEnvironment = try await Self.keyLabel(
                harness, [], environment: ["OLLAMA_METRICS_PROXY_CLIENT_HASH_KEY_FILE": keyFile, "STATE_DIRECTORY": notADirectory]
            )
            #expect(viaEnvironment.label == "key-31385fb6f4fe")

            let ephemeral = try await Self.keyLabel(harness, [], environment: ["STATE_DIRECTORY": notADirectory])
            #expect(ephemeral.label?.hasPrefix("key-") == true)
            let warnings = ephemeral.log.split(separator: "\n").filter { $0.contains("warning") }
            #expect(warnings.count == 1, "\(ephemeral.log)")
            #expect(warnings.first?.contains("cannot use client hash key state file '\(notADirectory)/client-hash-key'") == true)
            #expect(warnings.first?.contains("using a random key for this run only") == true)
        }
    }

    @Test func helpNamesTheKeyFileFlagAndItsVariable() async throws {
        let help = try RunningProxy(["--help"])
        #expect(await help.waitForExit() == 0)
        let text = help.log.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        #expect(text.contains("--client-hash-key-file") && text.contains("OLLAMA_METRICS_PROXY_CLIENT_HASH_KEY_FILE"), "\(help.log)")
    }

    @Test func aBadClientHashKeyFileStopsTheStartWithOneLine() async throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let short = directory.path + "/short"
        try "tiny\n".write(toFile: short, atomically: true, encoding: .utf8)
        for (arguments, message) in [
            (["--client-hash-key-file", short], "invalid --client-hash-key-file '\(short)': the key has 4 bytes, at least 16 are needed"),
            (["--client-hash-key-file", "/nonexistent/key"], "cannot read --client-hash-key-file '/nonexistent/key': No such file or directory"),
        ] {
            let proxy = try RunningProxy(arguments)
            #expect(await proxy.waitForExit() == 1)
            #expect(proxy.log.hasPrefix("ollama-metrics-proxy: \(message)"), "\(proxy.log)")
            #expect(proxy.log.split(separator: "\n").count == 1, "one line: \(proxy.log)")
        }
        let viaEnvironment = try RunningProxy([], environment: ["OLLAMA_METRICS_PROXY_CLIENT_HASH_KEY_FILE": short])
        #expect(await viaEnvironment.waitForExit() == 1)
        #expect(viaEnvironment.log.hasPrefix("ollama-metrics-proxy: invalid OLLAMA_METRICS_PROXY_CLIENT_HASH_KEY_FILE '\(short)'"), "\(viaEnvironment.log)")
    }
}
