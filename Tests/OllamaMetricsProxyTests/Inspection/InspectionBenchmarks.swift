#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore
import Testing
@testable import OllamaMetricsProxy

/// Per-chunk cost of inspection, the proxy's hot path. Opt-in (`INSPECTION_BENCHMARKS=1`) and meant for
/// release builds: `swift test -c release -Xswiftc -enable-testing --filter InspectionBenchmarks`.
/// If a malloc-counting shim exporting `malloc_count()` is preloaded, allocations per chunk are reported.
@Suite("Inspection benchmarks", .enabled(if: getenv("INSPECTION_BENCHMARKS") != nil))
struct InspectionBenchmarks {
    private typealias CountFunction = @convention(c) () -> Int

    private static var mallocCount: CountFunction? {
        #if canImport(Glibc)
        // RTLD_DEFAULT is a null handle on glibc.
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_count") else { return nil }
        return unsafeBitCast(symbol, to: CountFunction.self)
        #else
        return nil
        #endif
    }

    private static func measure(
        _ name: String, endpoint: InferenceEndpoint, contentType: String, withhold: Bool, chunks: [String], rounds: Int = 200_000
    ) {
        let buffers = chunks.map { InspectionHarness.buffer($0) }
        let request = InferenceRequest(model: nil, isStreaming: true, withholdUsageChunks: withhold)
        var inspector = ResponseInspector(endpoint: endpoint, request: request, contentType: contentType)
        var sink = 0
        for buffer in buffers { sink &+= inspector.inspect(buffer).readableBytes }  // warm up
        let mallocsBefore = mallocCount?()
        let start = ContinuousClock.now
        for round in 0..<rounds {
            sink &+= inspector.inspect(buffers[round % buffers.count]).readableBytes
        }
        let elapsed = ContinuousClock.now - start
        let mallocsAfter = mallocCount?()
        let nanos = Double(elapsed.components.seconds) * 1e9 + Double(elapsed.components.attoseconds) / 1e9
        let bytes = buffers.map(\.readableBytes).reduce(0, +) / buffers.count
        var line = "\(name): \(Int(nanos / Double(rounds))) ns per chunk (~\(bytes) bytes)"
        if let mallocsBefore, let mallocsAfter {
            line += ", \(Double(mallocsAfter - mallocsBefore) / Double(rounds)) mallocs per chunk"
        }
        print(line, sink > 0 ? "" : "!")
    }

    @Test func steadyStateChunks() {
        Self.measure(
            "native generate token line", endpoint: .generate, contentType: WireFixtures.ndjson, withhold: false,
            chunks: [#"{"model":"llama3.2","created_at":"2025-06-01T12:00:00.02Z","response":" the","done":false}"# + "\n"]
        )
        Self.measure(
            "native chat token line, long model name", endpoint: .chat, contentType: WireFixtures.ndjson, withhold: false,
            chunks: [#"{"model":"hf.co/bartowski/Llama-3.2-3B-Instruct-GGUF:Q4_K_M","created_at":"2025-06-01T12:00:00.02Z","message":{"role":"assistant","content":" the"},"done":false}"# + "\n"]
        )
        Self.measure(
            "openai chat chunk", endpoint: .chatCompletions, contentType: WireFixtures.eventStream, withhold: false,
            chunks: [WireFixtures.chatCompletionChunks[1]]
        )
        Self.measure(
            "openai chat chunk, withholding", endpoint: .chatCompletions, contentType: WireFixtures.eventStream, withhold: true,
            chunks: [WireFixtures.chatCompletionChunks[1]]
        )
        Self.measure(
            "openai completions chunk with zero usage, withholding", endpoint: .completions,
            contentType: WireFixtures.eventStream, withhold: true, chunks: [WireFixtures.completionChunks[1]]
        )
        Self.measure(
            "anthropic content_block_delta", endpoint: .messages, contentType: WireFixtures.eventStream, withhold: false,
            chunks: [WireFixtures.anthropicContent[1]]
        )
        Self.measure(
            "responses output_text.delta", endpoint: .responses, contentType: WireFixtures.eventStream, withhold: false,
            chunks: [WireFixtures.responsesEvents[4]]
        )
        Self.measure(
            "openai chat chunk cut in two pieces, withholding", endpoint: .chatCompletions,
            contentType: WireFixtures.eventStream, withhold: true,
            chunks: [String(WireFixtures.chatCompletionChunks[1].prefix(100)), String(WireFixtures.chatCompletionChunks[1].dropFirst(100))]
        )
    }

    @Test func generateFinalLineThroughput() {
        let context = (0..<300_000).map { String(($0 &* 7919) % 128_256) }.joined(separator: ",")
        let line = Array((#"{"model":"llama3.2","done":true,"context":["# + context + #"],"eval_count":1000,"eval_duration":4289432000}"# + "\n").utf8)
        let pieces = InspectionHarness.chunks(line, of: 16_384).map { InspectionHarness.buffer($0) }
        let request = InferenceRequest(model: nil, isStreaming: true, withholdUsageChunks: false)
        let start = ContinuousClock.now
        let rounds = 20
        for _ in 0..<rounds {
            var inspector = ResponseInspector(endpoint: .generate, request: request, contentType: WireFixtures.ndjson)
            for piece in pieces { _ = inspector.inspect(piece) }
            precondition(inspector.takeCompletedUsage()?.completionTokens == 1000)
        }
        let elapsed = ContinuousClock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        print("generate final line: \(line.count) bytes in \(Int(seconds / Double(rounds) * 1e6)) µs, \(Int(Double(line.count * rounds) / seconds / 1e6)) MB/s")
    }
}
