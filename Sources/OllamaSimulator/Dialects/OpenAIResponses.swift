/// `/v1/responses` (middleware/openai.go `ResponsesMiddleware` + `ResponsesWriter`, openai/responses.go).
enum OpenAIResponses {
    static let reasoningSchema = GoStructSchema(
        "openai.ResponsesReasoning",
        [("effort", .string), ("generate_summary", .string), ("summary", .string)]
    )

    static let requestSchema = GoStructSchema(
        "openai.ResponsesRequest",
        [
            ("model", .string), ("background", .bool), ("conversation", .any),
            ("include", .slice(name: "[]string", element: .string)), ("input", .any), ("instructions", .string),
            ("max_output_tokens", .int), ("reasoning", .structure(reasoningSchema)), ("temperature", .float),
            ("text", .any), ("top_p", .float), ("truncation", .string), ("tools", .any), ("stream", .bool),
        ]
    )

    static let streamingHeaders = [("Cache-Control", "no-cache"), ("Connection", "keep-alive")]

    static func responses(_ request: SimulatorRequest) -> any ResponseProducer {
        do {
            let body = try request.decodeBody(requestSchema) { OpenAIError.fromMiddleware(400, $0.goMessage) }
            switch body[field: "input"] {
            case nil, .null?, .string?, .array?:
                break
            case let other?:
                let message =
                    "input must be a string or array: json: cannot unmarshal \(other.goKindName) "
                    + "into Go value of type []json.RawMessage"
                return FixedSteps(OpenAIError.fromMiddleware(400, message))
            }
            let streams = body[field: "stream"]?.boolValue ?? false
            let errorHeaders = streams ? streamingHeaders : []

            let model = body[field: "model"]?.stringValue ?? ""
            guard !model.isEmpty else {
                return FixedSteps(OpenAIError.fromHandler(400, "model is required", extraHeaders: errorHeaders))
            }
            guard SimulatedModel.exists(model) else {
                return FixedSteps(
                    OpenAIError.fromHandler(404, "model '\(model)' not found", extraHeaders: errorHeaders)
                )
            }
            if let message = request.behaviour.forcedStatusMessage(model: model) {
                return FixedSteps(
                    OpenAIError.fromHandler(request.behaviour.forcedStatus!, message, extraHeaders: errorHeaders)
                )
            }
            request.state.noteModelLoaded(model)

            let plan = GenerationPlan(model: model, behaviour: request.behaviour)
            let echo = ResponsesEcho(body)
            let responseID = SimulatedIdentifiers.response(request.sequence)
            let itemID = SimulatedIdentifiers.responseItem(request.sequence)
            if streams {
                let dialect = ResponsesDialect(responseID: responseID, itemID: itemID, plan: plan, echo: echo)
                return InferenceStream(dialect: dialect, plan: plan)
            }
            return plan.nonStreamingResponse(
                success: {
                    let now = request.clock.now()
                    let object = completeResponse(
                        responseID: responseID,
                        itemID: itemID,
                        plan: plan,
                        echo: echo,
                        createdAt: now,
                        completedAt: now
                    )
                    return GoResponse.encoderJSON(200, object)
                },
                failure: { OpenAIError.fromHandler(500, $0) }
            )
        } catch {
            return FixedSteps(error.steps)
        }
    }

