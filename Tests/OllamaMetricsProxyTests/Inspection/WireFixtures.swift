@testable import OllamaMetricsProxy

/// Response bodies exactly as Ollama writes them (see `shared/ollama-wire-formats.md`, checked against
/// Ollama's `server/routes.go`, `middleware/openai.go`, `openai/responses.go`, `anthropic/anthropic.go`):
/// compact Go JSON, struct fields in declaration order, map keys sorted, zero metrics omitted.
enum WireFixtures {
    static let ndjson = "application/x-ndjson"
    /// gin's `c.JSON`: no trailing newline.
    static let ginJSON = "application/json; charset=utf-8"
    /// `json.NewEncoder(w).Encode`: trailing newline.
    static let encoderJSON = "application/json"
    static let eventStream = "text/event-stream"

    // MARK: Native /api/generate and /api/chat

    static let generateFinalLine =
        #"{"model":"llama3.2","created_at":"2025-06-01T12:00:00.09Z","response":"","done":true,"done_reason":"stop","context":[128006,882,128007,271,791,13180,374,6437,128009],"total_duration":4935886791,"load_duration":534986708,"prompt_eval_count":26,"prompt_eval_duration":107345000,"eval_count":237,"eval_duration":4289432000}"#

    static let generateUsage = Usage(
        model: "llama3.2", promptTokens: 26, completionTokens: 237, totalDurationNanos: 4_935_886_791,
        loadDurationNanos: 534_986_708, promptEvalDurationNanos: 107_345_000, evalDurationNanos: 4_289_432_000
    )

