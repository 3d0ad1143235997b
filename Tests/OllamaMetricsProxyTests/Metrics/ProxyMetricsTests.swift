import Testing

@testable import OllamaMetricsProxy

@Suite struct MetricContract {
    func exposition(_ metrics: ProxyMetrics) -> String {
        String(decoding: metrics.exposition(), as: UTF8.self)
    }

    @Test func nineFamiliesWithTheGoToolsNamesTypesAndHelp() {
        let metrics = ProxyMetrics()
        let record = InferenceRecord(metrics: metrics, endpoint: .generate, model: "llama3.2")
        record.complete(with: Usage(
            model: "llama3.2", promptTokens: 26, completionTokens: 282, totalDurationNanos: 5_000_000_000,
            loadDurationNanos: 1_500_000_000, promptEvalDurationNanos: 250_000_000, evalDurationNanos: 2_820_000_000
        ))
        record.finish()
        let text = self.exposition(metrics)
        let expected: [(String, String, String)] = [
            ("ollama_requests_total", "counter", "Total completed inference requests."),
            ("ollama_prompt_tokens_total", "counter", "Total prompt tokens processed."),
            ("ollama_completion_tokens_total", "counter", "Total completion tokens generated."),
            ("ollama_request_duration_seconds", "histogram", "End-to-end request duration in seconds."),
            ("ollama_active_requests", "gauge", "Currently in-flight inference requests."),
            ("ollama_tokens_per_second", "gauge", "Most recent token generation speed (Ollama native only)."),
            ("ollama_prompt_eval_seconds_total", "counter", "Total time evaluating prompts in seconds (Ollama native only)."),
            ("ollama_token_generation_seconds_total", "counter", "Total time generating tokens in seconds (Ollama native only)."),
            ("ollama_model_load_seconds_total", "counter", "Total time loading models in seconds (Ollama native only)."),
        ]
        for (name, type, help) in expected {
            #expect(text.contains("# HELP \(name) \(help)\n"), "HELP of \(name)")
            #expect(text.contains("# TYPE \(name) \(type)\n"), "TYPE of \(name)")
        }
        #expect(text.contains(#"ollama_requests_total{model="llama3.2",endpoint="/api/generate"} 1"#))
        #expect(text.contains(#"ollama_prompt_tokens_total{model="llama3.2"} 26"#))
        #expect(text.contains(#"ollama_completion_tokens_total{model="llama3.2"} 282"#))
        #expect(text.contains(#"ollama_tokens_per_second{model="llama3.2"} 100.0"#))
        #expect(text.contains(#"ollama_prompt_eval_seconds_total{model="llama3.2"} 0.25"#))
        #expect(text.contains(#"ollama_token_generation_seconds_total{model="llama3.2"} 2.82"#))
        #expect(text.contains(#"ollama_model_load_seconds_total{model="llama3.2"} 1.5"#))
        #expect(text.contains(#"ollama_active_requests{model="llama3.2",endpoint="/api/generate"} 0.0"#))
        #expect(text.contains(#"ollama_request_duration_seconds_count{model="llama3.2",endpoint="/api/generate"} 1"#))
    }

    @Test func durationBucketsAreTheContractsTwelve() {
        let metrics = ProxyMetrics()
        InferenceRecord(metrics: metrics, endpoint: .chat, model: "m").finish()
        let buckets = self.exposition(metrics).split(separator: "\n")
            .filter { $0.hasPrefix("ollama_request_duration_seconds_bucket") }
            .compactMap { line -> Double? in
                let afterLe = line.split(separator: "le=\"", maxSplits: 1, omittingEmptySubsequences: false)
                guard afterLe.count == 2, let value = afterLe[1].split(separator: "\"").first else { return nil }
                return value == "+Inf" ? .infinity : Double(value)
            }
        #expect(buckets == [0.1, 0.5, 1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, .infinity])
    }

    @Test func activeGaugeIsReleasedExactlyOnceWhateverHappens() {
        let metrics = ProxyMetrics()
        do {
            let finished = InferenceRecord(metrics: metrics, endpoint: .chat, model: "m")
            finished.finish()
            finished.finish()
            _ = InferenceRecord(metrics: metrics, endpoint: .chat, model: "m")  // dropped without finish
        }
        #expect(self.exposition(metrics).contains(#"ollama_active_requests{model="m",endpoint="/api/chat"} 0.0"#))
    }

