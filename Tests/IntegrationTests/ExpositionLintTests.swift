import Foundation
import NIOCore
import Testing

/// The whole exposition after a mixed load, checked by Prometheus' own linter, `promtool check metrics`
/// (Debian's `prometheus` package; `.ci/run` installs it and sets `REQUIRE_PROMTOOL=1`, elsewhere the test
/// runs when `promtool` is on the PATH).
@Suite struct ExpositionLint {
    static let promtool: String? = {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        return path.split(separator: ":").map { "\($0)/promtool" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }()

    static var required: Bool { ProcessInfo.processInfo.environment["REQUIRE_PROMTOOL"] == "1" }

    @Test(.enabled(if: promtool != nil || required, "promtool is not installed (Debian: apt-get install prometheus)"))
    func promtoolAcceptsTheExpositionAfterAMixedLoad() async throws {
        let promtool = try #require(Self.promtool, "REQUIRE_PROMTOOL=1 but promtool is not on the PATH")
        try await ProxyHarness.with(clientHeader: "X-User") { harness in
            let requests: [(String, String, [(String, String)])] = [
                ("/api/generate", #"{"model":"llama3.2","prompt":"hi"}"#, [("X-User", "alice")]),
                ("/api/chat", #"{"model":"llama3.2","messages":[{"role":"user","content":"hi"}],"stream":false}"#, []),
                ("/api/generate", #"{"model":"llama3.2"}"#, []),
                ("/api/embed", #"{"model":"all-minilm","input":"hi"}"#, []),
                ("/v1/chat/completions", #"{"model":"qwen3:8b","messages":[{"role":"user","content":"hi"}],"stream":true}"#, [("X-User", "bob \"the\" builder")]),
                ("/v1/completions", #"{"model":"qwen3:8b","prompt":"hi"}"#, []),
                ("/v1/messages", #"{"model":"qwen3:8b","max_tokens":9,"messages":[{"role":"user","content":"hi"}],"stream":true}"#, []),
                ("/v1/responses", #"{"model":"qwen3:8b","input":"hi","stream":true}"#, []),
                ("/api/chat", #"{"model":"m","messages":[]}"#, [("X-Sim-Status", "500")]),
                ("/api/generate", #"{"model":"typo","prompt":"hi"}"#, [("X-Sim-Status", "404")]),
            ]
            for (path, body, headers) in requests {
                _ = try await harness.viaProxy(.POST, path, headers: headers, body: body)
            }
            let text = try await httpRequest(harness.metricsAddress, .GET, "/metrics").bodyString
            #expect(MetricsScrape(text: text).value("ollama_up") == 1)
            let (status, output) = try Self.run(promtool, ["check", "metrics"], input: text)
            #expect(status == 0 && output.isEmpty, "promtool: \(output)")
        }
    }

    static func run(_ executable: String, _ arguments: [String], input: String) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let stdin = Pipe()
        let output = Pipe()
        process.standardInput = stdin
        process.standardOutput = output
        process.standardError = output
        try process.run()
        stdin.fileHandleForWriting.write(Data(input.utf8))
        try stdin.fileHandleForWriting.close()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
    }
}
