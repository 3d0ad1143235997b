import Testing

@testable import OllamaSimulator

/// `/v1/messages` (Anthropic) and `/v1/responses` (OpenAI Responses).
@Suite struct AnthropicAndResponsesTests {
    static let messagesRequest =
        #"{"model":"llama3.2","max_tokens":64,"system":"Be brief.","messages":[{"role":"user","content":"Hello there, how are you?"}]"#

    @Test func anthropicStreamStartsWithTheEstimateAndEndsWithRealUsage() async throws {
        try await withSimulator { ollama in
            let response = try await ollama.post("/v1/messages", Self.messagesRequest + #","stream":true}"#)
            #expect(
                response.head
                    == expectedHead(
                        "HTTP/1.1 200 OK",
                        [
                            ("Cache-Control", "no-cache"), ("Connection", "keep-alive"),
                            ("Content-Type", "text/event-stream"), ("Date", fixtureDate),
                            ("Transfer-Encoding", "chunked"),
                        ]
                    )
            )
            // "Be brief." (9) + "user" (4) + "Hello there, how are you?" (25) = 38 bytes → 9 tokens.
            let estimate = SimulatedUsage.anthropicInputTokenEstimate(
                requestBody: Array((Self.messagesRequest + "}").utf8)
            )
            #expect(estimate == 9)
            let id = SimulatedIdentifiers.anthropicMessage(1)
            func delta(_ text: String) -> String {
                "event: content_block_delta\ndata: "
                    + #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"\#(text)"}}"#
                    + "\n\n"
            }
            #expect(
                response.chunkTexts == [
                    "event: message_start\ndata: "
                        + #"{"type":"message_start","message":{"id":"\#(id)","type":"message","role":"assistant","model":"llama3.2","content":[],"usage":{"input_tokens":9,"output_tokens":0}}}"#
                        + "\n\n",
                    "event: content_block_start\ndata: "
                        + #"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#
                        + "\n\n",
                    delta("Hello"), delta(" world"), delta("!"),
                    "event: content_block_stop\ndata: " + #"{"type":"content_block_stop","index":0}"# + "\n\n",
                    "event: message_delta\ndata: "
                        + #"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"input_tokens":7,"output_tokens":3}}"#
                        + "\n\n",
                    "event: message_stop\ndata: " + #"{"type":"message_stop"}"# + "\n\n",
                ]
            )
        }
    }

    @Test func anthropicNonStreaming() async throws {
        try await withSimulator { ollama in
            let response = try await ollama.post("/v1/messages", Self.messagesRequest + "}")
            let id = SimulatedIdentifiers.anthropicMessage(1)
            #expect(response.header("Content-Type") == "application/json")
            #expect(
                response.bodyText
                    == #"{"id":"\#(id)","type":"message","role":"assistant","model":"llama3.2","content":[{"type":"text","text":"Hello world!"}],"stop_reason":"end_turn","usage":{"input_tokens":7,"output_tokens":3}}"#
                    + "\n"
            )
        }
    }

    @Test func anthropicValidationAndNotFoundErrors() async throws {
        try await withSimulator { ollama in
            let noMaxTokens = try await ollama.post(
                "/v1/messages",
                #"{"model":"m","messages":[{"role":"user","content":"x"}]}"#
            )
            #expect(noMaxTokens.status == 400)
            #expect(noMaxTokens.header("Content-Type") == "application/json; charset=utf-8")
            let requestID = SimulatedIdentifiers.anthropicRequest(1)
            #expect(
                noMaxTokens.bodyText
                    == #"{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens is required and must be positive"},"request_id":"\#(requestID)"}"#
            )

            let missing = try await ollama.post(
                "/v1/messages",
                #"{"model":"missing-claude","max_tokens":5,"messages":[{"role":"user","content":"x"}],"stream":true}"#
            )
            #expect(missing.status == 404)
            #expect(missing.headerNames == ["Cache-Control", "Connection", "Content-Type", "Date", "Content-Length"])
            #expect(missing.header("Content-Type") == "application/json")
            #expect(missing.bodyText.hasPrefix(#"{"type":"error","error":{"type":"not_found_error","message":"model 'missing-claude' not found"},"request_id":"req_"#))
            #expect(missing.bodyText.hasSuffix("\"}\n"))
        }
    }

    @Test func responsesStreamHasTheFullEventSequenceWithSortedKeys() async throws {
        try await withSimulator { ollama in
            let response = try await ollama.post(
                "/v1/responses",
                #"{"model":"llama3.2","input":"hi","stream":true,"instructions":"Be nice","temperature":0.5}"#
            )
            #expect(response.header("Cache-Control") == "no-cache")
            #expect(response.header("Content-Type") == "text/event-stream")
            #expect(
                sseEventNames(response.bodyText) == [
                    "response.created", "response.in_progress", "response.output_item.added",
                    "response.content_part.added", "response.output_text.delta", "response.output_text.delta",
                    "response.output_text.delta", "response.output_text.done", "response.content_part.done",
                    "response.output_item.done", "response.completed",
                ]
            )
            #expect(response.chunks?.count == 11)
            let payloads = try sseDataPayloads(response.bodyText)
            #expect(payloads.map { $0[field: "sequence_number"]?.intValue } == Array(0..<11))
            for payload in payloads {
                guard case .object(let members) = payload else { Issue.record("not an object"); continue }
                let keys = members.map(\.key)
                #expect(keys == keys.sorted())
            }
            let completed = payloads[10][field: "response"]!
            #expect(
                GoJSON.encodeString(completed[field: "usage"]!)
                    == #"{"input_tokens":7,"input_tokens_details":{"cached_tokens":0},"output_tokens":3,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":10}"#
            )
            #expect(completed[field: "instructions"] == .string("Be nice"))
            #expect(completed[field: "temperature"] == .number("0.5"))
            #expect(completed[field: "status"] == .string("completed"))
            let delta = response.chunkTexts[4]
            #expect(
                delta == "event: response.output_text.delta\ndata: "
                    + #"{"content_index":0,"delta":"Hello","item_id":"\#(SimulatedIdentifiers.responseItem(1))","logprobs":[],"output_index":0,"sequence_number":4,"type":"response.output_text.delta"}"#
                    + "\n\n"
            )
        }
    }

    @Test func responsesNonStreamingIsTheStructInDeclarationOrder() async throws {
        try await withSimulator { ollama in
            let response = try await ollama.post("/v1/responses", #"{"model":"m","input":"hi","max_output_tokens":50}"#)
            let body = try parseJSON(response.bodyText)
            guard case .object(let members) = body else {
                Issue.record("not an object")
                return
            }
            #expect(
                members.map(\.key) == [
                    "id", "object", "created_at", "completed_at", "status", "incomplete_details", "model",
                    "previous_response_id", "instructions", "output", "error", "tools", "tool_choice", "truncation",
                    "parallel_tool_calls", "text", "top_p", "presence_penalty", "frequency_penalty", "top_logprobs",
                    "temperature", "reasoning", "usage", "max_output_tokens", "max_tool_calls", "store", "background",
                    "service_tier", "metadata", "safety_identifier", "prompt_cache_key",
                ]
            )
            #expect(body[field: "max_output_tokens"] == .number("50"))
            #expect(
                GoJSON.encodeString(body[field: "output"]!)
                    == #"[{"id":"\#(SimulatedIdentifiers.responseItem(1))","type":"message","status":"completed","role":"assistant","content":[{"type":"output_text","text":"Hello world!","annotations":[],"logprobs":[]}]}]"#
            )
            #expect(response.bodyText.hasSuffix("\n"))
        }
    }
}
