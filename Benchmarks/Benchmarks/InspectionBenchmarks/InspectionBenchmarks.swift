// Micro-benchmarks of the proxy's per-chunk path (issue 4): what reading every token costs.
//
// Every "per chunk" benchmark builds a response inspector and feeds it the start of a realistic stream
// outside the measurement, then measures `scalingFactor` (1,000) further chunks, each passed to `inspect`
// as one read, exactly as the proxy does with each read from Ollama. With the `.kilo` scaling factor the
// reported figures are per chunk: one allocation per chunk shows as 1, not 1,000. The target is zero
// allocations per chunk in steady state.
//
// The per-response and per-request benchmarks (final line, request body) include everything the proxy does
// once per request: building the inspector, reading the final object, decoding the model name, and (for
// OpenAI streams) building the edited body.

import Benchmark
import NIOCore
import OllamaMetricsProxy

// MARK: - Realistic bytes, as Ollama writes them (see shared/ollama-wire-formats.md)

enum Wire {
    static let model = "llama3.2"
    static let createdAt = "2025-06-01T12:00:00.123456789Z"

    /// `/api/chat` stream chunk, ~125 bytes.
    static let nativeChatChunk =
        #"{"model":"llama3.2","created_at":"2025-06-01T12:00:00.123456789Z","message":{"role":"assistant","content":" world"},"done":false}"#
        + "\n"

    /// `/api/generate` stream chunk, ~100 bytes.
    static let nativeGenerateChunk =
        #"{"model":"llama3.2","created_at":"2025-06-01T12:00:00.123456789Z","response":" world","done":false}"# + "\n"

    /// `/api/chat` final object (no `context`).
    static let nativeChatFinal =
        #"{"model":"llama3.2","created_at":"2025-06-01T12:00:04.5Z","message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","total_duration":4883583458,"load_duration":1334875,"prompt_eval_count":26,"prompt_eval_duration":342546000,"eval_count":282,"eval_duration":4535599000}"#
        + "\n"

    /// `/api/generate` final object with a `context` of `contextSize` token ids (Ollama puts the whole prompt +
    /// completion there; thousands of ints are normal).
    static func nativeGenerateFinal(contextSize: Int) -> String {
        var context = ""
        context.reserveCapacity(contextSize * 7)
        for index in 0..<contextSize {
            if index > 0 { context += "," }
            context += String(100 + (index &* 7919) % 128_000)
        }
        return #"{"model":"llama3.2","created_at":"2025-06-01T12:00:04.5Z","response":"","done":true,"done_reason":"stop","context":["#
            + context
            + #"],"total_duration":4883583458,"load_duration":1334875,"prompt_eval_count":26,"prompt_eval_duration":342546000,"eval_count":282,"eval_duration":4535599000}"#
            + "\n"
    }

    static func openAIChunk(_ delta: String) -> String {
        #"data: {"id":"chatcmpl-7","object":"chat.completion.chunk","created":1748779200,"model":"llama3.2","system_fingerprint":"fp_ollama","choices":[{"index":0,"delta":"#
            + delta + #","finish_reason":null}]}"# + "\n\n"
    }

