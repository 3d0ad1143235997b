import NIOCore
import NIOHTTP1
import OllamaMetricsProxy
import Testing

/// With `--metrics-token-file`, `/metrics` needs `Authorization: Bearer <token>`; the health endpoints do not.
@Suite struct MetricsAccessTests {
    static let token = try! MetricsToken(fileContents: Array("s3cret-T0ken\n".utf8), path: "token")

    @Test func metricsNeedTheBearerTokenAndHealthDoesNot() async throws {
        try await ProxyHarness.with(configure: { $0.metricsToken = Self.token }) { harness in
            for headers in [[], [("Authorization", "Bearer wrong")], [("Authorization", "Basic czNjcmV0LVQwa2Vu")],
                            [("Authorization", "Bearer s3cret-T0ke")], [("Authorization", "Bearer s3cret-T0ken2")]] {
                let refused = try await httpRequest(harness.metricsAddress, .GET, "/metrics", headers: headers)
                #expect(refused.head.status == .unauthorized, "\(headers)")
                #expect(refused.header("WWW-Authenticate") == #"Bearer realm="ollama-metrics-proxy""#)
                #expect(!refused.bodyString.contains("ollama_"), "no metric leaks into the refusal")
            }
            let head = try await httpRequest(harness.metricsAddress, .HEAD, "/metrics")
            #expect(head.head.status == .unauthorized)

            for scheme in ["Bearer", "bearer", "BEARER"] {
                let allowed = try await httpRequest(
                    harness.metricsAddress, .GET, "/metrics", headers: [("Authorization", "\(scheme) s3cret-T0ken")]
                )
                #expect(allowed.head.status == .ok)
                #expect(allowed.bodyString.contains("# TYPE ollama_metrics_proxy_refusals_total counter"))
            }
            #expect(try await httpRequest(harness.metricsAddress, .GET, "/healthz").head.status == .ok)
            #expect(try await httpRequest(harness.metricsAddress, .GET, "/readyz").head.status == .ok)
            // The proxy port is not affected.
            #expect(try await harness.viaProxy(.GET, "/api/tags").head.status == .ok)
        }
    }
}
