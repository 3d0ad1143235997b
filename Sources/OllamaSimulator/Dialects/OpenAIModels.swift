/// `/v1/embeddings`, `/v1/models` and `/v1/models/:model`.
enum OpenAIModels {
    static let embedSchema = GoStructSchema(
        "openai.EmbedRequest",
        [("input", .any), ("model", .string), ("dimensions", .int), ("encoding_format", .string)]
    )

    static func embeddings(_ request: SimulatorRequest) -> any ResponseProducer {
        do {
            let body = try request.decodeBody(embedSchema) { OpenAIError.fromMiddleware(400, $0.goMessage) }
            let format = body[field: "encoding_format"]?.stringValue ?? ""
            guard format.isEmpty || format.lowercased() == "float" || format.lowercased() == "base64" else {
                return FixedSteps(
                    OpenAIError.fromMiddleware(
                        400,
                        "Invalid value for 'encoding_format' = \(format). Supported values: ['float', 'base64']."
                    )
                )
            }
            var input = body[field: "input"] ?? .null
            if input == .string("") { input = [""] }
            if input == .null || input == .array([]) {
                return FixedSteps(OpenAIError.fromMiddleware(400, "invalid input"))
            }

            let model = body[field: "model"]?.stringValue ?? ""
            guard !model.isEmpty else { return FixedSteps(OpenAIError.fromHandler(404, "model '' not found")) }
            guard let inputs = NativeEmbeddings.embedInputs(input) else {
                return FixedSteps(OpenAIError.fromHandler(400, "invalid input type"))
            }
            guard SimulatedModel.exists(model) else {
                return FixedSteps(OpenAIError.fromHandler(404, NativeEmbeddings.notFoundTryPulling(model)))
            }
            if let message = request.behaviour.forcedStatusMessage(model: model) {
                return FixedSteps(OpenAIError.fromHandler(request.behaviour.forcedStatus!, message))
            }
            request.state.noteModelLoaded(model)

            let length = NativeEmbeddings.embeddingLength(body[field: "dimensions"]?.intValue)
            let base64 = format.lowercased() == "base64"
            let data = inputs.indices.map { index -> JSONValue in
                [
                    "object": "embedding",
                    "embedding": base64 ? .string(base64Vector(length)) : NativeEmbeddings.vector(length),
                    "index": .int(index),
                ]
            }
            let promptTokens = request.behaviour.usage.embeddingPromptTokens(inputs: inputs.count)
            let object: JSONValue = [
                "object": "list", "data": .array(data), "model": .string(model),
                "usage": ["prompt_tokens": .int(promptTokens), "total_tokens": .int(promptTokens)],
            ]
            return FixedSteps(GoResponse.encoderJSON(200, object))
        } catch {
            return FixedSteps(error.steps)
        }
    }

    static func list(_ request: SimulatorRequest) -> any ResponseProducer {
        if let message = request.behaviour.forcedStatusMessage(model: "") {
            return FixedSteps(OpenAIError.fromHandler(request.behaviour.forcedStatus!, message))
        }
        let models = request.options.models
        let data: JSONValue = models.isEmpty ? .null : .array(models.map { modelObject($0.name) })
        return FixedSteps(GoResponse.encoderJSON(200, ["object": "list", "data": data]))
    }

    static func retrieve(_ request: SimulatorRequest) -> any ResponseProducer {
        let model = request.parameters["model"] ?? ""
        guard SimulatedModel.exists(model) else {
            return FixedSteps(OpenAIError.fromHandler(404, "model '\(model)' not found"))
        }
        if let message = request.behaviour.forcedStatusMessage(model: model) {
            return FixedSteps(OpenAIError.fromHandler(request.behaviour.forcedStatus!, message))
        }
        return FixedSteps(GoResponse.encoderJSON(200, modelObject(model)))
    }

    static func modelObject(_ name: String) -> JSONValue {
        [
            "id": .string(name), "object": "model", "created": .int(SimulatedModel.modifiedAt.seconds),
            "owned_by": .string(namespace(of: name)),
        ]
    }

    /// `model.ParseName(name).Namespace`: `library` unless the name has a namespace part.
    static func namespace(of name: String) -> String {
        let parts = name.split(separator: ":").first.map { $0.split(separator: "/") } ?? []
        return parts.count >= 2 ? String(parts[parts.count - 2]) : "library"
    }

    /// An embedding as base64 of its little-endian float32 values.
    static func base64Vector(_ length: Int) -> String {
        var bytes: [UInt8] = []
        for index in 0..<length {
            let bits = Float(SimulatedText.embeddingComponent(index))!.bitPattern
            bytes += [UInt8(bits & 0xFF), UInt8(bits >> 8 & 0xFF), UInt8(bits >> 16 & 0xFF), UInt8(bits >> 24)]
        }
        return base64Encode(bytes)
    }

    static func base64Encode(_ bytes: [UInt8]) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        var out: [UInt8] = []
        var index = 0
        while index < bytes.count {
            let b0 = bytes[index]
            let b1 = index + 1 < bytes.count ? bytes[index + 1] : 0
            let b2 = index + 2 < bytes.count ? bytes[index + 2] : 0
            out.append(alphabet[Int(b0 >> 2)])
            out.append(alphabet[Int((b0 & 0x03) << 4 | b1 >> 4)])
            out.append(index + 1 < bytes.count ? alphabet[Int((b1 & 0x0F) << 2 | b2 >> 6)] : UInt8(ascii: "="))
            out.append(index + 2 < bytes.count ? alphabet[Int(b2 & 0x3F)] : UInt8(ascii: "="))
            index += 3
        }
        return String(decoding: out, as: UTF8.self)
    }
}
