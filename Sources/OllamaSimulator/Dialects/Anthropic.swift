/// `/v1/messages` (middleware/anthropic.go `AnthropicMessagesMiddleware` + `AnthropicWriter`).
enum Anthropic {
    static let requestSchema = GoStructSchema(
        "anthropic.MessagesRequest",
        [
            ("model", .string), ("max_tokens", .int),
            ("messages", .slice(name: "[]anthropic.MessageParam", element: .any)),
            ("system", .any), ("stream", .bool), ("temperature", .float), ("top_p", .float), ("top_k", .int),
            ("stop_sequences", .slice(name: "[]string", element: .string)), ("tools", .any), ("tool_choice", .any),
            ("thinking", .any), ("metadata", .any), ("output_config", .any),
        ]
    )

    /// Headers the middleware sets before the handler runs when streaming; they stay on error responses too.
    static let streamingHeaders = [("Cache-Control", "no-cache"), ("Connection", "keep-alive")]

    static func messages(_ request: SimulatorRequest) -> any ResponseProducer {
        let requestID = SimulatedIdentifiers.anthropicRequest(request.sequence)
        do {
            let body = try request.decodeBody(requestSchema) {
                AnthropicError.fromMiddleware(400, $0.goMessage, requestID: requestID)
            }
            let model = body[field: "model"]?.stringValue ?? ""
            guard !model.isEmpty else {
                return FixedSteps(AnthropicError.fromMiddleware(400, "model is required", requestID: requestID))
            }
            guard (body[field: "max_tokens"]?.intValue ?? 0) > 0 else {
                return FixedSteps(
                    AnthropicError.fromMiddleware(
                        400,
                        "max_tokens is required and must be positive",
                        requestID: requestID
                    )
                )
            }
            guard !(body[field: "messages"]?.arrayValue ?? []).isEmpty else {
                return FixedSteps(AnthropicError.fromMiddleware(400, "messages is required", requestID: requestID))
            }

            let streams = body[field: "stream"]?.boolValue ?? false
            let errorHeaders = streams ? streamingHeaders : []
            guard SimulatedModel.exists(model) else {
                return FixedSteps(
                    AnthropicError.fromHandler(
                        404,
                        "model '\(model)' not found",
                        requestID: requestID,
                        extraHeaders: errorHeaders
                    )
                )
            }
            if let message = request.behaviour.forcedStatusMessage(model: model) {
                return FixedSteps(
                    AnthropicError.fromHandler(
                        request.behaviour.forcedStatus!,
                        message,
                        requestID: requestID,
                        extraHeaders: errorHeaders
                    )
                )
            }
            request.state.noteModelLoaded(model)

            let plan = GenerationPlan(model: model, behaviour: request.behaviour)
            let messageID = SimulatedIdentifiers.anthropicMessage(request.sequence)
            if streams {
                let dialect = AnthropicDialect(
                    id: messageID,
                    plan: plan,
                    estimatedInputTokens: AnthropicEstimate.inputTokens(body)
                )
                return InferenceStream(dialect: dialect, plan: plan)
            }
            return plan.nonStreamingResponse(
                success: {
                    let text = plan.fullText
                    let content: JSONValue = text.isEmpty ? .null : [["type": "text", "text": .string(text)]]
                    let object: JSONValue = [
                        "id": .string(messageID), "type": "message", "role": "assistant",
                        "model": .string(model), "content": content, "stop_reason": "end_turn",
                        "usage": [
                            "input_tokens": .int(plan.usage.promptTokens),
                            "output_tokens": .int(plan.usage.completionTokens),
                        ],
                    ]
                    return GoResponse.encoderJSON(200, object)
                },
                failure: { AnthropicError.fromHandler(500, $0, requestID: requestID) }
            )
        } catch {
            return FixedSteps(error.steps)
        }
    }
}

/// The Anthropic SSE stream as Ollama's `StreamConverter` writes it: `message_start` (with the input-token
/// estimate), `content_block_start`, one `content_block_delta` per token, `content_block_stop`, `message_delta`
/// (real input and output tokens), `message_stop`. Every event is flushed on its own.
struct AnthropicDialect: InferenceDialect {
    let id: String
    let plan: GenerationPlan
    let estimatedInputTokens: Int
    private var firstWrite = true
    private var textStarted = false

