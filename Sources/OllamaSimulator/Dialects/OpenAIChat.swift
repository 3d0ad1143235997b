/// `/v1/chat/completions` (middleware/openai.go `ChatMiddleware` + `ChatWriter`, v0.32.6+ stream format).
enum OpenAIChat {
    static let streamOptionsSchema = GoStructSchema("openai.StreamOptions", [("include_usage", .bool)])

    static let messageSchema = GoStructSchema(
        "openai.Message",
        [
            ("role", .string), ("content", .any), ("reasoning", .string), ("tool_calls", .any), ("name", .string),
            ("tool_call_id", .string),
        ]
    )

    static let requestSchema = GoStructSchema(
        "openai.ChatCompletionRequest",
        [
            ("model", .string), ("messages", .slice(name: "[]openai.Message", element: .structure(messageSchema))),
            ("stream", .bool), ("stream_options", .structure(streamOptionsSchema)), ("max_tokens", .int),
            ("seed", .int), ("stop", .any), ("temperature", .float), ("frequency_penalty", .float),
            ("presence_penalty", .float), ("top_p", .float), ("response_format", .any), ("tools", .any),
            ("reasoning", .any), ("reasoning_effort", .string), ("logprobs", .bool), ("top_logprobs", .int),
        ]
    )

    static func chatCompletions(_ request: SimulatorRequest) -> any ResponseProducer {
        do {
            let body = try request.decodeBody(requestSchema) { OpenAIError.fromMiddleware(400, $0.goMessage) }
            let messages = body[field: "messages"]?.arrayValue ?? []
            if messages.isEmpty {
                return FixedSteps(OpenAIError.fromMiddleware(400, "[] is too short - 'messages'"))
            }
            if let problem = messageProblem(messages) { return FixedSteps(OpenAIError.fromMiddleware(400, problem)) }

            let model = body[field: "model"]?.stringValue ?? ""
            guard !model.isEmpty else { return FixedSteps(OpenAIError.fromHandler(400, "model is required")) }
            guard SimulatedModel.exists(model) else {
                return FixedSteps(OpenAIError.fromHandler(404, "model '\(model)' not found"))
            }
            if let message = request.behaviour.forcedStatusMessage(model: model) {
                return FixedSteps(OpenAIError.fromHandler(request.behaviour.forcedStatus!, message))
            }
            request.state.noteModelLoaded(model)

            let plan = GenerationPlan(model: model, behaviour: request.behaviour)
            let id = SimulatedIdentifiers.chatCompletion(request.sequence)
            if body[field: "stream"]?.boolValue ?? false {
                let includeUsage = body[field: "stream_options"]?[field: "include_usage"]?.boolValue ?? false
                let dialect = OpenAIChatDialect(id: id, plan: plan, includesUsage: includeUsage)
                return InferenceStream(dialect: dialect, plan: plan)
            }
            return plan.nonStreamingResponse(
                success: {
                    GoResponse.encoderJSON(200, completion(id: id, plan: plan, at: request.clock.now()))
                },
                failure: { OpenAIError.fromHandler(500, $0) }
            )
        } catch {
            return FixedSteps(error.steps)
        }
    }

    /// `openai.FromChatRequest`'s refusal of a message it cannot convert, or `nil`.
    static func messageProblem(_ messages: [JSONValue]) -> String? {
        for message in messages {
            switch message[field: "content"] {
            case .string?:
                continue
            case .array(let parts)?:
                for part in parts {
                    guard case .object = part else { return "invalid message format" }
                    switch part[field: "type"]?.stringValue {
                    case "text":
                        if part[field: "text"]?.stringValue == nil { return "invalid message format" }
                    case "image_url", "input_audio":
                        continue
                    default:
                        return "invalid message format"
                    }
                }
            case nil, .null?:
                if message[field: "tool_calls"] == nil || message[field: "tool_calls"] == .null {
                    return "invalid message content type: <nil>"
                }
            case .number?: return "invalid message content type: float64"
            case .bool?: return "invalid message content type: bool"
            case .object?: return "invalid message content type: map[string]interface {}"
            case .raw?: continue
            }
        }
        return nil
    }

    static func usage(_ usage: SimulatedUsage) -> JSONValue {
        [
            "prompt_tokens": .int(usage.promptTokens), "completion_tokens": .int(usage.completionTokens),
            "total_tokens": .int(usage.totalTokens),
        ]
    }

    /// The non-streaming `chat.completion` object.
    static func completion(id: String, plan: GenerationPlan, at time: SimulatedInstant) -> JSONValue {
        [
            "id": .string(id), "object": "chat.completion", "created": .int(time.seconds),
            "model": .string(plan.model), "system_fingerprint": "fp_ollama",
            "choices": [
                [
                    "index": 0, "message": ["role": "assistant", "content": .string(plan.fullText)],
                    "finish_reason": "stop",
                ]
            ],
            "usage": usage(plan.usage),
        ]
    }
}

/// The `chat.completion.chunk` SSE stream: role only on the first chunk, a dedicated finish chunk with an empty
/// delta, the usage-only chunk (`"choices":[]`) when `stream_options.include_usage` is set, then `[DONE]`.
struct OpenAIChatDialect: InferenceDialect {
    let id: String
    let plan: GenerationPlan
    let includesUsage: Bool
    private var created: Int64?
    private var firstChunkSent = false

    init(id: String, plan: GenerationPlan, includesUsage: Bool) {
        self.id = id
        self.plan = plan
        self.includesUsage = includesUsage
    }

    var streamHeaders: [(String, String)] { [("Content-Type", "text/event-stream")] }

    mutating func events(for event: GenerationEvent, at time: SimulatedInstant) -> [[UInt8]] {
        if created == nil { created = time.seconds }
        switch event {
        case .token(_, let text):
            return [contentChunk(text)]
        case .done:
            var events: [[UInt8]] = []
            // The metrics trailer only becomes a content chunk when nothing was sent before it.
            if !firstChunkSent { events.append(contentChunk("")) }
            let finishChoice: JSONValue = ["index": 0, "delta": [:], "finish_reason": "stop"]
            events.append(sseData(chunk(choices: [finishChoice])))
            if includesUsage {
                events.append(sseData(chunk(choices: []).appending([
                    JSONMember(key: "usage", value: OpenAIChat.usage(plan.usage))
                ])))
            }
            events.append(Array("data: [DONE]\n\n".utf8))
            return events
        case .failure:
            // Ollama's ChatWriter decodes the `{"error":…}` object as an empty chat response: the client gets
            // an empty content chunk, then the stream ends without usage or `[DONE]`.
            return [contentChunk("")]
        }
    }

    private mutating func contentChunk(_ text: String) -> [UInt8] {
        let delta: JSONValue =
            firstChunkSent ? ["content": .string(text)] : ["role": "assistant", "content": .string(text)]
        firstChunkSent = true
        return sseData(chunk(choices: [["index": 0, "delta": delta, "finish_reason": nil]]))
    }

    private func chunk(choices: [JSONValue]) -> JSONValue {
        [
            "id": .string(id), "object": "chat.completion.chunk", "created": .int(created ?? 0),
            "model": .string(plan.model), "system_fingerprint": "fp_ollama", "choices": .array(choices),
        ]
    }
}