    @Test func aRequestCountsOnceEvenIfUsageArrivesTwice() {
        let metrics = ProxyMetrics()
        let record = InferenceRecord(metrics: metrics, endpoint: .chatCompletions, model: "m")
        record.complete(with: Usage(model: "m", promptTokens: 3, completionTokens: 4))
        record.complete(with: Usage(model: "m", promptTokens: 3, completionTokens: 4))
        record.finish()
        let text = self.exposition(metrics)
        #expect(text.contains(#"ollama_requests_total{model="m",endpoint="/v1/chat/completions"} 1"#))
        #expect(text.contains(#"ollama_prompt_tokens_total{model="m"} 3"#))
        #expect(!text.contains("ollama_tokens_per_second"), "native-only metrics stay absent for OpenAI requests")
    }

    @Test func modelLabelValuesAreBounded() {
        let policy = ModelLabelPolicy(limit: 2)
        #expect(policy.admit("a", endpoint: .chat).admission.label == "a")
        #expect(policy.admit("b", endpoint: .chat).admission.label == "b")
        let third = policy.admit("c", endpoint: .chat)
        #expect(third.admission.label == ModelLabelPolicy.overflow)
        #expect(third.firstOverflow)
        #expect(!policy.admit("d", endpoint: .chat).firstOverflow, "the bound is reported once")
        #expect(policy.admit("a", endpoint: .generate).admission.label == "a", "existing names keep their series")
        #expect(policy.admit(nil, endpoint: .chat).admission.label == ModelLabelPolicy.unknown)
        #expect(policy.admit("", endpoint: .chat).admission.label == ModelLabelPolicy.unknown)
    }

    @Test func aModelOllamaRejectsGivesItsPlaceBack() {
        let policy = ModelLabelPolicy(limit: 1)
        #expect(policy.admit("typo", endpoint: .chat).admission.isProvisional)
        var evicted: [InferenceEndpoint] = []
        #expect(policy.release("typo", rejected: true) { evicted = $0 })
        #expect(evicted == [.chat])
        #expect(policy.labelCount == 0)
        let real = policy.admit("llama3.2", endpoint: .chat).admission
        #expect(real.label == "llama3.2")
        policy.confirm("llama3.2")
        #expect(!policy.release("llama3.2", rejected: false) { _ in Issue.record("confirmed names stay") })
        #expect(policy.admit("llama3.2", endpoint: .chat).admission == .init(label: "llama3.2", isProvisional: false, overflowed: false))
    }

    @Test func aRejectedNameStillInUseElsewhereIsNotEvicted() {
        let policy = ModelLabelPolicy(limit: 5)
        _ = policy.admit("x", endpoint: .chat)
        _ = policy.admit("x", endpoint: .generate)
        #expect(policy.release("x", rejected: true) { _ in Issue.record("still in flight") })
        var evicted: Set<InferenceEndpoint> = []
        #expect(policy.release("x", rejected: true) { evicted = Set($0) })
        #expect(evicted == [.chat, .generate])
    }

    @Test func everyRequestEndsCompletedOrFailedWithOneReason() {
        let metrics = ProxyMetrics()
        let completed = InferenceRecord(metrics: metrics, endpoint: .chat, model: "m")
        completed.upstreamAnswered(status: 200)
        completed.complete(with: Usage(promptTokens: 1, completionTokens: 1))
        completed.fail(.clientDisconnected)  // after the usage: still completed
        completed.finish()
        let failed = InferenceRecord(metrics: metrics, endpoint: .chat, model: "m")
        failed.upstreamAnswered(status: 503)
        failed.fail(.http5xx)
        failed.fail(.clientDisconnected)  // the first reason wins
        failed.finish()
        let silent = InferenceRecord(metrics: metrics, endpoint: .chat, model: "m")
        silent.upstreamAnswered(status: 200)
        silent.finish()
        let text = self.exposition(metrics)
        #expect(text.contains(#"ollama_requests_total{model="m",endpoint="/api/chat"} 1"#))
        #expect(text.contains(#"ollama_request_failures_total{model="m",endpoint="/api/chat",reason="http_5xx"} 1"#))
        #expect(text.contains(#"ollama_request_failures_total{model="m",endpoint="/api/chat",reason="no_usage"} 1"#))
        #expect(!text.contains("client_disconnected"))
    }

    @Test func rejectedModelsAreRecordedUnderOneLabelAndLeaveNoSeries() {
        let metrics = ProxyMetrics(maxModelLabels: 3)
        for index in 0..<50 {
            let record = InferenceRecord(metrics: metrics, endpoint: .generate, model: "missing-\(index)")
            record.responseHeadReceived(status: 404)
            record.ended(InferenceEnding(outcome: .failed(.http4xx), requestBodyBytes: 10, responseBodyBytes: 20))
        }
        let text = self.exposition(metrics)
        #expect(!text.contains("missing-"))
        #expect(text.contains(#"ollama_request_failures_total{model="__rejected__",endpoint="/api/generate",reason="http_4xx"} 50"#))
        #expect(metrics.modelLabels.labelCount == 0)
    }

