/// The OpenAI-compatible error object (`openai.NewError`).
enum OpenAIError {
    static func body(status: Int, message: String) -> JSONValue {
        let type =
            switch status {
            case 400: "invalid_request_error"
            case 404: "not_found_error"
            default: "api_error"
            }
        return ["error": ["message": .string(message), "type": .string(type), "param": nil, "code": nil]]
    }

    /// A validation error of the compat middleware (`c.AbortWithStatusJSON`): gin's content type, no newline.
    static func fromMiddleware(_ status: Int, _ message: String) -> [ResponseStep] {
        GoResponse.ginJSON(status, body(status: status, message: message))
    }

    /// An error of the native handler rewritten by the compat writer (`writeError`): `application/json`, newline.
    static func fromHandler(_ status: Int, _ message: String, extraHeaders: [(String, String)] = []) -> [ResponseStep] {
        GoResponse.encoderJSON(status, body(status: status, message: message), extraHeaders: extraHeaders)
    }
}

/// The Anthropic-compatible error object (`anthropic.NewError`).
enum AnthropicError {
    static func type(for status: Int) -> String {
        switch status {
        case 400: "invalid_request_error"
        case 401: "authentication_error"
        case 403: "permission_error"
        case 404: "not_found_error"
        case 429: "rate_limit_error"
        case 503, 529: "overloaded_error"
        default: "api_error"
        }
    }

    static func body(status: Int, message: String, requestID: String) -> JSONValue {
        [
            "type": "error",
            "error": ["type": .string(type(for: status)), "message": .string(message)],
            "request_id": .string(requestID),
        ]
    }

    static func fromMiddleware(_ status: Int, _ message: String, requestID: String) -> [ResponseStep] {
        GoResponse.ginJSON(status, body(status: status, message: message, requestID: requestID))
    }

    static func fromHandler(
        _ status: Int,
        _ message: String,
        requestID: String,
        extraHeaders: [(String, String)] = []
    ) -> [ResponseStep] {
        GoResponse.encoderJSON(
            status,
            body(status: status, message: message, requestID: requestID),
            extraHeaders: extraHeaders
        )
    }
}

/// `data: <json>\n\n`.
func sseData(_ value: JSONValue) -> [UInt8] {
    Array("data: ".utf8) + GoJSON.encode(value) + Array("\n\n".utf8)
}

/// `event: <type>\ndata: <json>\n\n`.
func sseEvent(_ type: String, _ value: JSONValue) -> [UInt8] {
    Array("event: \(type)\ndata: ".utf8) + GoJSON.encode(value) + Array("\n\n".utf8)
}

/// An NDJSON line: compact JSON and `\n`.
func ndjsonLine(_ value: JSONValue) -> [UInt8] {
    GoJSON.encode(value) + [UInt8(ascii: "\n")]
}

/// Why a request was refused before any generation, as the dialect's error response.
struct RequestRefusal: Error {
    let steps: [ResponseStep]
}

extension SimulatorRequest {
    /// Decodes the body into `schema`, refusing like Ollama: empty body, syntax and type errors.
    func decodeBody(
        _ schema: GoStructSchema,
        refuse: (GoJSONDecodingError) -> [ResponseStep]
    ) throws(RequestRefusal) -> JSONValue {
        do {
            return try decodeGoRequest(body, as: schema)
        } catch {
            throw RequestRefusal(steps: refuse(error))
        }
    }
}