    /// The first chunk of an OpenAI chat stream (the only one with `role`).
    static let openAIFirstChunk = openAIChunk(#"{"role":"assistant","content":"Hel"}"#)
    /// An ordinary OpenAI chat stream chunk, ~200 bytes.
    static let openAIChunk = openAIChunk(#"{"content":" world"}"#)

    static let anthropicPreamble =
        "event: message_start\n"
        + #"data: {"type":"message_start","message":{"id":"msg_0123456789abcdef01234567","type":"message","role":"assistant","model":"llama3.2","content":[],"usage":{"input_tokens":12,"output_tokens":0}}}"#
        + "\n\n"
        + "event: content_block_start\n"
        + #"data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#
        + "\n\n"

    /// An Anthropic `content_block_delta` event, ~125 bytes.
    static let anthropicDelta =
        "event: content_block_delta\n"
        + #"data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" world"}}"#
        + "\n\n"

    /// A typical OpenAI SDK streaming chat body without `stream_options` (the proxy inserts include_usage).
    static let openAIChatRequest =
        #"{"model":"llama3.2","messages":[{"role":"system","content":"You are a helpful assistant. Answer briefly and precisely."},{"role":"user","content":"Explain in two sentences why the sky is blue, and mention Rayleigh scattering."}],"temperature":0.7,"max_tokens":512,"stream":true}"#

    /// A typical native `/api/chat` body (no edit).
    static let nativeChatRequest =
        #"{"model":"llama3.2","messages":[{"role":"system","content":"You are a helpful assistant. Answer briefly and precisely."},{"role":"user","content":"Explain in two sentences why the sky is blue, and mention Rayleigh scattering."}],"options":{"temperature":0.7,"num_ctx":8192},"keep_alive":"5m"}"#
}

func buffer(_ text: String) -> ByteBuffer {
    ByteBuffer(string: text)
}

/// `count` copies of `text` in one buffer: several events arriving in one read.
func buffer(_ text: String, repeated count: Int) -> ByteBuffer {
    var result = ByteBuffer()
    for _ in 0..<count { result.writeString(text) }
    return result
}

// MARK: - Benchmarks

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .mallocCountTotal, .throughput],
        timeUnits: .nanoseconds,
        warmupIterations: 3,
        scalingFactor: .kilo,
        maxDuration: .seconds(2),
        maxIterations: 1_000
    )

    let streamingRequest = InferenceRequest(model: Wire.model, isStreaming: true, withholdUsageChunks: false)
    let withholdingRequest = InferenceRequest(model: Wire.model, isStreaming: true, withholdUsageChunks: true)

    // Native NDJSON: /api/chat, one ~125-byte line per read.
    Benchmark("Native NDJSON chat chunk (per chunk)") { benchmark in
        let chunk = buffer(Wire.nativeChatChunk)
        var inspector = ResponseInspector(endpoint: .chat, request: streamingRequest, contentType: "application/x-ndjson")
        blackHole(inspector.inspect(chunk))
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(inspector.inspect(chunk))
            blackHole(inspector.takeCompletedUsage())
        }
        benchmark.stopMeasurement()
    }

    // Native NDJSON: /api/generate, one ~100-byte line per read.
    Benchmark("Native NDJSON generate chunk (per chunk)") { benchmark in
        let chunk = buffer(Wire.nativeGenerateChunk)
        var inspector = ResponseInspector(endpoint: .generate, request: streamingRequest, contentType: "application/x-ndjson")
        blackHole(inspector.inspect(chunk))
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(inspector.inspect(chunk))
            blackHole(inspector.takeCompletedUsage())
        }
        benchmark.stopMeasurement()
    }

    // Native NDJSON, each line split across two reads (a line that straddles reads must be carried over).
    Benchmark("Native NDJSON chat chunk split across 2 reads (per chunk)") { benchmark in
        let whole = buffer(Wire.nativeChatChunk)
        let cut = 57
        let head = whole.getSlice(at: 0, length: cut)!
        let tail = whole.getSlice(at: cut, length: whole.readableBytes - cut)!
        var inspector = ResponseInspector(endpoint: .chat, request: streamingRequest, contentType: "application/x-ndjson")
        blackHole(inspector.inspect(whole))
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(inspector.inspect(head))
            blackHole(inspector.inspect(tail))
            blackHole(inspector.takeCompletedUsage())
        }
        benchmark.stopMeasurement()
    }

    // OpenAI SSE with the usage chunk withheld (the proxy injected include_usage): one event per read.
    Benchmark("OpenAI SSE chunk, withholding on (per chunk)") { benchmark in
        let chunk = buffer(Wire.openAIChunk)
        var inspector = ResponseInspector(endpoint: .chatCompletions, request: withholdingRequest, contentType: "text/event-stream")
        blackHole(inspector.inspect(buffer(Wire.openAIFirstChunk)))
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(inspector.inspect(chunk))
            blackHole(inspector.takeCompletedUsage())
        }
        benchmark.stopMeasurement()
    }

    // Same, without withholding (the client asked for usage itself).
    Benchmark("OpenAI SSE chunk, withholding off (per chunk)") { benchmark in
        let chunk = buffer(Wire.openAIChunk)
        var inspector = ResponseInspector(endpoint: .chatCompletions, request: streamingRequest, contentType: "text/event-stream")
        blackHole(inspector.inspect(buffer(Wire.openAIFirstChunk)))
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(inspector.inspect(chunk))
            blackHole(inspector.takeCompletedUsage())
        }
        benchmark.stopMeasurement()
    }

    // OpenAI SSE, withholding on, 8 events coalesced in one read (what a busy proxy reads); figure per event.
    Benchmark("OpenAI SSE 8 events per read, withholding on (per event)") { benchmark in
        let eventsPerRead = 8
        let read = buffer(Wire.openAIChunk, repeated: eventsPerRead)
        var inspector = ResponseInspector(endpoint: .chatCompletions, request: withholdingRequest, contentType: "text/event-stream")
        blackHole(inspector.inspect(buffer(Wire.openAIFirstChunk)))
        benchmark.startMeasurement()
        for _ in 0..<(benchmark.scaledIterations.count / eventsPerRead) {
            blackHole(inspector.inspect(read))
            blackHole(inspector.takeCompletedUsage())
        }
        benchmark.stopMeasurement()
    }

    // OpenAI SSE, withholding on, each event split across two reads (held-back bytes must be assembled).
    Benchmark("OpenAI SSE chunk split across 2 reads, withholding on (per chunk)") { benchmark in
        let whole = buffer(Wire.openAIChunk)
        let cut = 90
        let head = whole.getSlice(at: 0, length: cut)!
        let tail = whole.getSlice(at: cut, length: whole.readableBytes - cut)!
        var inspector = ResponseInspector(endpoint: .chatCompletions, request: withholdingRequest, contentType: "text/event-stream")
        blackHole(inspector.inspect(buffer(Wire.openAIFirstChunk)))
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(inspector.inspect(head))
            blackHole(inspector.inspect(tail))
            blackHole(inspector.takeCompletedUsage())
        }
        benchmark.stopMeasurement()
    }

    // Anthropic SSE: content_block_delta events, one per read.
    Benchmark("Anthropic SSE content_block_delta (per chunk)") { benchmark in
        let chunk = buffer(Wire.anthropicDelta)
        var inspector = ResponseInspector(endpoint: .messages, request: streamingRequest, contentType: "text/event-stream")
        blackHole(inspector.inspect(buffer(Wire.anthropicPreamble)))
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(inspector.inspect(chunk))
            blackHole(inspector.takeCompletedUsage())
        }
        benchmark.stopMeasurement()
    }

    // Once per response: a new inspector reads the final done:true line and yields the usage.
    Benchmark("Native /api/chat final line (per response)") { benchmark in
        let line = buffer(Wire.nativeChatFinal)
        for _ in benchmark.scaledIterations {
            var inspector = ResponseInspector(endpoint: .chat, request: streamingRequest, contentType: "application/x-ndjson")
            blackHole(inspector.inspect(line))
            blackHole(inspector.finish())
            guard let usage = inspector.takeCompletedUsage() else {
                benchmark.error("no usage read from the final line")
                return
            }
            blackHole(usage)
        }
    }

    Benchmark(
        "Native /api/generate final line, 2,000-int context (per response)",
        configuration: .init(scalingFactor: .one, maxIterations: 20_000)
    ) { benchmark in
        let line = buffer(Wire.nativeGenerateFinal(contextSize: 2_000))
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            var inspector = ResponseInspector(endpoint: .generate, request: streamingRequest, contentType: "application/x-ndjson")
            blackHole(inspector.inspect(line))
            blackHole(inspector.finish())
            guard let usage = inspector.takeCompletedUsage() else {
                benchmark.error("no usage read from the final line")
                return
            }
            blackHole(usage)
        }
        benchmark.stopMeasurement()
    }

    // Once per request: reading an OpenAI streaming chat body and inserting include_usage.
    Benchmark("RequestInspector /v1/chat/completions body, include_usage edit (per request)") { benchmark in
        let body = buffer(Wire.openAIChatRequest)
        for _ in benchmark.scaledIterations {
            let (request, rewritten) = RequestInspector.inspect(endpoint: .chatCompletions, body: body)
            guard request.withholdUsageChunks, let rewritten else {
                benchmark.error("the body was not edited")
                return
            }
            blackHole(request)
            blackHole(rewritten)
        }
    }

    // Once per request: reading a native body (model and stream only, no edit).
    Benchmark("RequestInspector /api/chat body, no edit (per request)") { benchmark in
        let body = buffer(Wire.nativeChatRequest)
        for _ in benchmark.scaledIterations {
            let (request, rewritten) = RequestInspector.inspect(endpoint: .chat, body: body)
            blackHole(request)
            blackHole(rewritten)
        }
    }
}