    @Test func aRejectedNameNeverErasesRequestsAlreadyRecorded() {
        let metrics = ProxyMetrics(maxModelLabels: 5)
        // Ollama was down: recorded under the name, which stays provisional.
        let unreachable = InferenceRecord(metrics: metrics, endpoint: .chat, model: "typo")
        unreachable.ended(InferenceEnding(outcome: .failed(.upstreamUnreachable), requestBodyBytes: 1, responseBodyBytes: 0))
        // Then two requests at once, both rejected: the first ends while the second is still in flight.
        let first = InferenceRecord(metrics: metrics, endpoint: .chat, model: "typo")
        let second = InferenceRecord(metrics: metrics, endpoint: .chat, model: "typo")
        for record in [first, second] {
            record.responseHeadReceived(status: 404)
            record.ended(InferenceEnding(outcome: .failed(.http4xx), requestBodyBytes: 1, responseBodyBytes: 1))
        }
        let text = self.exposition(metrics)
        #expect(text.contains(#"ollama_request_failures_total{model="typo",endpoint="/api/chat",reason="upstream_unreachable"} 1"#))
        #expect(text.contains(#"ollama_request_failures_total{model="__rejected__",endpoint="/api/chat",reason="http_4xx"} 2"#))
        #expect(text.contains(#"ollama_request_duration_seconds_count{model="__rejected__",endpoint="/api/chat"} 2"#))
    }

    @Test func concurrentRejectionsAreAllRecordedAndTheNameStillEvicted() {
        let metrics = ProxyMetrics(maxModelLabels: 5)
        let records = (0..<3).map { _ in InferenceRecord(metrics: metrics, endpoint: .generate, model: "missing") }
        for record in records {
            record.responseHeadReceived(status: 404)
            record.ended(InferenceEnding(outcome: .failed(.http4xx), requestBodyBytes: 1, responseBodyBytes: 1))
        }
        let text = self.exposition(metrics)
        #expect(!text.contains(#"model="missing""#))
        #expect(text.contains(#"ollama_request_failures_total{model="__rejected__",endpoint="/api/generate",reason="http_4xx"} 3"#))
        #expect(metrics.modelLabels.labelCount == 0)
    }

    @Test func aRejectedModelsServingSeriesAreEvictedToo() {
        let metrics = ProxyMetrics(maxModelLabels: 3)
        let observer = CompositeLifecycleObserver([MetricsRecorder(metrics: metrics), ServingRecorder(metrics: metrics)])
        let listener = observer.requestBegan(InferenceRequestStart(endpoint: .chat, model: "typo", isStreaming: true))
        // Series a racing request could have created for the provisional name before Ollama's 404.
        metrics.serving.histogram(.timeToFirstToken, model: "typo", endpoint: .chat).record(0.1)
        metrics.serving.finishReasons(model: "typo", endpoint: .chat, reason: .stop).increment()
        metrics.serving.speedSeries(model: "typo").promptSpeed.set(to: 1)
        metrics.serving.clientSeries(client: "c", model: "typo").requests.increment()
        #expect(self.exposition(metrics).contains("typo"))
        listener.responseHeadReceived(status: 404)
        listener.ended(InferenceEnding(outcome: .failed(.http4xx), requestBodyBytes: 1, responseBodyBytes: 1))
        #expect(!self.exposition(metrics).contains("typo"))
    }

    @Test func servingSeriesUseTheRequestsModelLabel() {
        let metrics = ProxyMetrics(maxModelLabels: 1)
        let observer = CompositeLifecycleObserver([MetricsRecorder(metrics: metrics), ServingRecorder(metrics: metrics)])
        for model in ["a", "b", nil] {
            let listener = observer.requestBegan(InferenceRequestStart(endpoint: .generate, model: model, isStreaming: false))
            listener.responseHeadReceived(status: 200)
            listener.usageSeen(Usage(promptTokens: 2, completionTokens: 1, finishReason: .length))
            listener.ended(InferenceEnding(outcome: .completed, requestBodyBytes: 1, responseBodyBytes: 1))
        }
        let text = self.exposition(metrics)
        for label in ["a", "__overflow__", "unknown"] {
            #expect(text.contains(#"ollama_requests_total{model="\#(label)",endpoint="/api/generate"} 1"#), "\(label)")
            #expect(text.contains(#"ollama_request_finish_reasons_total{model="\#(label)",endpoint="/api/generate",finish_reason="length"} 1"#), "\(label)")
            #expect(text.contains(#"ollama_request_prompt_tokens_sum{model="\#(label)",endpoint="/api/generate"} 2"#), "\(label)")
        }
        #expect(!text.contains(#"model="b""#))
    }
}
