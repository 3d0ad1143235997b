/// `/v1/completions` (middleware/openai.go `CompletionsMiddleware` + `CompleteWriter`).
enum OpenAICompletions {
    static let requestSchema = GoStructSchema(
        "openai.CompletionRequest",
        [
            ("model", .string), ("prompt", .string), ("frequency_penalty", .float32), ("max_tokens", .int),
            ("presence_penalty", .float32), ("seed", .int), ("stop", .any), ("stream", .bool),
            ("stream_options", .structure(OpenAIChat.streamOptionsSchema)), ("temperature", .float32),
            ("top_p", .float32), ("suffix", .string), ("logprobs", .int),
        ]
    )

    static func completions(_ request: SimulatorRequest) -> any ResponseProducer {
        do {
            let body = try request.decodeBody(requestSchema) { OpenAIError.fromMiddleware(400, $0.goMessage) }
            let model = body[field: "model"]?.stringValue ?? ""
            guard !model.isEmpty, SimulatedModel.exists(model) else {
                return FixedSteps(OpenAIError.fromHandler(404, "model '\(model)' not found"))
            }
            if let message = request.behaviour.forcedStatusMessage(model: model) {
                return FixedSteps(OpenAIError.fromHandler(request.behaviour.forcedStatus!, message))
            }
            request.state.noteModelLoaded(model)

            let plan = GenerationPlan(model: model, behaviour: request.behaviour)
            let id = SimulatedIdentifiers.completion(request.sequence)
            if body[field: "stream"]?.boolValue ?? false {
                let includeUsage = body[field: "stream_options"]?[field: "include_usage"]?.boolValue ?? false
                let dialect = OpenAICompletionsDialect(id: id, plan: plan, includesUsage: includeUsage)
                return InferenceStream(dialect: dialect, plan: plan)
            }
            return plan.nonStreamingResponse(
                success: {
                    let object: JSONValue = [
                        "id": .string(id), "object": "text_completion",
                        "created": .int(request.clock.now().seconds), "model": .string(model),
                        "system_fingerprint": "fp_ollama",
                        "choices": [["text": .string(plan.fullText), "index": 0, "finish_reason": "stop"]],
                        "usage": OpenAIChat.usage(plan.usage),
                    ]
                    return GoResponse.encoderJSON(200, object)
                },
                failure: { OpenAIError.fromHandler(500, $0) }
            )
        } catch {
            return FixedSteps(error.steps)
        }
    }
}

/// The `text_completion` SSE stream. With `include_usage`, Ollama puts a zero `usage` on every chunk and sends the
/// real one in a final `"choices":[]` chunk before `[DONE]`.
struct OpenAICompletionsDialect: InferenceDialect {
    let id: String
    let plan: GenerationPlan
    let includesUsage: Bool

    var streamHeaders: [(String, String)] { [("Content-Type", "text/event-stream")] }

    mutating func events(for event: GenerationEvent, at time: SimulatedInstant) -> [[UInt8]] {
        switch event {
        case .token(_, let text):
            return [sseData(chunk(text: text, finishReason: nil, at: time))]
        case .done:
            var events = [sseData(chunk(text: "", finishReason: "stop", at: time))]
            if includesUsage {
                let usageChunk: JSONValue = [
                    "id": .string(id), "object": "text_completion", "created": .int(time.seconds), "choices": [],
                    "model": .string(plan.model), "system_fingerprint": "fp_ollama",
                    "usage": OpenAIChat.usage(plan.usage),
                ]
                events.append(sseData(usageChunk))
            }
            events.append(Array("data: [DONE]\n\n".utf8))
            return events
        case .failure:
            // Ollama's CompleteWriter decodes the `{"error":…}` object as an empty generate response: an empty
            // text chunk, then the stream ends without usage or `[DONE]`.
            return [sseData(chunk(text: "", finishReason: nil, at: time))]
        }
    }

    private func chunk(text: String, finishReason: String?, at time: SimulatedInstant) -> JSONValue {
        let object: JSONValue = [
            "id": .string(id), "object": "text_completion", "created": .int(time.seconds),
            "choices": [["text": .string(text), "index": 0, "finish_reason": .optional(finishReason)]],
            "model": .string(plan.model), "system_fingerprint": "fp_ollama",
        ]
        guard includesUsage else { return object }
        return object.appending([
            JSONMember(key: "usage", value: ["prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0])
        ])
    }
}
