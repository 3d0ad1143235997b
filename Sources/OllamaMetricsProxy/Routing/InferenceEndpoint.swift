/// The inference endpoints the proxy measures. Every other path is forwarded without inspection.
///
/// The raw value is the request path and doubles as the `endpoint` label, so the label can only take
/// these values.
public enum InferenceEndpoint: String, Sendable, CaseIterable {
    case generate = "/api/generate"
    case chat = "/api/chat"
    case embed = "/api/embed"
    case embeddings = "/api/embeddings"
    case chatCompletions = "/v1/chat/completions"
    case completions = "/v1/completions"
    case openAIEmbeddings = "/v1/embeddings"
    case responses = "/v1/responses"
    case messages = "/v1/messages"

    /// The API dialect whose framing and usage fields the endpoint's responses use.
    public enum Dialect: Sendable {
        /// Ollama's own API: NDJSON streams, usage and nanosecond timings in the final object.
        case ollamaNative
        /// OpenAI-compatible API: `data: {...}` server-sent events, usage in a `usage` object.
        case openAI
        /// Anthropic-compatible API: `event:`/`data:` server-sent events, usage in `message_delta`.
        case anthropic
    }

    /// Recognises the path of a POST request as the request line has it (without its query string), the way
    /// Ollama routes it: percent-decoded, then compared exactly (`RequestPath`). Nil for an invalid escape.
    /// Compares bytes in place: no allocation unless the path has a `%`.
    public init?(path: some StringProtocol) {
        guard let decoded = RequestPath.decoded(path.utf8) else { return nil }
        for endpoint in Self.allCases where decoded.elementsEqual(endpoint.rawValue.utf8) {
            self = endpoint
            return
        }
        return nil
    }

    public var dialect: Dialect {
        switch self {
        case .generate, .chat, .embed, .embeddings: .ollamaNative
        case .chatCompletions, .completions, .openAIEmbeddings, .responses: .openAI
        case .messages: .anthropic
        }
    }

    /// Whether a request without a `stream` field streams: Ollama's native API streams by default,
    /// the compatibility APIs do not. Embedding endpoints never stream.
    public var streamsByDefault: Bool {
        switch self {
        case .generate, .chat: true
        case .embed, .embeddings, .openAIEmbeddings: false
        case .chatCompletions, .completions, .responses, .messages: false
        }
    }

    /// Whether the proxy must ask Ollama for usage (`stream_options.include_usage`) on streaming requests,
    /// because the OpenAI-compatible streams carry none otherwise.
    public var needsIncludeUsageOnStreams: Bool {
        self == .chatCompletions || self == .completions
    }
}
