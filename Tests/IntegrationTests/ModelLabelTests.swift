import Foundation
import NIOCore
import Testing

/// Which `model` label values a request gets, through the in-process proxy and the simulator: a name is a
/// label only once Ollama accepted it (a 2xx, or listed by `/api/tags`); before that it is in flight under
/// `__unconfirmed__`.
@Suite struct ModelLabels {
    static func chat(_ model: String) -> String {
        #"{"model":"\#(model)","messages":[{"role":"user","content":"hi"}]}"#
    }

    static func inFlight(_ json: [String: Any]) -> [String: Int] {
        var counts: [String: Int] = [:]
        for model in json["models"] as? [[String: Any]] ?? [] {
            if let name = model["model"] as? String, let count = model["in_flight"] as? Int, count > 0 { counts[name] = count }
        }
        return counts
    }

    @Test func aNewNameIsUnconfirmedUntilOllamasTwoXXThenItsOwn() async throws {
        try await ProxyHarness.with { harness in
            let active = { (model: String) in ["model": model, "endpoint": "/api/chat"] }
            // Held before Ollama's response head: Ollama has not accepted the name yet.
            let beforeHead = Task {
                try await harness.viaProxy(.POST, "/api/chat", headers: [("X-Sim-Gate", "head")], body: Self.chat("brand-new"))
            }
            #expect(await harness.simulator.waitForHeld(atGate: "head"))
            var metrics = try await harness.scrape { $0.value("ollama_active_requests", active("__unconfirmed__")) == 1 }
            #expect(metrics.value("ollama_active_requests", active("__unconfirmed__")) == 1)
            #expect(!metrics.samples.contains { $0.labels["model"] == "brand-new" })
            #expect(Self.inFlight(try await StatusPageEndToEnd.statusJSON(harness)) == ["__unconfirmed__": 1])
            harness.simulator.openGate("head")
            #expect(try await beforeHead.value.status == 200)

            // Held after the head and one token: the request has moved to its name's label.
            let afterHead = Task {
                try await harness.viaProxy(
                    .POST, "/api/chat", headers: [("X-Sim-Gate", "token"), ("X-Sim-Gate-After", "1")], body: Self.chat("second-new")
                )
            }
            #expect(await harness.simulator.waitForHeld(atGate: "token"))
            metrics = try await harness.scrape { $0.value("ollama_active_requests", active("second-new")) == 1 }
            #expect(metrics.value("ollama_active_requests", active("second-new")) == 1)
            #expect(metrics.value("ollama_active_requests", active("__unconfirmed__")) == 0)
            #expect(Self.inFlight(try await StatusPageEndToEnd.statusJSON(harness)) == ["second-new": 1])
            harness.simulator.openGate("token")
            #expect(try await afterHead.value.status == 200)

            metrics = try await harness.scrape()
            for model in ["brand-new", "second-new"] {
                #expect(metrics.value("ollama_requests_total", active(model)) == 1, "\(model)")
                #expect(metrics.value("ollama_active_requests", active(model)) == 0, "\(model)")
                #expect(metrics.value("ollama_request_duration_seconds_count", active(model)) == 1, "\(model)")
            }
            #expect(metrics.value("ollama_active_requests", active("__unconfirmed__")) == 0)
            #expect(metrics.value("ollama_request_duration_seconds_count", active("__unconfirmed__")) == nil, "nothing recorded under it")
        }
    }

    @Test func aModelOllamaListsIsInFlightUnderItsNameFromTheStart() async throws {
        try await ProxyHarness.with { harness in
            _ = try await harness.scrape()  // the probe reads /api/tags: llama3.2:latest is there
            let held = Task {
                try await harness.viaProxy(.POST, "/api/chat", headers: [("X-Sim-Gate", "head")], body: Self.chat("llama3.2"))
            }
            #expect(await harness.simulator.waitForHeld(atGate: "head"))
            let series = ["model": "llama3.2", "endpoint": "/api/chat"]
            let metrics = try await harness.scrape { $0.value("ollama_active_requests", series) == 1 }
            #expect(metrics.value("ollama_active_requests", series) == 1)
            #expect(metrics.value("ollama_active_requests", ["model": "__unconfirmed__", "endpoint": "/api/chat"]) == nil)
            harness.simulator.openGate("head")
            #expect(try await held.value.status == 200)
        }
    }

    @Test func namesOllamaRefusesOrNeverAnswersAreRecordedUnderPlaceholders() async throws {
        try await ProxyHarness.with(accessLog: CapturedLog()) { harness in
            #expect(try await harness.viaProxy(.POST, "/api/chat", body: Self.chat("missing-model")).status == 404)
            let badRequest = #"{"model":"junk","messages":[],"stream":"x"}"#
            #expect(try await harness.viaProxy(.POST, "/api/chat", body: badRequest).status == 400)
            // A name Ollama accepted keeps its label when a later request of it is refused.
            #expect(try await harness.viaProxy(.POST, "/api/chat", body: Self.chat("llama3.2")).status == 200)
            #expect(try await harness.viaProxy(.POST, "/api/chat", body: #"{"model":"llama3.2","messages":[],"stream":"x"}"#).status == 400)
            let metrics = try await harness.scrape()
            let failures = { (model: String) in
                metrics.value("ollama_request_failures_total", ["model": model, "endpoint": "/api/chat", "reason": "http_4xx"])
            }
            #expect(failures("__rejected__") == 2)
            #expect(failures("llama3.2") == 1)
            #expect(!metrics.samples.contains { $0.labels["model"] == "missing-model" || $0.labels["model"] == "junk" })
            let json = try await StatusPageEndToEnd.statusJSON(harness)
            let names = Set((json["models"] as? [[String: Any]] ?? []).compactMap { $0["model"] as? String })
            #expect(names == ["__rejected__", "llama3.2"])
        }
    }
}
