import Foundation
import Testing
@testable import OllamaMetricsProxy

/// `/status.json`: valid JSON, the documented fields, values computed from the board.
@Suite struct StatusJSONTests {
    static func text(_ write: (inout JSONWriter) -> Void) -> String {
        var writer = JSONWriter()
        write(&writer)
        return String(decoding: writer.bytes, as: UTF8.self)
    }

    @Test func theWriterPutsCommasAndEscapesStrings() {
        let text = Self.text { json in
            json.object { json in
                json.member("a", 1)
                json.member("quote", #"say "hi"\ now"#)
                json.member("lines", "one\ntwo\u{1}\t")
                json.member("none", nil as String?)
                json.key("list")
                json.array { json in
                    json.number(1.5)
                    json.object { _ in }
                    json.null()
                    json.bool(false)
                }
                json.member("é", "ü €")
            }
        }
        #expect(text == #"{"a":1,"quote":"say \"hi\"\\ now","lines":"one\ntwo\u0001\u0009","none":null,"list":[1.5,{},null,false],"é":"ü €"}"#)
    }

    @Test func numbersAreShortAndNeverInvalid() {
        let text = Self.text { json in
            json.array { json in
                for value in [3.0, 0.1, 1.0 / 3.0, -2.5, .nan, .infinity, 3_219_393_189, 1e-9] as [Double] { json.number(value) }
                json.number(nil as Double?)
                json.number(Int.max)
            }
        }
        #expect(text == "[3,0.1,0.333333,-2.5,null,null,3219393189,0,null,\(Int.max)]")
    }

    static func snapshot() -> StatusSnapshot {
        var board = StatusBoard(maxModels: 10)
        let second: Int64 = 1_000_000_000
        let requests: [(String, InferenceEnding.Outcome, Double?)] = [
            ("llama3.2", .completed, 0.3), ("llama3.2", .completed, 0.3), ("llama3.2", .failed(.http5xx), nil),
            ("qwen2.5:0.5b", .failed(.clientDisconnected), 0.05),
        ]
        for (model, outcome, firstToken) in requests {
            let key = board.began(model: model)
            if let firstToken { board.observeTimeToFirstToken(firstToken, model: model, at: 4 * second) }
            board.ended(
                StatusBoard.FinishedRequest(
                    time: 1_800_000_000.25, model: model, endpoint: .chatCompletions, isStreaming: true, status: 200,
                    outcome: outcome, promptTokens: outcome == .completed ? 10 : nil, completionTokens: outcome == .completed ? 20 : nil,
                    durationSeconds: 1.25, timeToFirstTokenSeconds: firstToken, client: "127.0.0.1"
                ),
                beganAs: key, at: 5 * second
            )
        }
        _ = board.began(model: "llama3.2")
        let ollama = OllamaStatus(
            isUp: true, version: "0.12.3",
            models: [.init(name: "llama3.2:latest", sizeBytes: 3_219_393_189, vramBytes: 3_000_000_000, contextLength: 4096, expiresAt: 1_800_000_100)],
            problem: nil
        )
        return StatusSnapshot(
            time: 1_800_000_000, uptimeSeconds: 42, showsClientAddresses: true, ollama: ollama,
            models: board.summaries(at: 6 * second), recent: board.recentRequests
        )
    }

    static func parse(_ bytes: [UInt8]) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
    }

