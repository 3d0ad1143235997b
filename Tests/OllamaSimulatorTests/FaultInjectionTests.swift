import Testing

@testable import OllamaSimulator

/// The faults an Ollama that crashes, is killed or stalls inflicts on a proxy: a reset (RST, not FIN) mid-stream,
/// a reset in the middle of the response head, and a stall once the head is out.
@Suite struct FaultInjectionTests {
    static let chat = #"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#

    @Test(arguments: [
        ("/api/chat", #""done":false"#),
        ("/v1/chat/completions", #""object":"chat.completion.chunk""#),
        ("/v1/messages", "event: content_block_delta"),
    ])
    func resetAfterTokensResetsTheConnectionMidStream(path: String, tokenMarker: String) async throws {
        try await withSimulator { ollama in
            let body = path == "/api/chat" ? Self.chat : #"{"model":"m","max_tokens":9,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#
            let result = await exchange(ollama, "POST", path, body: body, headers: [("X-Sim-Tokens", "5"), ("X-Sim-Reset-After", "2")])
            #expect(result.ending == .reset)
            #expect(result.text.hasPrefix("HTTP/1.1 200 OK\r\n"))
            #expect(occurrences(of: tokenMarker, in: result.text) == 2)  // two tokens, nothing after
            #expect(!result.text.hasSuffix("0\r\n\r\n"))
            #expect(await ollama.waitForIdle())
            #expect(ollama.requests.first?.outcome == .dropped)
            #expect(ollama.cancellationCount == 0)
        }
    }

    @Test func dropAfterStillClosesInOrder() async throws {
        try await withSimulator { ollama in
            let result = await exchange(ollama, "POST", "/api/chat", body: Self.chat, headers: [("X-Sim-Drop-After", "2")])
            #expect(result.ending == .closed)
            #expect(occurrences(of: #""done":false"#, in: result.text) == 2)
        }
    }

    @Test func nonStreamingResetAfterGetsAResetAndNoResponse() async throws {
        try await withSimulator { ollama in
            let result = await exchange(
                ollama, "POST", "/api/generate", body: #"{"model":"m","prompt":"p","stream":false}"#,
                headers: [("X-Sim-Reset-After", "1")]
            )
            #expect(result.ending == .reset)
            #expect(result.bytes.isEmpty)
        }
    }

    @Test func theEarliestInterruptionWinsAndAResetWinsATie() throws {
        func interruption(_ headers: [(String, String)]) throws -> String? {
            let behaviour = try SimulatorBehaviour().applying(headers: [("X-Sim-Tokens", "3")] + headers)
            return GenerationPlan(model: "m", behaviour: behaviour).interruption.map { interruption in
                switch interruption.kind {
                case .error: "error@\(interruption.afterTokens)"
                case .drop: "drop@\(interruption.afterTokens)"
                case .reset: "reset@\(interruption.afterTokens)"
                }
            }
        }
        #expect(try interruption([]) == nil)
        #expect(try interruption([("X-Sim-Error-After", "2"), ("X-Sim-Drop-After", "2"), ("X-Sim-Reset-After", "2")]) == "reset@2")
        #expect(try interruption([("X-Sim-Reset-After", "3"), ("X-Sim-Drop-After", "1")]) == "drop@1")
        #expect(try interruption([("X-Sim-Error-After", "1"), ("X-Sim-Reset-After", "2")]) == "error@1")
        #expect(try interruption([("X-Sim-Reset-After", "9")]) == "reset@3")  // in place of the final event
    }

    @Test(arguments: [
        ("GET", "/api/tags", nil as String?),
        ("POST", "/api/generate", #"{"model":"m","prompt":"p"}"#),
        ("POST", "/v1/chat/completions", #"{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true}"#),
    ])
    func resetMidHeadSendsThatManyBytesOfTheHeadThenResets(method: String, path: String, body: String?) async throws {
        try await withSimulator { ollama in
            let result = await exchange(ollama, method, path, body: body, headers: [("X-Sim-Reset-Mid-Head", "12")])
            #expect(result.ending == .reset)
            #expect(result.text == "HTTP/1.1 200")
            #expect(await ollama.waitForIdle())
            #expect(ollama.requests.first?.outcome == .dropped)
        }
    }

    @Test func resetMidHeadNeverSendsTheWholeHead() async throws {
        try await withSimulator { ollama in
            let result = await exchange(ollama, "POST", "/api/chat", body: Self.chat, headers: [("X-Sim-Reset-Mid-Head", "100000")])
            #expect(result.ending == .reset)
            #expect(result.text.hasPrefix("HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\n"))
            #expect(result.text.hasSuffix("Transfer-Encoding: chunked\r\n\r"))  // all but the last byte
        }
    }

    @Test func resetMidHeadBeforeAnyByteSendsNothing() async throws {
        try await withSimulator { ollama in
            let result = await exchange(ollama, "GET", "/api/version", headers: [("X-Sim-Reset-Mid-Head", "0")])
            #expect(result.ending == .reset)
            #expect(result.bytes.isEmpty)
        }
    }

    @Test func stallAfterHeadSendsTheHeadAloneAndHoldsTheBody() async throws {
        try await withSimulator { ollama in
            let connection = try await RawConnection.connect(port: ollama.port)
            try await connection.send(
                httpRequest("POST", "/api/chat", port: ollama.port, body: Self.chat, headers: [("X-Sim-Stall-After-Head-Ms", "600000")])
            )
            let head = try await connection.readUntil("\r\n\r\n", timeout: .seconds(20))
            #expect(head.hasPrefix("HTTP/1.1 200 OK\r\n"))
            #expect(head.hasSuffix("Transfer-Encoding: chunked\r\n\r\n"))
            try await Task.sleep(for: .milliseconds(100))
            #expect(connection.receivedBytes.count == head.utf8.count)  // not a byte of the body
            #expect(ollama.activeResponses == 1)

            // A client hanging up during the stall cancels the response.
            await connection.close()
            #expect(await ollama.waitForCancellations(1, timeout: .seconds(20)))
            #expect(await ollama.waitForIdle(timeout: .seconds(20)))
        }
    }

    @Test(arguments: [
        ("/api/chat", Self.chat, true),
        ("/api/generate", #"{"model":"m","prompt":"p","stream":false}"#, false),
    ])
    func stallAfterHeadThenGoesOnAsUsual(path: String, body: String, isChunked: Bool) async throws {
        try await withSimulator { ollama in
            let start = ContinuousClock.now
            let stalled = try await ollama.post(path, body, headers: [("X-Sim-Stall-After-Head-Ms", "200")])
            #expect(ContinuousClock.now - start >= .milliseconds(200))
            let plain = try await ollama.post(path, body)
            #expect(stalled.isComplete)
            #expect(stalled.status == 200)
            #expect(stalled.head == plain.head)
            #expect(stalled.body == plain.body)
            #expect(isChunked == (stalled.header("Transfer-Encoding") == "chunked"))
        }
    }

    @Test func faultHeadersAreParsedAndCheckedLikeTheOthers() throws {
        let behaviour = try SimulatorBehaviour().applying(headers: [
            ("x-sim-reset-after", "4"), ("X-Sim-Reset-Mid-Head", "10"), ("X-SIM-STALL-AFTER-HEAD-MS", " 250 "),
        ])
        #expect(behaviour.resetAfterTokens == 4)
        #expect(behaviour.resetMidHeadBytes == 10)
        #expect(behaviour.stallAfterHead == .milliseconds(250))
        for header in ["X-Sim-Reset-After", "X-Sim-Reset-Mid-Head", "X-Sim-Stall-After-Head-Ms"] {
            #expect(throws: SimulatorControlError(header: header, value: "-1")) {
                try SimulatorBehaviour().applying(headers: [(header, "-1")])
            }
        }
    }
}

/// One request over a plain socket, read to the end of the connection.
private func exchange(
    _ ollama: OllamaSimulator, _ method: String, _ target: String, body: String? = nil, headers: [(String, String)] = []
) async -> PlainSocket.Result {
    await PlainSocket.exchange(port: ollama.port, request: httpRequest(method, target, port: ollama.port, body: body, headers: headers))
}

/// How many times `pattern` occurs in `text`, overlaps not counted.
private func occurrences(of pattern: String, in text: String) -> Int {
    let bytes = Array(text.utf8), needle = Array(pattern.utf8)
    var count = 0, index = 0
    while index + needle.count <= bytes.count {
        if bytes[index..<(index + needle.count)].elementsEqual(needle) {
            count += 1
            index += needle.count
        } else {
            index += 1
        }
    }
    return count
}
