/// `/api/generate` and `/api/chat`: NDJSON streaming by default, one `c.JSON` object with `"stream": false`.
enum NativeGeneration {
    static let generateSchema = GoStructSchema(
        "api.GenerateRequest",
        [
            ("model", .string), ("prompt", .string), ("suffix", .string), ("system", .string),
            ("template", .string), ("context", .slice(name: "[]int", element: .int)), ("stream", .bool),
            ("raw", .bool), ("format", .any), ("keep_alive", .any), ("images", .any),
            ("options", .map(name: "map[string]interface {}")), ("think", .any), ("truncate", .bool),
            ("shift", .bool), ("logprobs", .bool), ("top_logprobs", .int),
        ]
    )

    static let chatSchema = GoStructSchema(
        "api.ChatRequest",
        [
            ("model", .string), ("messages", .slice(name: "[]api.Message", element: .any)), ("stream", .bool),
            ("format", .any), ("keep_alive", .any), ("tools", .any),
            ("options", .map(name: "map[string]interface {}")), ("think", .any), ("truncate", .bool),
            ("shift", .bool), ("logprobs", .bool), ("top_logprobs", .int),
        ]
    )

    /// The native handlers' answer to an undecodable body.
    static func decodeError(_ error: GoJSONDecodingError) -> [ResponseStep] {
        GoResponse.nativeError(400, error == .empty ? "missing request body" : error.goMessage)
    }

    static func generate(_ request: SimulatorRequest) -> any ResponseProducer {
        do {
            let body = try request.decodeBody(generateSchema, refuse: decodeError)
            let model = body[field: "model"]?.stringValue ?? ""
            guard !model.isEmpty, SimulatedModel.exists(model) else {
                return FixedSteps(GoResponse.nativeError(404, "model '\(model)' not found"))
            }
            let raw = body[field: "raw"]?.boolValue ?? false
            let hasTemplateSystemOrContext =
                !(body[field: "template"]?.stringValue ?? "").isEmpty
                || !(body[field: "system"]?.stringValue ?? "").isEmpty
                || !(body[field: "context"]?.arrayValue ?? []).isEmpty
            if raw && hasTemplateSystemOrContext {
                return FixedSteps(
                    GoResponse.nativeError(400, "raw mode does not support template, system, or context")
                )
            }
            if let message = request.behaviour.forcedStatusMessage(model: model) {
                return FixedSteps(GoResponse.nativeError(request.behaviour.forcedStatus!, message))
            }
            request.state.noteModelLoaded(model)

            let prompt = body[field: "prompt"]?.stringValue ?? ""
            if prompt.isEmpty {
                let reason = isZeroKeepAlive(body[field: "keep_alive"]) ? "unload" : "load"
                if reason == "unload" { request.state.noteModelUnloaded(model) }
                let object: JSONValue = [
                    "model": .string(model), "created_at": .string(request.clock.now().rfc3339Nano),
                    "response": "", "done": true, "done_reason": .string(reason),
                ]
                return FixedSteps(GoResponse.ginJSON(200, object))
            }

            let plan = GenerationPlan(model: model, behaviour: request.behaviour)
            let dialect = NativeDialect(kind: .generate(includesContext: !raw), plan: plan)
            if body[field: "stream"]?.boolValue ?? true {
                return InferenceStream(dialect: dialect, plan: plan)
            }
            return plan.nonStreamingResponse(
                success: { GoResponse.ginJSON(200, dialect.completeObject(at: request.clock.now())) },
                failure: { GoResponse.nativeError(500, $0) }
            )
        } catch {
            return FixedSteps(error.steps)
        }
    }

