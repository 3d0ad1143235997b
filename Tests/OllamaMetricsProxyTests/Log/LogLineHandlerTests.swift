import Logging
import Testing

@testable import OllamaMetricsProxy

/// The two line formats: whatever a value holds, one line, parseable.
@Suite struct LogLineHandlerTests {
    static let time = 1_764_605_000.5  // 2025-12-01T16:03:20.500Z

    static let metadata: Logger.Metadata = [
        "client": "10.0.0.9", "path": "/api/chat", "method": "POST", "status": .stringConvertible(200),
        "duration_s": .stringConvertible(1.5), "stream": .stringConvertible(true),
        "model": .string("evil \"model\"\nnext=line\\"), "zeta": "z",
    ]

    @Test func textIsOneLineOfKeyValuePairsInTheRequestsOrderWithQuotedValuesEscaped() {
        let line = LogLineHandler.line(
            format: .text, time: Self.time, level: .info, label: "ollama-metrics-proxy.access", message: "request",
            metadata: Self.metadata
        )
        #expect(line == #"2025-12-01T16:03:20.500Z info ollama-metrics-proxy.access: request method=POST path=/api/chat status=200 model="evil \"model\"\nnext=line\\" stream=true duration_s=1.5 client=10.0.0.9 zeta=z"# + "\n")
    }

    @Test func jsonIsOneObjectPerLineWithNumbersAndBooleansAsSuch() {
        let line = LogLineHandler.line(
            format: .json, time: Self.time, level: .info, label: "ollama-metrics-proxy.access", message: "request",
            metadata: Self.metadata
        )
        #expect(line == #"{"time":"2025-12-01T16:03:20.500Z","level":"info","logger":"ollama-metrics-proxy.access","msg":"request","method":"POST","path":"/api/chat","status":200,"model":"evil \"model\"\nnext=line\\","stream":true,"duration_s":1.5,"client":"10.0.0.9","zeta":"z"}"# + "\n")
    }

    @Test func controlCharactersNeverBreakTheLine() {
        for format in LogFormat.allCases {
            let line = LogLineHandler.line(
                format: format, time: 0, level: .error, label: "x", message: "bad\r\nthing\u{1}", metadata: ["k": "a\u{7F}b\u{0}"]
            )
            #expect(line.dropLast().allSatisfy { $0 != "\n" && $0 != "\r" }, "\(format): \(line)")
            #expect(line.hasPrefix(format == .text ? "1970-01-01T00:00:00.000Z error x: " : #"{"time":"1970-01-01T00:00:00.000Z""#))
        }
    }

    @Test func aPlainMessageKeepsItsSpacesInText() {
        let line = LogLineHandler.line(format: .text, time: 0, level: .notice, label: "l", message: "listening on :11435", metadata: [:])
        #expect(line == "1970-01-01T00:00:00.000Z notice l: listening on :11435\n")
    }
}
