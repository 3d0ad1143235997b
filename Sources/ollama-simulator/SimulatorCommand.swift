import ArgumentParser
import Dispatch
import OllamaSimulator

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs the Ollama simulator until SIGINT or SIGTERM, for manual runs and benchmarks.
@main
struct SimulatorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ollama-simulator",
        abstract: "A deterministic stand-in for Ollama's HTTP API.",
        discussion: """
            Every request can be steered with X-Sim-* headers (X-Sim-Tokens, X-Sim-Token-Delay-Ms, \
            X-Sim-Header-Delay-Ms, X-Sim-Status, X-Sim-Error-After, X-Sim-Drop-After, X-Sim-Reset-After, \
            X-Sim-Reset-Mid-Head, X-Sim-Stall-After-Head-Ms, X-Sim-Context-Size, X-Sim-Token-Bytes, …); the \
            options below set the defaults.
            """
    )

    @Option(help: "Address to listen on.")
    var host = "127.0.0.1"

    @Option(help: "Port to listen on (0 picks a free one).")
    var port = 11434

    @Option(help: "Completion tokens per response (default 3).")
    var tokens: Int?

    @Option(help: "Prompt tokens reported (default 7).")
    var promptTokens: Int?

    @Option(help: "Bytes of text per token (default: the Hello/ world/! cycle).")
    var tokenBytes: Int?

    @Option(help: "Delay between tokens, in milliseconds (default 0).")
    var tokenDelayMs: Int?

    @Option(help: "Delay before the first byte of every response, in milliseconds (default 0).")
    var headerDelayMs: Int?

    @Flag(help: "Benchmark mode: no delays at all, not even between pull progress lines.")
    var fast = false

    @Flag(help: "Accept any Host header (Ollama refuses foreign names with 403 when it listens on loopback).")
    var noHostCheck = false

    func validate() throws {
        let counts = [
            ("--tokens", tokens), ("--prompt-tokens", promptTokens), ("--token-delay-ms", tokenDelayMs),
            ("--header-delay-ms", headerDelayMs),
        ]
        for (name, value) in counts {
            if let value, value < 0 { throw ValidationError("\(name) must not be negative") }
        }
        if let tokenBytes, tokenBytes < 1 { throw ValidationError("--token-bytes must be at least 1") }
        guard (0...65_535).contains(port) else { throw ValidationError("--port must be between 0 and 65535") }
    }

    func run() async throws {
        var behaviour = fast ? SimulatorBehaviour.benchmark : SimulatorBehaviour()
        if let tokens { behaviour.completionTokens = tokens }
        if let promptTokens { behaviour.promptTokens = promptTokens }
        if let tokenBytes { behaviour.tokenBytes = tokenBytes }
        if let tokenDelayMs { behaviour.tokenDelay = .milliseconds(tokenDelayMs) }
        if let headerDelayMs { behaviour.headerDelay = .milliseconds(headerDelayMs) }

        var options = SimulatorOptions.benchmark  // nobody reads the record here: keep memory flat
        options.checksHost = !noHostCheck

        let simulator = try await OllamaSimulator.start(host: host, port: port, defaults: behaviour, options: options)
        printLine("ollama-simulator listening on \(simulator.baseURL)")
        let signal = await Self.terminationSignal()
        printLine("ollama-simulator stopping (signal \(signal))", to: STDERR_FILENO)
        try await simulator.shutdown()
    }

    /// Waits for SIGINT or SIGTERM and returns which arrived.
    private static func terminationSignal() async -> Int32 {
        let (signals, continuation) = AsyncStream.makeStream(of: Int32.self)
        let queue = DispatchQueue(label: "ollama-simulator.signals")
        let sources = [SIGINT, SIGTERM].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
            source.setEventHandler { continuation.yield(number) }
            source.resume()
            return source
        }
        defer { sources.forEach { $0.cancel() } }
        for await number in signals { return number }
        return SIGTERM
    }

    /// Writes a line unbuffered (standard output by default), so that a parent process sees it at once.
    private func printLine(_ text: String, to descriptor: Int32 = STDOUT_FILENO) {
        let bytes = Array((text + "\n").utf8)
        bytes.withUnsafeBytes { buffer in _ = write(descriptor, buffer.baseAddress, buffer.count) }
    }
}