    /// `openai.ToResponse` with `completed_at` set: the `ResponsesResponse` struct, fields in declaration order.
    static func completeResponse(
        responseID: String,
        itemID: String,
        plan: GenerationPlan,
        echo: ResponsesEcho,
        createdAt: SimulatedInstant,
        completedAt: SimulatedInstant
    ) -> JSONValue {
        let item: JSONValue = [
            "id": .string(itemID), "type": "message", "status": "completed", "role": "assistant",
            "content": [["type": "output_text", "text": .string(plan.fullText), "annotations": [], "logprobs": []]],
        ]
        let usage = plan.usage
        return [
            "id": .string(responseID), "object": "response", "created_at": .int(createdAt.seconds),
            "completed_at": .int(completedAt.seconds), "status": "completed", "incomplete_details": nil,
            "model": .string(plan.model), "previous_response_id": nil, "instructions": .optional(echo.instructions),
            "output": [item], "error": nil, "tools": .array(echo.tools.map(echo.structTool)), "tool_choice": "auto",
            "truncation": .string(echo.truncation), "parallel_tool_calls": true,
            "text": ["format": echo.structTextFormat], "top_p": .float64(echo.topP ?? 1),
            "presence_penalty": 0, "frequency_penalty": 0, "top_logprobs": 0,
            "temperature": .float64(echo.temperature ?? 1), "reasoning": echo.structReasoning,
            "usage": [
                "input_tokens": .int(usage.promptTokens), "output_tokens": .int(usage.completionTokens),
                "total_tokens": .int(usage.totalTokens), "input_tokens_details": ["cached_tokens": 0],
                "output_tokens_details": ["reasoning_tokens": 0],
            ],
            "max_output_tokens": echo.maxOutputTokens, "max_tool_calls": nil, "store": false,
            "background": .bool(echo.background), "service_tier": "default", "metadata": [:],
            "safety_identifier": nil, "prompt_cache_key": nil,
        ]
    }
}

/// The request parameters a Responses answer echoes back.
struct ResponsesEcho {
    var instructions: String?
    var truncation = "disabled"
    var tools: [JSONValue] = []
    var textFormat: JSONValue?
    var reasoningEffort: String?
    var reasoningSummary: String?
    var topP: Double?
    var temperature: Double?
    var maxOutputTokens: JSONValue = .null
    var background = false

    init(_ body: JSONValue) {
        if let text = body[field: "instructions"]?.stringValue, !text.isEmpty { instructions = text }
        if let text = body[field: "truncation"]?.stringValue { truncation = text }
        tools = body[field: "tools"]?.arrayValue ?? []
        if let format = body[field: "text"]?[field: "format"], format != .null { textFormat = format }
        let reasoning = body[field: "reasoning"]
        reasoningEffort = reasoning?[field: "effort"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 }
        reasoningSummary = reasoning?[field: "summary"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 }
        topP = body[field: "top_p"]?.doubleValue
        temperature = body[field: "temperature"]?.doubleValue
        if let limit = body[field: "max_output_tokens"], case .number = limit { maxOutputTokens = limit }
        background = body[field: "background"]?.boolValue ?? false
    }

    // MARK: As the streaming converter writes them (Go maps: keys sorted)

    var mapTools: [JSONValue] {
        tools.map { tool in
            .map([
                "type": .string(tool[field: "type"]?.stringValue ?? ""),
                "name": .string(tool[field: "name"]?.stringValue ?? ""),
                "description": tool[field: "description"]?.stringValue.map(JSONValue.string) ?? .null,
                "strict": tool[field: "strict"]?.boolValue.map(JSONValue.bool) ?? .null,
                "parameters": (tool[field: "parameters"] ?? .null).asGoMap,
            ])
        }
    }

    var mapTextFormat: JSONValue {
        guard textFormat != nil else { return .map(["type": "text"]) }
        return .map(textFormatMembers)
    }

    var mapReasoning: JSONValue {
        guard reasoningEffort != nil || reasoningSummary != nil else { return .null }
        return .map(["effort": .optional(reasoningEffort), "summary": .optional(reasoningSummary)])
    }

    // MARK: As `ToResponse` writes them (Go structs: declaration order)

    func structTool(_ tool: JSONValue) -> JSONValue {
        var object: JSONValue = [
            "type": .string(tool[field: "type"]?.stringValue ?? ""),
            "name": .string(tool[field: "name"]?.stringValue ?? ""),
            "description": tool[field: "description"]?.stringValue.map(JSONValue.string) ?? .null,
            "strict": tool[field: "strict"]?.boolValue.map(JSONValue.bool) ?? .null,
            "parameters": (tool[field: "parameters"] ?? .null).asGoMap,
        ]
        if let nested = tool[field: "tools"]?.arrayValue, !nested.isEmpty {
            object = object.appending([JSONMember(key: "tools", value: .array(nested.map(structTool)))])
        }
        return object
    }

