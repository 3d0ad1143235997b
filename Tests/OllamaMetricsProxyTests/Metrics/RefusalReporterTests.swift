import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import Prometheus
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

@testable import OllamaMetricsProxy

/// Refusals are all counted, and logged once when a burst starts and once when it is over.
@Suite struct RefusalReporterTests {
    final class Lines: Sendable {
        let box = NIOLockedValueBox<[String]>([])
        var all: [String] { self.box.withLockedValue { $0 } }
    }

    struct Capture: LogHandler {
        let lines: Lines
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { self.metadata[key] }
            set { self.metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            let reason = event.metadata?["reason"].map { "\($0)" } ?? "-"
            self.lines.box.withLockedValue { $0.append("\(event.level) \(reason) \(event.message)") }
        }
    }

    static func exposition(_ registry: PrometheusCollectorRegistry) -> String {
        var bytes: [UInt8] = []
        registry.emit(into: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    @Test func aBurstIsOneLineAtItsStartAndOneSummaryAfterItAndEveryRefusalIsCounted() throws {
        let lines = Lines()
        let registry = PrometheusCollectorRegistry()
        let loop = EmbeddedEventLoop()
        let reporter = RefusalReporter(
            registry: registry, logger: Logger(label: "test") { _ in Capture(lines: lines) }, quietPeriod: .milliseconds(50)
        )
        #expect(Self.exposition(registry).contains(#"ollama_metrics_proxy_refusals_total{reason="too_many_connections"} 0"#))

        for _ in 0..<1000 {
            reporter.refused(.tooManyConnections(limit: 7), clientAddress: "10.0.0.1", on: loop)
        }
        reporter.refused(.tooManyHeaders(limit: 3, endpoint: nil), clientAddress: nil, on: loop)
        #expect(lines.all.count == 2, "one line per reason while the burst lasts: \(lines.all)")
        #expect(lines.all[0].hasPrefix("warning too_many_connections refused: too many connections: 7 are open"))

        usleep(120_000)  // longer than the quiet period, in real time
        loop.advanceTime(to: .now())
        #expect(lines.all.count == 3, "\(lines.all)")
        #expect(lines.all[2].hasPrefix("warning too_many_connections refusals stopped: 1000 refused over "))
        // A lone refusal was said in full already: no summary for it.
        #expect(!lines.all.contains { $0.contains("too_many_headers refusals stopped") })

        // A new burst is logged again.
        reporter.refused(.tooManyConnections(limit: 7), clientAddress: nil, on: loop)
        #expect(lines.all.count == 4)

        let text = Self.exposition(registry)
        #expect(text.contains(#"ollama_metrics_proxy_refusals_total{reason="too_many_connections"} 1001"#))
        #expect(text.contains(#"ollama_metrics_proxy_refusals_total{reason="too_many_headers"} 1"#))
        #expect(text.contains(#"ollama_metrics_proxy_refusals_total{reason="malformed_request"} 0"#))
        try loop.syncShutdownGracefully()
    }

    @Test func aBurstThatGoesOnIsNotSummedUpYet() throws {
        let lines = Lines()
        let loop = EmbeddedEventLoop()
        let reporter = RefusalReporter(
            registry: PrometheusCollectorRegistry(), logger: Logger(label: "test") { _ in Capture(lines: lines) },
            quietPeriod: .seconds(3600)
        )
        reporter.refused(.malformedRequest, clientAddress: nil, on: loop)
        reporter.refused(.malformedRequest, clientAddress: nil, on: loop)
        loop.advanceTime(to: .now())
        #expect(lines.all.count == 1, "\(lines.all)")
        try loop.syncShutdownGracefully()
    }
}
