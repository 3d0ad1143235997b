import Testing

@testable import OllamaMetricsProxy

@Suite struct MetricContract {
    func exposition(_ metrics: ProxyMetrics) -> String {
        String(decoding: metrics.exposition(), as: UTF8.self)
    }

    /// One request's life as the connection handler tells it: Ollama's status (nil: no answer), the usage if
    /// it went by, the end.
    func play(
        _ metrics: ProxyMetrics, _ endpoint: InferenceEndpoint = .chat, model: String?, status: Int?, failure: FailureReason? = nil
    ) {
        let record = InferenceRecord(metrics: metrics, endpoint: endpoint, model: model)
        if let status { record.responseHeadReceived(status: status) }
        if failure == nil { record.usageSeen(Usage(promptTokens: 1, completionTokens: 1)) }
        record.ended(InferenceEnding(outcome: failure.map { .failed($0) } ?? .completed, requestBodyBytes: 1, responseBodyBytes: 1))
    }

    @Test func nineFamiliesWithTheGoToolsNamesTypesAndHelp() {
        let metrics = ProxyMetrics()
        let record = InferenceRecord(metrics: metrics, endpoint: .generate, model: "llama3.2")
        record.upstreamAnswered(status: 200)
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
            finished.upstreamAnswered(status: 200)
            finished.finish()
            finished.finish()
            _ = InferenceRecord(metrics: metrics, endpoint: .chat, model: "m")  // dropped without finish
            let moved = InferenceRecord(metrics: metrics, endpoint: .chat, model: "n")
            moved.upstreamAnswered(status: 200)  // dropped after moving to its name's label
        }
        let text = self.exposition(metrics)
        for model in ["m", "n", ModelLabelPolicy.unconfirmed] {
            #expect(text.contains(#"ollama_active_requests{model="\#(model)",endpoint="/api/chat"} 0.0"#), "\(model)")
        }
    }

    @Test func aRequestCountsOnceEvenIfUsageArrivesTwice() {
        let metrics = ProxyMetrics()
        let record = InferenceRecord(metrics: metrics, endpoint: .chatCompletions, model: "m")
        record.upstreamAnswered(status: 200)
        record.complete(with: Usage(model: "m", promptTokens: 3, completionTokens: 4))
        record.complete(with: Usage(model: "m", promptTokens: 3, completionTokens: 4))
        record.finish()
        let text = self.exposition(metrics)
        #expect(text.contains(#"ollama_requests_total{model="m",endpoint="/v1/chat/completions"} 1"#))
        #expect(text.contains(#"ollama_prompt_tokens_total{model="m"} 3"#))
        #expect(!text.contains("ollama_tokens_per_second"), "native-only metrics stay absent for OpenAI requests")
    }

    @Test func acceptedModelNamesAreBounded() {
        let policy = ModelLabelPolicy(limit: 2)
        #expect(policy.confirm("a").admission == .named("a"))
        #expect(policy.confirm("b").admission == .named("b"))
        let third = policy.confirm("c")
        #expect(third.admission == .named(ModelLabelPolicy.overflow, overflowed: true))
        #expect(third.firstOverflow)
        #expect(!policy.confirm("d").firstOverflow, "the bound is reported once")
        #expect(policy.admit("a").admission == .named("a"), "accepted names keep their label")
        #expect(policy.admit(nil).admission.label == ModelLabelPolicy.unknown)
        #expect(policy.admit("").admission.label == ModelLabelPolicy.unknown)
        #expect(policy.labelCount == 2)
    }

    @Test func aNameOllamaHasNotAcceptedWaitsForItsAnswerWithoutALabel() {
        let policy = ModelLabelPolicy(limit: 1)
        #expect(policy.admit("typo").admission == .awaitingAnswer)
        #expect(policy.currentLabel(for: "typo") == ModelLabelPolicy.unconfirmed)
        #expect(policy.labelCount == 0, "no slot taken before Ollama's 2xx")
        #expect(policy.settledLabel(for: "typo", answered: true) == ModelLabelPolicy.rejected)
        #expect(policy.settledLabel(for: "typo", answered: false) == ModelLabelPolicy.unconfirmed)
        #expect(policy.confirm("llama3.2").admission == .named("llama3.2"))
        #expect(policy.labelAfterSuccess(for: "llama3.2") == "llama3.2")
        #expect(policy.labelAfterSuccess(for: "other") == ModelLabelPolicy.overflow, "2xx, but the one slot is taken")
    }

    @Test func namesLongerThan256BytesNeverBecomeLabels() {
        let policy = ModelLabelPolicy(limit: 10)
        let longest = String(repeating: "m", count: ModelLabelPolicy.maxNameBytes)
        let tooLong = longest + "m"
        let multibyte = String(repeating: "é", count: 129)  // 258 bytes, 129 characters
        policy.updateListed([tooLong, multibyte])
        for name in [tooLong, multibyte, String(repeating: "x", count: 4 << 20)] {
            #expect(policy.admit(name).admission == .awaitingAnswer, "even when listed")
            #expect(policy.confirm(name).admission == .named(ModelLabelPolicy.rejected), "even after a 2xx")
            #expect(policy.labelAfterSuccess(for: name) == ModelLabelPolicy.rejected)
            #expect(policy.settledLabel(for: name, answered: false) == ModelLabelPolicy.rejected)
        }
        #expect(policy.confirm(longest).admission == .named(longest))
        #expect(policy.labelCount == 1)
    }

    @Test func namesOllamaListsTakeALabelBeforeItAnswers() {
        let policy = ModelLabelPolicy(limit: 10)
        policy.updateListed(["llama3.2:latest", "alice/coder:7b", "registry.example.com/team/model:v1"])
        for name in ["llama3.2", "llama3.2:latest", "library/llama3.2", "registry.ollama.ai/library/llama3.2:latest", "alice/coder:7b",
                     "registry.example.com/team/model:v1"] {
            #expect(policy.admit(name).admission == .named(name), "\(name)")
        }
        for name in ["LLAMA3.2", "llama3.2:1b", "alice/coder", "coder:7b", "team/model:v1"] {
            #expect(policy.admit(name).admission == .awaitingAnswer, "\(name): not what Ollama lists")
        }
        policy.updateListed(["qwen2.5:0.5b"])
        #expect(policy.admit("alice/coder:7b").admission == .named("alice/coder:7b"), "a label is kept once given")
        #expect(policy.admit("llama3.2:1b").admission == .awaitingAnswer)
        #expect(policy.admit("qwen2.5:0.5b").admission == .named("qwen2.5:0.5b"))
        #expect(ModelLabelPolicy.listingKey("a/b/c") == "a/b/c:latest")
        #expect(ModelLabelPolicy.listingKey("host:5000/ns/m") == "host:5000/ns/m:latest", "a port is not a tag")
    }

    @Test func aListedNameWithoutRoomIsAnOverflow() {
        let metrics = ProxyMetrics(maxModelLabels: 1)
        metrics.modelLabels.updateListed(["a:latest", "b:latest"])
        #expect(metrics.admit("a") == .named("a"))
        #expect(metrics.admit("b") == .named(ModelLabelPolicy.overflow, overflowed: true))
        #expect(metrics.modelLabels.currentLabel(for: "b") == ModelLabelPolicy.overflow)
        #expect(self.exposition(metrics).contains("ollama_model_label_overflows_total 1"))
    }

    @Test func junkNamesNeverUseUpTheBudget() {
        let metrics = ProxyMetrics(maxModelLabels: 100)
        for index in 0..<150 {
            self.play(metrics, model: "junk-\(index)", status: index.isMultiple(of: 2) ? 404 : 400, failure: .http4xx)
        }
        self.play(metrics, model: "llama3.2", status: 200)
        let text = self.exposition(metrics)
        #expect(!text.contains("junk-"))
        #expect(text.contains(#"ollama_requests_total{model="llama3.2",endpoint="/api/chat"} 1"#))
        #expect(text.contains(#"ollama_request_failures_total{model="__rejected__",endpoint="/api/chat",reason="http_4xx"} 150"#))
        #expect(!text.contains("__overflow__"))
        #expect(metrics.modelLabels.labelCount == 1)
    }

    @Test func aTwoXXAnswerMovesTheInFlightRequestToItsNamesLabel() {
        let metrics = ProxyMetrics()
        func active(_ model: String) -> String {
            #"ollama_active_requests{model="\#(model)",endpoint="/api/chat"} "#
        }
        let record = InferenceRecord(metrics: metrics, endpoint: .chat, model: "new-model")
        #expect(record.modelLabel == ModelLabelPolicy.unconfirmed)
        #expect(self.exposition(metrics).contains(active(ModelLabelPolicy.unconfirmed) + "1.0"))
        record.upstreamAnswered(status: 200)
        #expect(record.modelLabel == "new-model")
        var text = self.exposition(metrics)
        #expect(text.contains(active(ModelLabelPolicy.unconfirmed) + "0.0"))
        #expect(text.contains(active("new-model") + "1.0"))
        record.complete(with: Usage(promptTokens: 3, completionTokens: 4))
        record.finish()
        text = self.exposition(metrics)
        #expect(text.contains(active("new-model") + "0.0"))
        #expect(text.contains(#"ollama_requests_total{model="new-model",endpoint="/api/chat"} 1"#))
        #expect(text.contains(#"ollama_request_duration_seconds_count{model="new-model",endpoint="/api/chat"} 1"#))
        #expect(!text.contains(#"ollama_request_duration_seconds_count{model="__unconfirmed__""#), "a placeholder in flight has its gauge only")
    }

    @Test func aNameOllamaNeverAnsweredIsUnconfirmedAndOneItRefusedIsRejected() {
        let metrics = ProxyMetrics(maxModelLabels: 5)
        self.play(metrics, model: "typo", status: nil, failure: .upstreamUnreachable)
        self.play(metrics, model: "typo", status: 400, failure: .http4xx)
        let text = self.exposition(metrics)
        #expect(!text.contains("typo"))
        #expect(text.contains(#"ollama_request_failures_total{model="__unconfirmed__",endpoint="/api/chat",reason="upstream_unreachable"} 1"#))
        #expect(text.contains(#"ollama_request_failures_total{model="__rejected__",endpoint="/api/chat",reason="http_4xx"} 1"#))
        #expect(text.contains(#"ollama_active_requests{model="__unconfirmed__",endpoint="/api/chat"} 0.0"#))
        #expect(metrics.modelLabels.labelCount == 0)
    }

    @Test func anAcceptedNameKeepsItsLabelWhenOllamaLaterRefusesARequest() {
        let metrics = ProxyMetrics(maxModelLabels: 5)
        self.play(metrics, model: "llama3.2", status: 200, failure: .noUsage)
        let refused = InferenceRecord(metrics: metrics, endpoint: .chat, model: "llama3.2")
        #expect(refused.modelLabel == "llama3.2", "in flight under its name from the start")
        refused.responseHeadReceived(status: 400)
        refused.ended(InferenceEnding(outcome: .failed(.http4xx), requestBodyBytes: 1, responseBodyBytes: 1))
        #expect(self.exposition(metrics).contains(#"ollama_request_failures_total{model="llama3.2",endpoint="/api/chat",reason="http_4xx"} 1"#))
    }

    @Test func concurrentRequestsOfANewNameEndUnderItOnceOneWasAccepted() {
        let metrics = ProxyMetrics(maxModelLabels: 5)
        let first = InferenceRecord(metrics: metrics, endpoint: .chat, model: "new")
        let second = InferenceRecord(metrics: metrics, endpoint: .chat, model: "new")
        let third = InferenceRecord(metrics: metrics, endpoint: .chat, model: "new")
        #expect(self.exposition(metrics).contains(#"ollama_active_requests{model="__unconfirmed__",endpoint="/api/chat"} 3.0"#))
        first.responseHeadReceived(status: 200)
        second.responseHeadReceived(status: 200)
        #expect(self.exposition(metrics).contains(#"ollama_active_requests{model="new",endpoint="/api/chat"} 2.0"#))
        // Refused after the name was accepted: recorded under it, like any accepted name's failure.
        third.responseHeadReceived(status: 400)
        for record in [first, second, third] {
            record.ended(InferenceEnding(outcome: .failed(.http4xx), requestBodyBytes: 1, responseBodyBytes: 1))
        }
        let text = self.exposition(metrics)
        #expect(text.contains(#"ollama_request_failures_total{model="new",endpoint="/api/chat",reason="http_4xx"} 3"#))
        #expect(text.contains(#"ollama_active_requests{model="new",endpoint="/api/chat"} 0.0"#))
        #expect(text.contains(#"ollama_active_requests{model="__unconfirmed__",endpoint="/api/chat"} 0.0"#))
        #expect(!text.contains("__rejected__"))
    }

    @Test func aTwoXXWithoutRoomMovesTheRequestToOverflow() {
        let metrics = ProxyMetrics(maxModelLabels: 1)
        for model in ["a", "b"] {
            self.play(metrics, .generate, model: model, status: 200)
        }
        let text = self.exposition(metrics)
        #expect(text.contains(#"ollama_requests_total{model="a",endpoint="/api/generate"} 1"#))
        #expect(text.contains(#"ollama_requests_total{model="__overflow__",endpoint="/api/generate"} 1"#))
        #expect(text.contains("ollama_model_label_overflows_total 1"))
        #expect(!text.contains(#"model="b""#))
    }

    @Test func aFourMegabyteNameLeavesTheExpositionSmall() {
        let metrics = ProxyMetrics()
        let huge = String(repeating: "x", count: 4 << 20)
        self.play(metrics, model: huge, status: 400, failure: .http4xx)
        self.play(metrics, model: huge, status: 200)
        let text = self.exposition(metrics)
        #expect(text.utf8.count < 16 * 1024, "\(text.utf8.count) bytes")
        #expect(text.contains(#"ollama_request_duration_seconds_count{model="__rejected__",endpoint="/api/chat"} 2"#))
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
            self.play(metrics, .generate, model: "missing-\(index)", status: 404, failure: .http4xx)
        }
        let text = self.exposition(metrics)
        #expect(!text.contains("missing-"))
        #expect(text.contains(#"ollama_request_failures_total{model="__rejected__",endpoint="/api/generate",reason="http_4xx"} 50"#))
        #expect(metrics.modelLabels.labelCount == 0)
    }

    @Test func aRejectedNameGetsNoServingOrClientSeries() {
        let metrics = ProxyMetrics(maxModelLabels: 3)
        let observer = CompositeLifecycleObserver([
            MetricsRecorder(metrics: metrics), ServingRecorder(metrics: metrics),
            ClientAttributionRecorder(header: "X-User", metrics: metrics, key: .random()),
        ])
        let listener = observer.requestBegan(
            InferenceRequestStart(endpoint: .chat, model: "typo", isStreaming: true, clientHeaders: ["X-User": "alice"])
        )
        listener.responseHeadReceived(status: 404)
        listener.firstContentForwarded()
        listener.usageSeen(Usage(promptTokens: 1, completionTokens: 1, finishReason: .stop))
        listener.ended(InferenceEnding(outcome: .failed(.http4xx), requestBodyBytes: 1, responseBodyBytes: 1))
        let text = self.exposition(metrics)
        #expect(!text.contains("typo"))
        #expect(!text.contains("ollama_client_requests_total{"))
        #expect(!text.contains("ollama_request_finish_reasons_total{"))
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