    var structTextFormat: JSONValue {
        guard textFormat != nil else { return ["type": "text"] }
        return .object(textFormatMembers)
    }

    /// `ResponsesTextFormat`'s fields: `type`, then `name`, `schema` and `strict` when set.
    private var textFormatMembers: [JSONMember] {
        guard let format = textFormat else { return [] }
        var members = [JSONMember(key: "type", value: .string(format[field: "type"]?.stringValue ?? ""))]
        if let name = format[field: "name"]?.stringValue, !name.isEmpty {
            members.append(JSONMember(key: "name", value: .string(name)))
        }
        if let schema = format[field: "schema"], schema != .null {
            members.append(JSONMember(key: "schema", value: schema))
        }
        if let strict = format[field: "strict"]?.boolValue {
            members.append(JSONMember(key: "strict", value: .bool(strict)))
        }
        return members
    }

    var structReasoning: JSONValue {
        guard reasoningEffort != nil || reasoningSummary != nil else { return .null }
        var members: [JSONMember] = []
        if let reasoningEffort { members.append(JSONMember(key: "effort", value: .string(reasoningEffort))) }
        if let reasoningSummary { members.append(JSONMember(key: "summary", value: .string(reasoningSummary))) }
        return .object(members)
    }
}

extension JSONValue {
    /// The value as Go re-encodes a decoded `map[string]any`: object keys sorted at every level, numbers as
    /// `float64`.
    var asGoMap: JSONValue {
        switch self {
        case .object(let members): .map(members.map { JSONMember(key: $0.key, value: $0.value.asGoMap) })
        case .array(let elements): .array(elements.map(\.asGoMap))
        case .number(let literal): Double(literal).map(JSONValue.float64) ?? self
        default: self
        }
    }
}

/// The Responses SSE stream (`ResponsesStreamConverter`): every event is `event: <type>` plus a Go map with
/// `type` and a running `sequence_number`, flushed on its own.
struct ResponsesDialect: InferenceDialect {
    let responseID: String
    let itemID: String
    let plan: GenerationPlan
    let echo: ResponsesEcho
    private var sequenceNumber = 0
    private var firstWrite = true
    private var contentStarted = false
    private var accumulatedText = ""

    init(responseID: String, itemID: String, plan: GenerationPlan, echo: ResponsesEcho) {
        self.responseID = responseID
        self.itemID = itemID
        self.plan = plan
        self.echo = echo
    }

    var streamHeaders: [(String, String)] {
        OpenAIResponses.streamingHeaders + [("Content-Type", "text/event-stream")]
    }

    var flushesEachEvent: Bool { true }

