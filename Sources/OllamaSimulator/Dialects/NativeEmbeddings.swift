/// `/api/embed` (batch, with metrics) and the legacy `/api/embeddings`.
enum NativeEmbeddings {
    static let embedSchema = GoStructSchema(
        "api.EmbedRequest",
        [
            ("model", .string), ("input", .any), ("keep_alive", .any), ("truncate", .bool), ("dimensions", .int),
            ("options", .map(name: "map[string]interface {}")),
        ]
    )

    static let embeddingsSchema = GoStructSchema(
        "api.EmbeddingRequest",
        [
            ("model", .string), ("prompt", .string), ("keep_alive", .any),
            ("options", .map(name: "map[string]interface {}")),
        ]
    )

    /// Ollama's scheduler error for a model it has no manifest for (Go `%q` quoting).
    static func notFoundTryPulling(_ model: String) -> String {
        "model \(goQuoted(model)) not found, try pulling it first"
    }

    static func embed(_ request: SimulatorRequest) -> any ResponseProducer {
        do {
            let body = try request.decodeBody(embedSchema, refuse: NativeGeneration.decodeError)
            let model = body[field: "model"]?.stringValue ?? ""
            guard !model.isEmpty else { return FixedSteps(GoResponse.nativeError(404, "model '' not found")) }
            guard let inputs = embedInputs(body[field: "input"]) else {
                return FixedSteps(GoResponse.nativeError(400, "invalid input type"))
            }
            guard SimulatedModel.exists(model) else {
                return FixedSteps(GoResponse.nativeError(404, notFoundTryPulling(model)))
            }
            if let message = request.behaviour.forcedStatusMessage(model: model) {
                return FixedSteps(GoResponse.nativeError(request.behaviour.forcedStatus!, message))
            }
            request.state.noteModelLoaded(model)
            if inputs.isEmpty {
                return FixedSteps(GoResponse.ginJSON(200, ["model": .string(model), "embeddings": []]))
            }
            let dimensions = embeddingLength(body[field: "dimensions"]?.intValue)
            let usage = request.behaviour.usage
            let metrics: [(String, Int64)] = [
                ("total_duration", usage.embeddingTotalDurationNanoseconds),
                ("load_duration", usage.loadDurationNanoseconds),
                ("prompt_eval_count", Int64(usage.embeddingPromptTokens(inputs: inputs.count))),
            ]
            let object: JSONValue = [
                "model": .string(model),
                "embeddings": .array(inputs.map { _ in vector(dimensions) }),
            ]
            let members = metrics.filter { $0.1 != 0 }.map { JSONMember(key: $0.0, value: .int($0.1)) }
            return FixedSteps(GoResponse.ginJSON(200, object.appending(members)))
        } catch {
            return FixedSteps(error.steps)
        }
    }

    static func embeddings(_ request: SimulatorRequest) -> any ResponseProducer {
        do {
            let body = try request.decodeBody(embeddingsSchema, refuse: NativeGeneration.decodeError)
            let model = body[field: "model"]?.stringValue ?? ""
            guard !model.isEmpty else { return FixedSteps(GoResponse.nativeError(400, "model is required")) }
            guard SimulatedModel.exists(model) else {
                return FixedSteps(GoResponse.nativeError(404, notFoundTryPulling(model)))
            }
            if let message = request.behaviour.forcedStatusMessage(model: model) {
                return FixedSteps(GoResponse.nativeError(request.behaviour.forcedStatus!, message))
            }
            request.state.noteModelLoaded(model)
            if (body[field: "prompt"]?.stringValue ?? "").isEmpty {
                return FixedSteps(GoResponse.ginJSON(200, ["embedding": []]))
            }
            // The legacy endpoint widens the float32 values to float64, digits and all.
            let values = (0..<SimulatedText.embeddingLength).map { index -> JSONValue in
                .float64(Double(Float(SimulatedText.embeddingComponent(index))!))
            }
            return FixedSteps(GoResponse.ginJSON(200, ["embedding": .array(values)]))
        } catch {
            return FixedSteps(error.steps)
        }
    }

    /// The inputs of `/api/embed`: a string (empty means none) or an array of strings; `nil` for anything else.
    static func embedInputs(_ value: JSONValue?) -> [String]? {
        switch value {
        case nil, .null?: return []
        case .string(let text)?: return text.isEmpty ? [] : [text]
        case .array(let elements)?:
            var inputs: [String] = []
            for element in elements {
                guard let text = element.stringValue else { return nil }
                inputs.append(text)
            }
            return inputs
        default: return nil
        }
    }

    static func embeddingLength(_ requested: Int?) -> Int {
        guard let requested, (1...8192).contains(requested) else { return SimulatedText.embeddingLength }
        return requested
    }

    /// One embedding vector of float32 values.
    static func vector(_ length: Int) -> JSONValue {
        .array((0..<length).map { .number(SimulatedText.embeddingComponent($0)) })
    }

    /// Go's `%q` of a string (the common cases: quotes, backslashes, control characters).
    static func goQuoted(_ text: String) -> String {
        var quoted = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": quoted += "\\\""
            case "\\": quoted += "\\\\"
            case "\n": quoted += "\\n"
            case "\r": quoted += "\\r"
            case "\t": quoted += "\\t"
            case let s where s.value < 0x20 || s.value == 0x7F:
                let hex = String(s.value, radix: 16)
                quoted += "\\x" + (hex.count < 2 ? "0" + hex : hex)
            default: quoted.unicodeScalars.append(scalar)
            }
        }
        return quoted + "\""
    }
}