    @Test func theSchemaCarriesOllamaModelsAndRecentRequests() throws {
        let json = try Self.parse(Self.snapshot().json())
        #expect(json["schema_version"] as? Int == 1)
        #expect(json["time"] as? Double == 1_800_000_000)
        #expect(json["uptime_s"] as? Double == 42)
        #expect(json["shows_clients"] as? Bool == true)
        let windows = try #require(json["windows"] as? [String: Any])
        #expect(windows["last_minute_s"] as? Int == 60 && windows["trend_slot_s"] as? Int == 10 && windows["trend_slots"] as? Int == 30)

        let ollama = try #require(json["ollama"] as? [String: Any])
        #expect(ollama["up"] as? Bool == true && ollama["version"] as? String == "0.12.3")
        #expect(ollama["problem"] is NSNull)
        let loaded = try #require((ollama["loaded_models"] as? [[String: Any]])?.first)
        #expect(loaded["name"] as? String == "llama3.2:latest")
        #expect(loaded["size_bytes"] as? Int == 3_219_393_189 && loaded["vram_bytes"] as? Int == 3_000_000_000)
        #expect(loaded["context_length"] as? Int == 4096 && loaded["expires_in_s"] as? Double == 100)

        let models = try #require(json["models"] as? [[String: Any]])
        #expect(models.map { $0["model"] as? String } == ["llama3.2", "qwen2.5:0.5b"])
        let llama = models[0]
        #expect(llama["in_flight"] as? Int == 1)
        let minute = try #require(llama["last_minute"] as? [String: Any])
        #expect(minute["requests"] as? Int == 3 && minute["completed"] as? Int == 2 && minute["failed"] as? Int == 1)
        #expect(minute["completion_tokens"] as? Int == 40 && minute["prompt_tokens"] as? Int == 20)
        #expect(minute["completion_tokens_per_s"] as? Double == 0.666667, "40 tokens in 60 s")
        #expect(minute["requests_per_s"] as? Double == 0.05)
        #expect(minute["error_ratio"] as? Double == 0.333333)
        let firstToken = try #require(llama["time_to_first_token_s"] as? [String: Any])
        #expect(firstToken["count"] as? Int == 2 && firstToken["p50"] as? Double == 0.375)
        let totals = try #require(llama["totals"] as? [String: Any])
        #expect(totals["completed"] as? Int == 2 && totals["failed"] as? Int == 1 && totals["client_disconnected"] as? Int == 0)
        let trend = try #require(llama["trend"] as? [String: [Double]])
        #expect(Set(trend.keys) == ["requests_per_s", "errors_per_s", "prompt_tokens_per_s", "completion_tokens_per_s"])
        #expect(trend["completion_tokens_per_s"]?.count == 30)
        #expect(trend["completion_tokens_per_s"]?.last == 4, "40 tokens in the current ten-second slot")

        let qwen = try #require(models[1]["last_minute"] as? [String: Any])
        #expect(qwen["error_ratio"] as? Double == 0, "a client hanging up is not an error")
        #expect((models[1]["time_to_first_token_s"] as? [String: Any])?["p95"] as? Double == 0.04875)

        let all = try #require(json["all"] as? [String: Any])
        #expect(all["model"] as? String == "*" && all["in_flight"] as? Int == 1)
        #expect((all["totals"] as? [String: Any])?["requests"] as? Int == 4)
        #expect((all["time_to_first_token_s"] as? [String: Any])?["count"] as? Int == 3)

        let recent = try #require(json["recent"] as? [[String: Any]])
        #expect(recent.count == 4)
        let newest = recent[0]
        #expect(newest["model"] as? String == "qwen2.5:0.5b" && newest["outcome"] as? String == "client_disconnected")
        #expect(newest["prompt_tokens"] is NSNull && newest["status"] as? Int == 200 && newest["stream"] as? Bool == true)
        #expect(newest["endpoint"] as? String == "/v1/chat/completions" && newest["client"] as? String == "127.0.0.1")
        #expect(newest["duration_s"] as? Double == 1.25 && newest["ttft_s"] as? Double == 0.05 && newest["time"] as? Double == 1_800_000_000.25)
        #expect(recent[3]["completion_tokens"] as? Int == 20 && recent[3]["outcome"] as? String == "completed")
    }

    @Test func withoutAProbeOllamaIsNullAndAnEmptyBoardIsValid() throws {
        let snapshot = StatusSnapshot(time: 0, uptimeSeconds: 0, showsClientAddresses: false, ollama: nil, models: [], recent: [])
        let json = try Self.parse(snapshot.json())
        #expect(json["ollama"] is NSNull)
        #expect((json["models"] as? [Any])?.isEmpty == true)
        let minute = try #require((json["all"] as? [String: Any])?["last_minute"] as? [String: Any])
        #expect(minute["error_ratio"] is NSNull, "no request, no ratio")
    }

    @Test func aDownOllamaSaysWhy() throws {
        var snapshot = Self.snapshot()
        snapshot.ollama = .down("cannot connect: connection refused")
        let ollama = try #require(try Self.parse(snapshot.json())["ollama"] as? [String: Any])
        #expect(ollama["up"] as? Bool == false && ollama["version"] is NSNull)
        #expect(ollama["problem"] as? String == "cannot connect: connection refused")
        #expect((ollama["loaded_models"] as? [Any])?.isEmpty == true)
    }
}