    static let generateStream = ResponseFixture(
        "generate stream", .generate, contentType: ndjson, streaming: true,
        [
            .init(#"{"model":"llama3.2","created_at":"2025-06-01T12:00:00.02Z","response":"The","done":false}"# + "\n"),
            .init(#"{"model":"llama3.2","created_at":"2025-06-01T12:00:00.05Z","response":" sky","done":false}"# + "\n"),
            .init(#"{"model":"llama3.2","created_at":"2025-06-01T12:00:00.07Z","response":" is \"blue\" {\"done\":true}","done":false}"# + "\n"),
            .init(generateFinalLine + "\n"),
        ],
        usage: generateUsage
    )

    static let chatStream = ResponseFixture(
        "chat stream", .chat, contentType: ndjson, streaming: true,
        [
            .init(#"{"model":"llama3.2","created_at":"2025-06-01T12:00:00.02Z","message":{"role":"assistant","content":"Hel"},"done":false}"# + "\n"),
            .init(#"{"model":"llama3.2","created_at":"2025-06-01T12:00:00.05Z","message":{"role":"assistant","content":"lo"},"done":false}"# + "\n"),
            .init(#"{"model":"llama3.2","created_at":"2025-06-01T12:00:00.09Z","message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","total_duration":5589157167,"load_duration":3013701500,"prompt_eval_count":26,"prompt_eval_duration":1139568000,"eval_count":282,"eval_duration":1435282000}"# + "\n"),
        ],
        usage: Usage(
            model: "llama3.2", promptTokens: 26, completionTokens: 282, totalDurationNanos: 5_589_157_167,
            loadDurationNanos: 3_013_701_500, promptEvalDurationNanos: 1_139_568_000, evalDurationNanos: 1_435_282_000
        )
    )

    /// `stream:false`: one object from `c.JSON`, no trailing newline.
    static let chatDocument = ResponseFixture(
        "chat non-streaming", .chat, contentType: ginJSON, streaming: false,
        [
            .init(#"{"model":"llama3.2","created_at":"2025-06-01T12:00:01Z","message":{"role":"assistant","content":"Hello! How can I help?"},"done":true,"done_reason":"stop","total_duration":5589157167,"load_duration":3013701500,"prompt_eval_count":26,"prompt_eval_duration":1139568000,"eval_count":8,"eval_duration":1435282000}"#),
        ],
        usage: Usage(
            model: "llama3.2", promptTokens: 26, completionTokens: 8, totalDurationNanos: 5_589_157_167,
            loadDurationNanos: 3_013_701_500, promptEvalDurationNanos: 1_139_568_000, evalDurationNanos: 1_435_282_000
        )
    )

    static let generateDocument = ResponseFixture(
        "generate non-streaming", .generate, contentType: ginJSON, streaming: false,
        [.init(generateFinalLine)],
        usage: generateUsage
    )

    /// Everything cached and the model already loaded: `omitempty` drops the zero fields.
    static let chatOmittedZeroFields = ResponseFixture(
        "chat final line with omitted zero fields", .chat, contentType: ndjson, streaming: true,
        [
            .init(#"{"model":"llama3.2","created_at":"2025-06-01T12:00:00.02Z","message":{"role":"assistant","content":"Hi"},"done":false}"# + "\n"),
            .init(#"{"model":"llama3.2","created_at":"2025-06-01T12:00:00.03Z","message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","total_duration":81234567,"eval_count":2,"eval_duration":41234567}"# + "\n"),
        ],
        usage: Usage(model: "llama3.2", completionTokens: 2, totalDurationNanos: 81_234_567, evalDurationNanos: 41_234_567)
    )

    /// Empty prompt: a load request, answered with `c.JSON` and no metrics.
    static let generateLoad = ResponseFixture(
        "generate load reply", .generate, contentType: ginJSON, streaming: true,
        [.init(#"{"model":"llama3.2","created_at":"2025-06-01T12:00:00Z","response":"","done":true,"done_reason":"load"}"#)],
        usage: Usage(model: "llama3.2")
    )

    static let chatUnload = ResponseFixture(
        "chat unload reply", .chat, contentType: ginJSON, streaming: true,
        [.init(#"{"model":"llama3.2","created_at":"2025-06-01T12:00:00Z","message":{"role":"assistant","content":""},"done":true,"done_reason":"unload"}"#)],
        usage: Usage(model: "llama3.2")
    )

    /// An error after output started: an extra `{"error":…}` line, and no `done:true` line.
    static let chatMidStreamError = ResponseFixture(
        "chat error line mid-stream", .chat, contentType: ndjson, streaming: true,
        [
            .init(#"{"model":"llama3.2","created_at":"2025-06-01T12:00:00.02Z","message":{"role":"assistant","content":"Hel"},"done":false}"# + "\n"),
            .init(#"{"error":"an error was encountered while running the model: unexpected EOF"}"# + "\n"),
        ],
        usage: nil, error: "an error was encountered while running the model: unexpected EOF"
    )

    static let generateTruncated = ResponseFixture(
        "generate stream cut inside the final line", .generate, contentType: ndjson, streaming: true,
        [
            .init(#"{"model":"llama3.2","created_at":"2025-06-01T12:00:00.02Z","response":"The","done":false}"# + "\n"),
            .init(String(generateFinalLine.prefix(generateFinalLine.count - 20))),
        ],
        usage: nil
    )

    static let generateWithGarbageLines = ResponseFixture(
        "generate stream with garbage lines", .generate, contentType: ndjson, streaming: true,
        [
            "garbage\n",
            .init(#"{"model":"llama3.2","created_at":"2025-06-01T12:00:00.02Z","response":"The","done":false}"# + "\n"),
            "\n",
            .init(#"{"model":"llama3.2","done":true,"eval_count":"# + "\n"),
            .init(#"[1,2,3]"# + "\n"),
            .init(#"{"model":"x","done":true,"eval_count":7}}"# + "\n"),
            "\u{00}\u{FF}\u{7F}{{{{\n",
            .init(#"{"model":"llama3.2","created_at":"2025-06-01T12:00:00.05Z","response":"\"}","done":false}"# + "\n"),
            .init(generateFinalLine + "\n"),
            "trailing garbage after the final line\n",
        ],
        usage: generateUsage
    )

    // MARK: Native embeddings

    static let embedDocument = ResponseFixture(
        "embed", .embed, contentType: ginJSON, streaming: false,
        [.init(#"{"model":"all-minilm","embeddings":[[0.010071029,-0.0017594862,0.05007221],[-0.0098027075,0.06042469,0.025257962]],"total_duration":14143917,"load_duration":1019500,"prompt_eval_count":8}"#)],
        usage: Usage(model: "all-minilm", promptTokens: 8, totalDurationNanos: 14_143_917, loadDurationNanos: 1_019_500)
    )

    static let embeddingsDocument = ResponseFixture(
        "embeddings (legacy)", .embeddings, contentType: ginJSON, streaming: false,
        [.init(#"{"embedding":[0.5670403838157654,0.009260174818336964,0.23178744316101074,-0.2916173040866852]}"#)],
        usage: Usage()
    )

    // MARK: OpenAI /v1/chat/completions

    static let chatCompletionChunks: [String] = [
        .init(#"data: {"id":"chatcmpl-7","object":"chat.completion.chunk","created":1748779200,"model":"llama3.2","system_fingerprint":"fp_ollama","choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"},"finish_reason":null}]}"# + "\n\n"),
        .init(#"data: {"id":"chatcmpl-7","object":"chat.completion.chunk","created":1748779200,"model":"llama3.2","system_fingerprint":"fp_ollama","choices":[{"index":0,"delta":{"content":"usage"},"finish_reason":null}]}"# + "\n\n"),
        .init(#"data: {"id":"chatcmpl-7","object":"chat.completion.chunk","created":1748779200,"model":"llama3.2","system_fingerprint":"fp_ollama","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"# + "\n\n"),
    ]
    static let chatCompletionUsageEvent =
        #"data: {"id":"chatcmpl-7","object":"chat.completion.chunk","created":1748779200,"model":"llama3.2","system_fingerprint":"fp_ollama","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}}"# + "\n\n"
    static let done = "data: [DONE]\n\n"

    /// The client asked for include_usage itself: it gets the usage chunk, exactly once.
    static let chatCompletionsClientAskedUsage = ResponseFixture(
        "chat completions stream, client asked for usage", .chatCompletions, contentType: eventStream, streaming: true,
        chatCompletionChunks.map { .init($0) } + [.usageEvent(chatCompletionUsageEvent), .init(done)],
        usage: Usage(model: "llama3.2", promptTokens: 9, completionTokens: 2)
    )

    /// The proxy injected include_usage: the usage chunk is read and withheld.
    static let chatCompletionsWithheldUsage: ResponseFixture = {
        var fixture = chatCompletionsClientAskedUsage
        fixture.name = "chat completions stream, usage withheld"
        fixture.withholdUsageChunks = true
        return fixture
    }()

    static let chatCompletionsWithoutUsage = ResponseFixture(
        "chat completions stream without include_usage", .chatCompletions, contentType: eventStream, streaming: true,
        chatCompletionChunks.map { .init($0) } + [.init(done)],
        usage: nil
    )

    /// Servers before v0.32.6: the done chunk is a content chunk, the usage chunk copies it with `choices: []`.
    static let chatCompletionsOldServer = ResponseFixture(
        "chat completions stream from an older server, usage withheld", .chatCompletions, contentType: eventStream,
        streaming: true, withhold: true,
        [
            .init(#"data: {"id":"chatcmpl-42","object":"chat.completion.chunk","created":1748779200,"model":"qwen3:8b","system_fingerprint":"fp_ollama","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"finish_reason":null}]}"# + "\n\n"),
            .init(#"data: {"id":"chatcmpl-42","object":"chat.completion.chunk","created":1748779200,"model":"qwen3:8b","system_fingerprint":"fp_ollama","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":"stop"}]}"# + "\n\n"),
            .usageEvent(#"data: {"id":"chatcmpl-42","object":"chat.completion.chunk","created":1748779200,"model":"qwen3:8b","system_fingerprint":"fp_ollama","choices":[],"usage":{"prompt_tokens":11,"completion_tokens":1,"total_tokens":12}}"# + "\n\n"),
            .init(done),
        ],
        usage: Usage(model: "qwen3:8b", promptTokens: 11, completionTokens: 1)
    )

    static let chatCompletionsDocument = ResponseFixture(
        "chat completions non-streaming", .chatCompletions, contentType: encoderJSON, streaming: false,
        [.init(#"{"id":"chatcmpl-7","object":"chat.completion","created":1748779200,"model":"llama3.2","system_fingerprint":"fp_ollama","choices":[{"index":0,"message":{"role":"assistant","content":"Hello"},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}}"# + "\n")],
        usage: Usage(model: "llama3.2", promptTokens: 9, completionTokens: 2)
    )

    static let chatCompletionsErrorEvent = ResponseFixture(
        "chat completions stream with an error event", .chatCompletions, contentType: eventStream, streaming: true,
        withhold: true,
        [
            .init(chatCompletionChunks[0]),
            .init(#"data: {"error":{"message":"model runner has unexpectedly stopped","type":"api_error","param":null,"code":null}}"# + "\n\n"),
            .usageEvent(chatCompletionUsageEvent),
            .init(done),
        ],
        usage: nil, error: "model runner has unexpectedly stopped"
    )

    static let chatCompletionsTruncated = ResponseFixture(
        "chat completions stream cut before its usage chunk", .chatCompletions, contentType: eventStream,
        streaming: true, withhold: true,
        chatCompletionChunks.map { .init($0) } + [.init(String(chatCompletionUsageEvent.prefix(90)))],
        usage: nil
    )

    // MARK: OpenAI /v1/completions

    /// What Ollama sends a client that did not set `include_usage`.
    static let completionChunksWithoutUsage: [String] = [
        .init(#"data: {"id":"cmpl-3","object":"text_completion","created":1748779200,"choices":[{"text":"Hel","index":0,"finish_reason":null}],"model":"llama3.2","system_fingerprint":"fp_ollama"}"# + "\n\n"),
        .init(#"data: {"id":"cmpl-3","object":"text_completion","created":1748779200,"choices":[{"text":"lo","index":0,"finish_reason":null}],"model":"llama3.2","system_fingerprint":"fp_ollama"}"# + "\n\n"),
        .init(#"data: {"id":"cmpl-3","object":"text_completion","created":1748779200,"choices":[{"text":"","index":0,"finish_reason":"stop"}],"model":"llama3.2","system_fingerprint":"fp_ollama"}"# + "\n\n"),
    ]
    /// The zero usage Ollama's `CompleteWriter` puts on every chunk when `include_usage` is set.
    static let completionZeroUsage = #","usage":{"prompt_tokens":0,"completion_tokens":0,"total_tokens":0}"#
    /// The same chunks with `include_usage` set: the zero usage is the last member of each.
    static let completionChunks: [String] = completionChunksWithoutUsage.map {
        $0.replacing(#""fp_ollama"}"#, with: #""fp_ollama""# + completionZeroUsage + "}")
    }
    static let completionUsageEvent =
        #"data: {"id":"cmpl-3","object":"text_completion","created":1748779200,"choices":[],"model":"llama3.2","system_fingerprint":"fp_ollama","usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}"# + "\n\n"

    static let completionsWithheldUsage = ResponseFixture(
        "completions stream, usage withheld", .completions, contentType: eventStream, streaming: true, withhold: true,
        completionChunks.map { .event($0, injected: completionZeroUsage) } + [.usageEvent(completionUsageEvent), .init(done)],
        usage: Usage(model: "llama3.2", promptTokens: 5, completionTokens: 2)
    )

    static let completionsWithoutUsage = ResponseFixture(
        "completions stream without include_usage", .completions, contentType: eventStream, streaming: true,
        completionChunksWithoutUsage.map { .init($0) } + [.init(done)],
        usage: nil
    )

    static let completionsClientAskedUsage: ResponseFixture = {
        var fixture = completionsWithheldUsage
        fixture.name = "completions stream, client asked for usage"
        fixture.withholdUsageChunks = false
        return fixture
    }()

    static let completionsDocument = ResponseFixture(
        "completions non-streaming", .completions, contentType: encoderJSON, streaming: false,
        [.init(#"{"id":"cmpl-3","object":"text_completion","created":1748779200,"model":"llama3.2","system_fingerprint":"fp_ollama","choices":[{"text":"Hello","index":0,"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}"# + "\n")],
        usage: Usage(model: "llama3.2", promptTokens: 5, completionTokens: 2)
    )

    // MARK: OpenAI /v1/embeddings

    static let openAIEmbeddingsDocument = ResponseFixture(
        "openai embeddings", .openAIEmbeddings, contentType: encoderJSON, streaming: false,
        [.init(#"{"object":"list","data":[{"object":"embedding","embedding":[0.010071029,-0.0017594862,0.05007221],"index":0}],"model":"all-minilm","usage":{"prompt_tokens":8,"total_tokens":8}}"# + "\n")],
        usage: Usage(model: "all-minilm", promptTokens: 8)
    )

    // MARK: Anthropic /v1/messages

    static func anthropicEvent(_ type: String, _ json: String) -> String {
        "event: \(type)\ndata: \(json)\n\n"
    }

    static let anthropicMessageStart = anthropicEvent(
        "message_start",
        .init(#"{"type":"message_start","message":{"id":"msg_0123456789abcdef01234567","type":"message","role":"assistant","model":"llama3.2","content":[],"usage":{"input_tokens":12,"output_tokens":0}}}"#)
    )
    static let anthropicContent: [String] = [
        anthropicEvent("content_block_start", #"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#),
        anthropicEvent("content_block_delta", #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hel"}}"#),
        anthropicEvent("content_block_delta", #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"lo \"usage\":{\"input_tokens\":999}"}}"#),
        anthropicEvent("content_block_stop", #"{"type":"content_block_stop","index":0}"#),
    ]
    static let anthropicMessageDelta = anthropicEvent(
        "message_delta", #"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"input_tokens":26,"output_tokens":5}}"#
    )
    static let anthropicMessageStop = anthropicEvent("message_stop", #"{"type":"message_stop"}"#)

    static let anthropicStream = ResponseFixture(
        "anthropic stream", .messages, contentType: eventStream, streaming: true,
        ([anthropicMessageStart] + anthropicContent + [anthropicMessageDelta, anthropicMessageStop]).map { .init($0) },
        usage: Usage(model: "llama3.2", promptTokens: 26, completionTokens: 5)
    )

    static let anthropicDocument = ResponseFixture(
        "anthropic non-streaming", .messages, contentType: encoderJSON, streaming: false,
        [.init(#"{"id":"msg_0123456789abcdef01234567","type":"message","role":"assistant","model":"llama3.2","content":[{"type":"text","text":"Hello"}],"stop_reason":"end_turn","usage":{"input_tokens":26,"output_tokens":5}}"# + "\n")],
        usage: Usage(model: "llama3.2", promptTokens: 26, completionTokens: 5)
    )

    static let anthropicTruncated = ResponseFixture(
        "anthropic stream cut before message_delta", .messages, contentType: eventStream, streaming: true,
        ([anthropicMessageStart] + anthropicContent).map { .init($0) },
        usage: nil
    )

    static let anthropicErrorEvent = ResponseFixture(
        "anthropic stream with an error event", .messages, contentType: eventStream, streaming: true,
        ([anthropicMessageStart, anthropicContent[0],
          anthropicEvent("error", #"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#),
          anthropicMessageDelta]).map { .init($0) },
        usage: nil, error: "Overloaded"
    )

    // MARK: OpenAI /v1/responses

    static func responseObject(status: String, createdAt: Int, completedAt: String, output: String, usage: String) -> String {
        #"{"background":false,"completed_at":"# + completedAt + #","created_at":"# + String(createdAt)
            + #","error":null,"frequency_penalty":0,"id":"resp_1","incomplete_details":null,"instructions":null,"max_output_tokens":null,"max_tool_calls":null,"metadata":{},"model":"llama3.2","object":"response","output":"#
            + output + #","parallel_tool_calls":true,"presence_penalty":0,"previous_response_id":null,"prompt_cache_key":null,"reasoning":null,"safety_identifier":null,"service_tier":"default","status":""#
            + status + #"","store":false,"temperature":1,"text":{"format":{"type":"text"}},"tool_choice":"auto","tools":[],"top_logprobs":0,"top_p":1,"truncation":"disabled","usage":"#
            + usage + "}"
    }

    static let responsesOutputItem =
        #"{"content":[{"annotations":[],"logprobs":[],"text":"Hello","type":"output_text"}],"id":"msg_1","role":"assistant","status":"completed","type":"message"}"#

    static let responsesEvents: [String] = [
        anthropicEvent("response.created", #"{"response":"# + responseObject(status: "in_progress", createdAt: 1748779200, completedAt: "null", output: "[]", usage: "null") + #","sequence_number":0,"type":"response.created"}"#),
        anthropicEvent("response.in_progress", #"{"response":"# + responseObject(status: "in_progress", createdAt: 1748779200, completedAt: "null", output: "[]", usage: "null") + #","sequence_number":1,"type":"response.in_progress"}"#),
        anthropicEvent("response.output_item.added", #"{"item":{"content":[],"id":"msg_1","role":"assistant","status":"in_progress","type":"message"},"output_index":0,"sequence_number":2,"type":"response.output_item.added"}"#),
        anthropicEvent("response.content_part.added", #"{"content_index":0,"item_id":"msg_1","output_index":0,"part":{"annotations":[],"logprobs":[],"text":"","type":"output_text"},"sequence_number":3,"type":"response.content_part.added"}"#),
        anthropicEvent("response.output_text.delta", #"{"content_index":0,"delta":"Hel","item_id":"msg_1","logprobs":[],"output_index":0,"sequence_number":4,"type":"response.output_text.delta"}"#),
        anthropicEvent("response.output_text.delta", #"{"content_index":0,"delta":"lo","item_id":"msg_1","logprobs":[],"output_index":0,"sequence_number":5,"type":"response.output_text.delta"}"#),
        anthropicEvent("response.output_text.done", #"{"content_index":0,"item_id":"msg_1","logprobs":[],"output_index":0,"sequence_number":6,"text":"Hello","type":"response.output_text.done"}"#),
        anthropicEvent("response.content_part.done", #"{"content_index":0,"item_id":"msg_1","output_index":0,"part":{"annotations":[],"logprobs":[],"text":"Hello","type":"output_text"},"sequence_number":7,"type":"response.content_part.done"}"#),
        anthropicEvent("response.output_item.done", #"{"item":"# + responsesOutputItem + #","output_index":0,"sequence_number":8,"type":"response.output_item.done"}"#),
    ]

    static let responsesUsage =
        #"{"input_tokens":9,"input_tokens_details":{"cached_tokens":0},"output_tokens":2,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":11}"#

    static let responsesStream = ResponseFixture(
        "responses stream", .responses, contentType: eventStream, streaming: true,
        (responsesEvents + [
            anthropicEvent("response.completed", #"{"response":"# + responseObject(status: "completed", createdAt: 1748779200, completedAt: "1748779201", output: "[" + responsesOutputItem + "]", usage: responsesUsage) + #","sequence_number":9,"type":"response.completed"}"#),
        ]).map { .init($0) },
        usage: Usage(model: "llama3.2", promptTokens: 9, completionTokens: 2)
    )

    static let responsesIncomplete = ResponseFixture(
        "responses stream ending incomplete", .responses, contentType: eventStream, streaming: true,
        (Array(responsesEvents.prefix(5)) + [
            anthropicEvent("response.incomplete", #"{"response":"# + responseObject(status: "incomplete", createdAt: 1748779200, completedAt: "null", output: "[]", usage: #"{"input_tokens":9,"output_tokens":16,"total_tokens":25}"#) + #","sequence_number":5,"type":"response.incomplete"}"#),
        ]).map { .init($0) },
        usage: Usage(model: "llama3.2", promptTokens: 9, completionTokens: 16)
    )

    /// As written by Ollama's web-search writer on failure.
    static let responsesFailed = ResponseFixture(
        "responses stream failing", .responses, contentType: eventStream, streaming: true,
        (Array(responsesEvents.prefix(2)) + [
            anthropicEvent("response.failed", #"{"response":{"error":{"code":"api_error","message":"web search failed"},"id":"resp_1","model":"llama3.2","object":"response","output":[],"status":"failed","usage":{"input_tokens":9,"output_tokens":0,"total_tokens":9}},"sequence_number":2,"type":"response.failed"}"#),
        ]).map { .init($0) },
        usage: nil, error: "web search failed"
    )

    static let responsesDocument = ResponseFixture(
        "responses non-streaming", .responses, contentType: encoderJSON, streaming: false,
        [.init(#"{"id":"resp_1","object":"response","created_at":1748779200,"completed_at":1748779201,"status":"completed","incomplete_details":null,"model":"llama3.2","previous_response_id":null,"instructions":null,"output":[{"id":"msg_1","type":"message","status":"completed","role":"assistant","content":[{"type":"output_text","text":"Hello","annotations":[],"logprobs":[]}]}],"error":null,"tools":[],"tool_choice":"auto","truncation":"disabled","parallel_tool_calls":true,"text":{"format":{"type":"text"}},"top_p":1,"presence_penalty":0,"frequency_penalty":0,"top_logprobs":0,"temperature":1,"reasoning":null,"usage":{"input_tokens":9,"output_tokens":2,"total_tokens":11,"input_tokens_details":{"cached_tokens":0},"output_tokens_details":{"reasoning_tokens":0}},"max_output_tokens":null,"max_tool_calls":null,"store":false,"background":false,"service_tier":"default","metadata":{},"safety_identifier":null,"prompt_cache_key":null}"# + "\n")],
        usage: Usage(model: "llama3.2", promptTokens: 9, completionTokens: 2)
    )

    // MARK: All

    static let native: [ResponseFixture] = [
        generateStream, chatStream, chatDocument, generateDocument, chatOmittedZeroFields, generateLoad, chatUnload,
        chatMidStreamError, generateTruncated, generateWithGarbageLines, embedDocument, embeddingsDocument,
    ]

    static let openAI: [ResponseFixture] = [
        chatCompletionsClientAskedUsage, chatCompletionsWithheldUsage, chatCompletionsWithoutUsage, chatCompletionsOldServer,
        chatCompletionsDocument, chatCompletionsErrorEvent, chatCompletionsTruncated,
        completionsWithheldUsage, completionsClientAskedUsage, completionsWithoutUsage, completionsDocument, openAIEmbeddingsDocument,
    ]

    static let anthropic: [ResponseFixture] = [anthropicStream, anthropicDocument, anthropicTruncated, anthropicErrorEvent]

    static let responses: [ResponseFixture] = [responsesStream, responsesIncomplete, responsesFailed, responsesDocument]

    static let all: [ResponseFixture] = native + openAI + anthropic + responses

    /// Every fixture, plus `\r\n` variants of all, and `\r`-only variants of the event streams.
    static let allWithLineEndVariants: [ResponseFixture] =
        all
        + all.map { $0.withLineEnds([0x0D, 0x0A], suffix: "(CRLF)") }
        + all.filter { $0.contentType == eventStream }.map { $0.withLineEnds([0x0D], suffix: "(CR)") }
}