    static func chat(_ request: SimulatorRequest) -> any ResponseProducer {
        do {
            let body = try request.decodeBody(chatSchema, refuse: decodeError)
            let model = body[field: "model"]?.stringValue ?? ""
            guard !model.isEmpty else { return FixedSteps(GoResponse.nativeError(400, "model is required")) }
            guard SimulatedModel.exists(model) else {
                return FixedSteps(GoResponse.nativeError(404, "model '\(model)' not found"))
            }
            if let message = request.behaviour.forcedStatusMessage(model: model) {
                return FixedSteps(GoResponse.nativeError(request.behaviour.forcedStatus!, message))
            }
            request.state.noteModelLoaded(model)

            if (body[field: "messages"]?.arrayValue ?? []).isEmpty {
                let reason = isZeroKeepAlive(body[field: "keep_alive"]) ? "unload" : "load"
                if reason == "unload" { request.state.noteModelUnloaded(model) }
                let object: JSONValue = [
                    "model": .string(model), "created_at": .string(request.clock.now().rfc3339Nano),
                    "message": ["role": "assistant", "content": ""], "done": true, "done_reason": .string(reason),
                ]
                return FixedSteps(GoResponse.ginJSON(200, object))
            }

            let plan = GenerationPlan(model: model, behaviour: request.behaviour)
            let dialect = NativeDialect(kind: .chat, plan: plan)
            if body[field: "stream"]?.boolValue ?? true {
                return InferenceStream(dialect: dialect, plan: plan)
            }
            return plan.nonStreamingResponse(
                success: { GoResponse.ginJSON(200, dialect.completeObject(at: request.clock.now())) },
                failure: { GoResponse.nativeError(500, $0) }
            )
        } catch {
            return FixedSteps(error.steps)
        }
    }

    /// `keep_alive` of zero (`0`, `"0"`, `"0s"`, …) asks to unload the model.
    static func isZeroKeepAlive(_ value: JSONValue?) -> Bool {
        switch value {
        case .number(let literal)?: return Double(literal) == 0
        case .string(let text)?:
            let number = text.prefix { "+-0123456789.".contains($0) }
            return !number.isEmpty && Double(number) == 0
        default: return false
        }
    }
}

/// The native NDJSON stream (`GenerateResponse` / `ChatResponse` lines).
struct NativeDialect: InferenceDialect {
    enum Kind {
        case generate(includesContext: Bool)
        case chat
    }

    let kind: Kind
    let plan: GenerationPlan

    var streamHeaders: [(String, String)] { [("Content-Type", "application/x-ndjson")] }

    mutating func events(for event: GenerationEvent, at time: SimulatedInstant) -> [[UInt8]] {
        switch event {
        case .token(_, let text):
            return [ndjsonLine(object(text: text, done: false, at: time))]
        case .done:
            return [ndjsonLine(finalObject(text: "", at: time))]
        case .failure(let message):
            return [ndjsonLine(.map(["error": .string(message)]))]
        }
    }

    /// The single object of a `"stream": false` answer.
    func completeObject(at time: SimulatedInstant) -> JSONValue {
        finalObject(text: plan.fullText, at: time)
    }

    private func object(text: String, done: Bool, at time: SimulatedInstant) -> JSONValue {
        switch kind {
        case .generate:
            [
                "model": .string(plan.model), "created_at": .string(time.rfc3339Nano), "response": .string(text),
                "done": .bool(done),
            ]
        case .chat:
            [
                "model": .string(plan.model), "created_at": .string(time.rfc3339Nano),
                "message": ["role": "assistant", "content": .string(text)], "done": .bool(done),
            ]
        }
    }

    private func finalObject(text: String, at time: SimulatedInstant) -> JSONValue {
        var members = [JSONMember(key: "done_reason", value: "stop")]
        if case .generate(includesContext: true) = kind {
            let count = plan.behaviour.contextSize ?? (plan.usage.promptTokens + plan.usage.completionTokens)
            if count > 0 { members.append(JSONMember(key: "context", value: .raw(Self.contextArray(count)))) }
        }
        return object(text: text, done: true, at: time).appending(members + nativeMetricsMembers(plan.usage))
    }

    /// `[128000,128001,…]` built directly: the array can hold hundreds of thousands of ints.
    static func contextArray(_ count: Int) -> [UInt8] {
        var bytes: [UInt8] = [UInt8(ascii: "[")]
        bytes.reserveCapacity(count * 7 + 2)
        for index in 0..<count {
            if index > 0 { bytes.append(UInt8(ascii: ",")) }
            bytes.append(contentsOf: String(SimulatedText.contextToken(index)).utf8)
        }
        bytes.append(UInt8(ascii: "]"))
        return bytes
    }
}