    init(id: String, plan: GenerationPlan, estimatedInputTokens: Int) {
        self.id = id
        self.plan = plan
        self.estimatedInputTokens = estimatedInputTokens
    }

    var streamHeaders: [(String, String)] { Anthropic.streamingHeaders + [("Content-Type", "text/event-stream")] }

    var flushesEachEvent: Bool { true }

    mutating func events(for event: GenerationEvent, at time: SimulatedInstant) -> [[UInt8]] {
        var events: [[UInt8]] = []
        switch event {
        case .token(_, let text):
            // A token chunk carries no metrics: message_start reports the estimate.
            if firstWrite { events.append(messageStart(inputTokens: estimatedInputTokens)) }
            if !textStarted {
                textStarted = true
                events.append(
                    sseEvent(
                        "content_block_start",
                        [
                            "type": "content_block_start", "index": 0,
                            "content_block": ["type": "text", "text": ""],
                        ]
                    )
                )
            }
            events.append(
                sseEvent(
                    "content_block_delta",
                    [
                        "type": "content_block_delta", "index": 0,
                        "delta": ["type": "text_delta", "text": .string(text)],
                    ]
                )
            )
        case .done:
            if firstWrite {
                let actual = plan.usage.promptTokens
                events.append(messageStart(inputTokens: actual != 0 ? actual : estimatedInputTokens))
            }
            if textStarted {
                events.append(sseEvent("content_block_stop", ["type": "content_block_stop", "index": 0]))
            }
            events.append(
                sseEvent(
                    "message_delta",
                    [
                        "type": "message_delta", "delta": ["stop_reason": "end_turn"],
                        "usage": [
                            "input_tokens": .int(plan.usage.promptTokens),
                            "output_tokens": .int(plan.usage.completionTokens),
                        ],
                    ]
                )
            )
            events.append(sseEvent("message_stop", ["type": "message_stop"]))
        case .failure:
            // Ollama never sends `error` events: its converter sees the `{"error":…}` object as an empty chat
            // response, and the stream ends without `message_delta` or `message_stop`.
            if firstWrite { events.append(messageStart(inputTokens: estimatedInputTokens)) }
        }
        return events
    }

    private mutating func messageStart(inputTokens: Int) -> [UInt8] {
        firstWrite = false
        return sseEvent(
            "message_start",
            [
                "type": "message_start",
                "message": [
                    "id": .string(id), "type": "message", "role": "assistant", "model": .string(plan.model),
                    "content": [], "usage": ["input_tokens": .int(inputTokens), "output_tokens": 0],
                ],
            ]
        )
    }
}

/// `anthropic.EstimateInputTokens`: bytes of system prompt, roles, text and thinking blocks, tool names,
/// descriptions and schemas, over 4; at least 1 when there are messages or a system prompt.
enum AnthropicEstimate {
    static func inputTokens(_ request: JSONValue) -> Int {
        var total = 0
        let system = request[field: "system"]
        total += contentLength(system)
        let messages = request[field: "messages"]?.arrayValue ?? []
        for message in messages {
            total += (message[field: "role"]?.stringValue ?? "").utf8.count
            total += contentLength(message[field: "content"])
        }
        for tool in request[field: "tools"]?.arrayValue ?? [] {
            total += (tool[field: "name"]?.stringValue ?? "").utf8.count
            total += (tool[field: "description"]?.stringValue ?? "").utf8.count
            if let schema = tool[field: "input_schema"], schema != .null { total += GoJSON.encode(schema).count }
        }
        var tokens = total / 4
        if tokens == 0 && (!messages.isEmpty || (system != nil && system != .null)) { tokens = 1 }
        return tokens
    }

    private static func contentLength(_ content: JSONValue?) -> Int {
        switch content {
        case .string(let text)?:
            return text.utf8.count
        case .array(let blocks)?:
            return blocks.reduce(0) { sum, block in
                sum + (block[field: "text"]?.stringValue ?? "").utf8.count
                    + (block[field: "thinking"]?.stringValue ?? "").utf8.count
            }
        default:
            return 0
        }
    }
}