    mutating func events(for event: GenerationEvent, at time: SimulatedInstant) -> [[UInt8]] {
        var events: [[UInt8]] = []
        if firstWrite {
            firstWrite = false
            for type in ["response.created", "response.in_progress"] {
                events.append(
                    self.event(type, ["response": responseObject("in_progress", output: [], usage: .null, at: time)])
                )
            }
        }
        switch event {
        case .token(_, let text):
            if !contentStarted {
                contentStarted = true
                events.append(
                    self.event(
                        "response.output_item.added",
                        [
                            "output_index": 0,
                            "item": .map([
                                "id": .string(itemID), "type": "message", "status": "in_progress",
                                "role": "assistant", "content": [],
                            ]),
                        ]
                    )
                )
                events.append(
                    self.event(
                        "response.content_part.added",
                        [
                            "item_id": .string(itemID), "output_index": 0, "content_index": 0,
                            "part": outputText(""),
                        ]
                    )
                )
            }
            accumulatedText += text
            events.append(
                self.event(
                    "response.output_text.delta",
                    [
                        "item_id": .string(itemID), "output_index": 0, "content_index": 0, "delta": .string(text),
                        "logprobs": [],
                    ]
                )
            )
        case .done:
            var output: [JSONValue] = []
            if contentStarted {
                let completedItem = messageItem()
                events.append(
                    self.event(
                        "response.output_text.done",
                        [
                            "item_id": .string(itemID), "output_index": 0, "content_index": 0,
                            "text": .string(accumulatedText), "logprobs": [],
                        ]
                    )
                )
                events.append(
                    self.event(
                        "response.content_part.done",
                        [
                            "item_id": .string(itemID), "output_index": 0, "content_index": 0,
                            "part": outputText(accumulatedText),
                        ]
                    )
                )
                events.append(self.event("response.output_item.done", ["output_index": 0, "item": completedItem]))
                output.append(completedItem)
            }
            let usage = plan.usage
            let usageMap: JSONValue = .map([
                "input_tokens": .int(usage.promptTokens), "output_tokens": .int(usage.completionTokens),
                "total_tokens": .int(usage.totalTokens), "input_tokens_details": .map(["cached_tokens": 0]),
                "output_tokens_details": .map(["reasoning_tokens": 0]),
            ])
            var response = responseObject("completed", output: output, usage: usageMap, at: time)
            response = response.replacing("completed_at", with: .int(time.seconds))
            events.append(self.event("response.completed", ["response": response]))
        case .failure:
            // Ollama's ResponsesWriter drops the `{"error":…}` object: the stream ends without
            // `response.completed` (and without `response.failed`).
            break
        }
        return events
    }

    private mutating func event(_ type: String, _ members: KeyValuePairs<String, JSONValue>) -> [UInt8] {
        var all = members.map { JSONMember(key: $0.key, value: $0.value) }
        all.append(JSONMember(key: "type", value: .string(type)))
        all.append(JSONMember(key: "sequence_number", value: .int(sequenceNumber)))
        sequenceNumber += 1
        return sseEvent(type, .map(all))
    }

    private func outputText(_ text: String) -> JSONValue {
        .map(["type": "output_text", "text": .string(text), "annotations": [], "logprobs": []])
    }

    private func messageItem() -> JSONValue {
        .map([
            "id": .string(itemID), "type": "message", "status": "completed", "role": "assistant",
            "content": [outputText(accumulatedText)],
        ])
    }

    /// `buildResponseObject`.
    private func responseObject(_ status: String, output: [JSONValue], usage: JSONValue, at time: SimulatedInstant)
        -> JSONValue
    {
        .map([
            "id": .string(responseID), "object": "response", "created_at": .int(time.seconds), "completed_at": nil,
            "status": .string(status), "incomplete_details": nil, "model": .string(plan.model),
            "previous_response_id": nil, "instructions": .optional(echo.instructions), "output": .array(output),
            "error": nil, "tools": .array(echo.mapTools), "tool_choice": "auto", "truncation": .string(echo.truncation),
            "parallel_tool_calls": true, "text": .map(["format": echo.mapTextFormat]),
            "top_p": .float64(echo.topP ?? 1), "presence_penalty": 0, "frequency_penalty": 0, "top_logprobs": 0,
            "temperature": .float64(echo.temperature ?? 1), "reasoning": echo.mapReasoning, "usage": usage,
            "max_output_tokens": echo.maxOutputTokens, "max_tool_calls": nil, "store": false,
            "background": .bool(echo.background), "service_tier": "default", "metadata": .map([]),
            "safety_identifier": nil, "prompt_cache_key": nil,
        ])
    }
}

extension JSONValue {
    /// This object with the value of `key` replaced.
    func replacing(_ key: String, with value: JSONValue) -> JSONValue {
        guard case .object(let members) = self else { return self }
        return .object(members.map { $0.key == key ? JSONMember(key: key, value: value) : $0 })
    }
}
