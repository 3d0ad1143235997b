import NIOCore
import Testing
@testable import OllamaMetricsProxy

/// `/api/ps` and `/api/version` as Ollama writes them (`api.ProcessResponse`, gin's `c.JSON`), and the
/// scrape-time families rendered from them.
@Suite("Ollama status")
struct OllamaStatusParsingTests {
    static let ps = #"{"models":[{"name":"llama3.2:latest","model":"llama3.2:latest","size":3619684352,"digest":"a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72","details":{"parent_model":"","format":"gguf","family":"llama","families":["llama"],"parameter_size":"3.2B","quantization_level":"Q4_K_M"},"expires_at":"2025-06-01T12:05:00.123456789+02:00","size_vram":2147483648,"context_length":8192},{"name":"all-minilm:latest","model":"all-minilm:latest","size":46000000,"digest":"1b226e2802db","details":{"parent_model":"","format":"gguf","family":"bert","families":["bert"],"parameter_size":"23M","quantization_level":"F16"},"expires_at":"2025-06-01T10:10:00Z","size_vram":0}]}"#

    @Test func loadedModelsAreReadWithOmittedZeroFields() throws {
        let models = try #require(OllamaStatus.parseLoadedModels(ByteBuffer(string: Self.ps)))
        #expect(models == [
            .init(name: "llama3.2:latest", sizeBytes: 3_619_684_352, vramBytes: 2_147_483_648, contextLength: 8192, expiresAt: 1_748_772_300.123456789),
            .init(name: "all-minilm:latest", sizeBytes: 46_000_000, vramBytes: 0, contextLength: nil, expiresAt: 1_748_772_600),
        ])
        #expect(OllamaStatus.parseLoadedModels(ByteBuffer(string: #"{"models":[]}"#)) == [])
        #expect(OllamaStatus.parseLoadedModels(ByteBuffer(string: #"{"models":null}"#)) == [])
        #expect(OllamaStatus.parseLoadedModels(ByteBuffer(string: "404 page not found")) == nil)
        #expect(OllamaStatus.parseLoadedModels(ByteBuffer(string: #"{"error":"x"}"#)) == nil)
    }

    @Test func versionIsRead() {
        #expect(OllamaStatus.parseVersion(ByteBuffer(string: #"{"version":"0.33.0"}"#)) == "0.33.0")
        #expect(OllamaStatus.parseVersion(ByteBuffer(string: "Ollama is running")) == nil)
    }

    @Test(arguments: [
        ("1970-01-01T00:00:00Z", 0.0), ("2025-06-01T12:00:00Z", 1_748_779_200), ("2025-06-01T14:00:00+02:00", 1_748_779_200),
        ("2025-06-01T11:30:00.5-00:30", 1_748_779_200.5), ("2000-02-29T00:00:00Z", 951_782_400),
        ("2318-01-01T00:00:00Z", 10_981_785_600),
    ])
    func rfc3339TimestampsAsGoWritesThem(_ text: String, _ seconds: Double) {
        #expect(RFC3339.secondsSinceEpoch(text) == seconds)
    }

    @Test(arguments: ["", "2025-06-01", "2025-06-01T12:00:00", "2025-13-01T12:00:00Z", "2025-06-01T12:00:00+0200", "0001-01-01T00:00:00Zjunk"])
    func malformedTimestampsAreNotTimes(_ text: String) {
        #expect(RFC3339.secondsSinceEpoch(text) == nil)
    }

    @Test func scrapeTimeFamiliesRenderOllamasStatus() {
        let status = OllamaStatus(isUp: true, version: "0.33.0", models: [
            .init(name: #"odd "name"\"#, sizeBytes: 10, vramBytes: 5, contextLength: 4096, expiresAt: 1_000_300.5),
        ])
        let text = String(decoding: ScrapeTimeMetrics.render(status, now: 1_000_000), as: UTF8.self)
        let label = #"{model="odd \"name\"\\"}"#
        for line in [
            "# TYPE ollama_up gauge", "ollama_up 1", #"ollama_version_info{version="0.33.0"} 1"#,
            "ollama_loaded_model_size_bytes\(label) 10", "ollama_loaded_model_vram_bytes\(label) 5",
            "ollama_loaded_model_context_length\(label) 4096", "ollama_loaded_model_expires_in_seconds\(label) 300.5",
            "# TYPE process_cpu_seconds_total counter",
        ] {
            #expect(text.split(separator: "\n").contains(Substring(line)), "\(line)")
        }
        let down = String(decoding: ScrapeTimeMetrics.render(.down("connection refused"), now: 0), as: UTF8.self)
        #expect(down.contains("ollama_up 0\n"))
        #expect(!down.contains("ollama_version_info{"))
        #expect(!down.contains("ollama_loaded_model_size_bytes{"))
    }
}
