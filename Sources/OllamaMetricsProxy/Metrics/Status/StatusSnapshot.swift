/// Everything the status page shows at one moment, and its JSON (`GET /status.json`, schema in the README):
/// Ollama's state from the cached `/api/ps` and `/api/version` probe, and the traffic from `StatusBoard`.
struct StatusSnapshot {
    /// Bumped when a field changes meaning or goes; new fields may come without it.
    static let schemaVersion = 1

    /// Seconds since the Unix epoch.
    var time: Double
    var uptimeSeconds: Double
    var showsClientAddresses: Bool
    /// nil when Ollama was not asked (a server without a probe).
    var ollama: OllamaStatus?
    var models: [StatusBoard.ModelSummary]
    /// Newest first.
    var recent: [StatusBoard.FinishedRequest]

    /// Every model added up, as one more summary named `*`.
    var allModels: StatusBoard.ModelSummary {
        var all = StatusBoard.ModelSummary(
            model: "*", inFlight: 0, lastMinute: .init(), totals: .init(), timeToFirstToken: BucketCounts(),
            trend: Array(repeating: .init(), count: StatusBoard.trendSlots)
        )
        for model in self.models {
            all.inFlight += model.inFlight
            all.lastMinute.add(model.lastMinute)
            all.totals.add(model.totals)
            all.timeToFirstToken.add(model.timeToFirstToken)
            for index in all.trend.indices where index < model.trend.count { all.trend[index].add(model.trend[index]) }
        }
        return all
    }

    func json() -> [UInt8] {
        var json = JSONWriter(capacity: 2048 + 1024 * self.models.count + 256 * self.recent.count)
        json.object { json in
            json.member("schema_version", Self.schemaVersion)
            json.member("time", self.time)
            json.member("uptime_s", self.uptimeSeconds)
            json.member("proxy_version", ProxyVersion.current)
            json.key("windows")
            json.object { json in
                json.member("last_minute_s", Int(Int64(StatusBoard.lastMinuteSlots) * StatusBoard.lastMinuteSlotNanos / 1_000_000_000))
                json.member("trend_slot_s", Int(StatusBoard.trendSlotNanos / 1_000_000_000))
                json.member("trend_slots", StatusBoard.trendSlots)
                json.member("recent_max", StatusBoard.recentCapacity)
            }
            json.member("shows_clients", self.showsClientAddresses)
            json.key("ollama")
            if let ollama = self.ollama { self.write(ollama, to: &json) } else { json.null() }
            json.key("all")
            Self.write(self.allModels, to: &json)
            json.key("models")
            json.array { json in
                for model in self.models { Self.write(model, to: &json) }
            }
            json.key("recent")
            json.array { json in
                for request in self.recent { Self.write(request, to: &json) }
            }
        }
        return json.bytes
    }

    private func write(_ ollama: OllamaStatus, to json: inout JSONWriter) {
        json.object { json in
            json.member("up", ollama.isUp)
            json.member("version", ollama.version)
            json.member("problem", ollama.problem)
            json.key("loaded_models")
            json.array { json in
                for model in ollama.models {
                    json.object { json in
                        json.member("name", model.name)
                        json.member("size_bytes", model.sizeBytes.map(Int.init))
                        json.member("vram_bytes", model.vramBytes.map(Int.init))
                        json.member("context_length", model.contextLength.map(Int.init))
                        json.member("expires_in_s", model.expiresAt.map { max(0, $0 - self.time) })
                    }
                }
            }
        }
    }

    private static func write(_ model: StatusBoard.ModelSummary, to json: inout JSONWriter) {
        let minute = Double(StatusBoard.lastMinuteSlots) * Double(StatusBoard.lastMinuteSlotNanos) / 1e9
        let slot = Double(StatusBoard.trendSlotNanos) / 1e9
        json.object { json in
            json.member("model", model.model)
            json.member("in_flight", model.inFlight)
            json.key("last_minute")
            json.object { json in
                Self.write(model.lastMinute, to: &json)
                json.member("requests_per_s", Double(model.lastMinute.requests) / minute)
                json.member("prompt_tokens_per_s", Double(model.lastMinute.promptTokens) / minute)
                json.member("completion_tokens_per_s", Double(model.lastMinute.completionTokens) / minute)
                json.member(
                    "error_ratio",
                    model.lastMinute.requests > 0 ? Double(model.lastMinute.errors) / Double(model.lastMinute.requests) : nil
                )
            }
            json.key("time_to_first_token_s")
            json.object { json in
                json.member("count", model.timeToFirstToken.count)
                json.member("p50", model.timeToFirstToken.quantile(0.5))
                json.member("p95", model.timeToFirstToken.quantile(0.95))
            }
            json.key("totals")
            json.object { json in Self.write(model.totals, to: &json) }
            json.key("trend")
            json.object { json in
                let series: [(String, (StatusBoard.Counts) -> Int)] = [
                    ("requests_per_s", \.requests), ("errors_per_s", \.errors),
                    ("prompt_tokens_per_s", \.promptTokens), ("completion_tokens_per_s", \.completionTokens),
                ]
                for (name, value) in series {
                    json.key(name)
                    json.array { json in
                        for counts in model.trend { json.number(Double(value(counts)) / slot) }
                    }
                }
            }
        }
    }

    private static func write(_ counts: StatusBoard.Counts, to json: inout JSONWriter) {
        json.member("requests", counts.requests)
        json.member("completed", counts.completed)
        json.member("failed", counts.failed)
        json.member("client_disconnected", counts.clientDisconnected)
        json.member("prompt_tokens", counts.promptTokens)
        json.member("completion_tokens", counts.completionTokens)
    }

    private static func write(_ request: StatusBoard.FinishedRequest, to json: inout JSONWriter) {
        json.object { json in
            json.member("time", request.time)
            json.member("model", request.model)
            json.member("endpoint", request.endpoint.rawValue)
            json.member("stream", request.isStreaming)
            json.member("status", request.status)
            switch request.outcome {
            case .completed: json.member("outcome", "completed")
            case .failed(let reason): json.member("outcome", reason.rawValue)
            }
            json.member("prompt_tokens", request.promptTokens)
            json.member("completion_tokens", request.completionTokens)
            json.member("duration_s", request.durationSeconds)
            json.member("ttft_s", request.timeToFirstTokenSeconds)
            json.member("client", request.client)
        }
    }
}
