import NIOCore
import NIOHTTP1
import Testing

@testable import OllamaMetricsProxy

/// Every transition of `ExchangeStateMachine`, as plain values: no sockets, no event loop.
@Suite struct ExchangeStateMachineTests {
    typealias Machine = ExchangeStateMachine
    typealias Action = ExchangeStateMachine.Action

    static let upstream = try! UpstreamURL(parsing: "http://ollama.local:11434")

    static func machine(
        _ method: HTTPMethod = .GET, _ uri: String = "/api/tags", headers: [(String, String)] = [("Host", "proxy")],
        version: HTTPVersion = .http1_1, maxBody: Int = 32 * 1024 * 1024
    ) -> Machine {
        let head = HTTPRequestHead(version: version, method: method, uri: uri, headers: HTTPHeaders(headers))
        return Machine(head: head, upstream: Self.upstream, clientAddress: "10.0.0.9", maxInspectedRequestBody: maxBody)
    }

    static func bytes(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }

    static func responseHead(
        _ status: HTTPResponseStatus = .ok, _ headers: [(String, String)] = [("Content-Type", "application/json; charset=utf-8")]
    ) -> HTTPResponseHead {
        HTTPResponseHead(version: .http1_1, status: status, headers: HTTPHeaders(headers))
    }

    /// The head the machine sends upstream for a request it did not rewrite.
    static func upstreamHead(of machine: Machine, bodyLength: Int? = nil) -> HTTPRequestHead {
        UpstreamRequestHead.make(from: machine.clientHead, upstream: Self.upstream, clientAddress: "10.0.0.9", bodyLength: bodyLength)
    }

    static let chatBody = #"{"model":"llama3.2","messages":[{"role":"user","content":"hi"}],"stream":false}"#
    static let chatAnswer = #"{"model":"llama3.2","created_at":"2025-06-01T12:00:01Z","message":{"role":"assistant","content":"Hello!"},"done":true,"done_reason":"stop","total_duration":5589157167,"load_duration":3013701500,"prompt_eval_count":26,"prompt_eval_duration":1139568000,"eval_count":8,"eval_duration":1435282000}"#
    static let ndjsonHead = responseHead(.ok, [("Content-Type", "application/x-ndjson"), ("Transfer-Encoding", "chunked")])

    /// An inference request read whole and sent on a fresh connection, waiting for the response.
    static func chatAwaitingResponse(stream: Bool = false) -> Machine {
        var machine = Self.machine(.POST, "/api/chat")
        _ = machine.connected(reused: false)
        let body = stream ? #"{"model":"llama3.2","messages":[{"role":"user","content":"hi"}],"stream":true}"# : Self.chatBody
        _ = machine.clientSentBody(Self.bytes(body))
        _ = machine.clientSentEnd(trailers: nil)
        return machine
    }

    // MARK: - Pass-through

    @Test func passThroughRequestIsSentWhenConnectedAndItsResponseStreamsBack() {
        var machine = Self.machine()
        #expect(machine.start() == Action(io: .acquireConnection))
        #expect(machine.clientSentEnd(trailers: nil) == .none, "nothing to send before a connection exists")
        #expect(machine.connected(reused: false) == Action(io: .sendRequest(Self.upstreamHead(of: machine), body: nil, end: .init())))
        #expect(machine.upstreamWritabilityChanged(isWritable: true) == Action(io: .holdClientReads(false)))
        let head = Self.responseHead(.ok, [("Content-Type", "application/json"), ("Content-Length", "2")])
        #expect(machine.upstreamReceivedHead(head) == Action(io: .writeClientHead(head)))
        #expect(machine.upstreamReceivedBody(Self.bytes("{")) == .none, "held until the read burst ends")
        #expect(machine.upstreamReceivedBody(Self.bytes("}")) == .none)
        #expect(machine.upstreamReadComplete() == Action(io: .writeClientBody(Self.bytes("{}"))))
        #expect(machine.upstreamReadComplete() == .none, "nothing new arrived")
        #expect(
            machine.upstreamReceivedEnd(trailers: nil)
                == Action(io: .finishResponse(body: nil, trailers: nil, connection: .release, closeClient: false), events: [.requestEnded])
        )
        #expect(machine.isFinished)
        #expect(machine.inference == nil, "pass-through requests have no inference lifecycle")
    }

    @Test func passThroughBodyWaitsForTheConnectionWithClientReadsHeldThenStreams() {
        var machine = Self.machine(.POST, "/api/pull", headers: [("Transfer-Encoding", "chunked")])
        _ = machine.start()
        #expect(machine.clientSentBody(Self.bytes("ab")) == Action(io: .holdClientReads(true)))
        #expect(machine.clientSentBody(Self.bytes("cd")) == Action(io: .holdClientReads(true)))
        #expect(machine.clientReadComplete() == .none)
        #expect(
            machine.connected(reused: true)
                == Action(io: .sendRequest(Self.upstreamHead(of: machine), body: Self.bytes("abcd"), end: nil))
        )
        #expect(machine.upstreamWritabilityChanged(isWritable: true) == Action(io: .holdClientReads(false)))
        #expect(machine.clientSentBody(Self.bytes("ef")) == Action(io: .writeUpstreamBody(Self.bytes("ef"))))
        #expect(machine.clientReadComplete() == Action(io: .flushUpstream))
        #expect(machine.upstreamWritabilityChanged(isWritable: false) == Action(io: .holdClientReads(true)))
        #expect(machine.clientSentEnd(trailers: HTTPHeaders([("X-T", "1")])) == Action(io: .endUpstreamRequest(trailers: HTTPHeaders([("X-T", "1")]))))
        #expect(machine.upstreamWritabilityChanged(isWritable: true) == Action(io: .holdClientReads(false)))
    }

    @Test func headRequestKeepsItsFramingAndGetsNoBodyInAProxyError() {
        var machine = Self.machine(.HEAD, "/")
        _ = machine.clientSentEnd(trailers: nil)
        let action = machine.connectFailed(reason: "connection refused")
        guard case .respond(let head, let body, let closeClient) = action.io else {
            Issue.record("expected a 502, got \(action)")
            return
        }
        #expect(head.status == .badGateway)
        #expect(body == nil, "a HEAD response has no body")
        #expect(!closeClient, "the request was complete: the connection can carry the next one")
    }

    @Test func informationalResponsesArePassedOnAndTheFinalHeadStillFollows() {
        var machine = Self.machine()
        _ = machine.clientSentEnd(trailers: nil)
        _ = machine.connected(reused: false)
        let early = HTTPResponseHead(version: .http1_1, status: .init(statusCode: 103), headers: ["Link": "</a>"])
        #expect(machine.upstreamReceivedHead(early) == Action(io: .writeClientHead(early)))
        let final = Self.responseHead(.ok, [("Content-Length", "2")])
        #expect(machine.upstreamReceivedHead(final) == Action(io: .writeClientHead(final)))
    }

    @Test func expectContinueIsNotForwardedBecauseTheProxyAnswersIt() {
        var machine = Self.machine(.POST, "/api/create", headers: [("Expect", "100-continue"), ("Content-Length", "2")])
        _ = machine.clientSentBody(Self.bytes("{}"))
        let action = machine.connected(reused: false)
        guard case .sendRequest(let head, let body, _) = action.io else {
            Issue.record("expected the request, got \(action)")
            return
        }
        #expect(!head.headers.contains(name: "expect"))
        #expect(body == Self.bytes("{}"))
    }

    @Test func connectionCloseAndHTTP10ClientsCloseAfterTheResponse() {
        for (headers, version) in [([("Connection", "close")], HTTPVersion.http1_1), ([], .http1_0)] {
            var machine = Self.machine(headers: headers, version: version)
            _ = machine.clientSentEnd(trailers: nil)
            _ = machine.connected(reused: false)
            _ = machine.upstreamReceivedHead(Self.responseHead(.ok, [("Content-Length", "0")]))
            #expect(
                machine.upstreamReceivedEnd(trailers: nil)
                    == Action(io: .finishResponse(body: nil, trailers: nil, connection: .release, closeClient: true), events: [.requestEnded]),
                "\(version) \(headers)"
            )
        }
    }

    @Test func aResponseThatSaysCloseIsNotReturnedToThePool() {
        var machine = Self.machine()
        _ = machine.clientSentEnd(trailers: nil)
        _ = machine.connected(reused: false)
        _ = machine.upstreamReceivedHead(Self.responseHead(.ok, [("Connection", "close"), ("Content-Length", "0")]))
        #expect(
            machine.upstreamReceivedEnd(trailers: nil)
                == Action(io: .finishResponse(body: nil, trailers: nil, connection: .close, closeClient: false), events: [.requestEnded])
        )
    }

    // MARK: - Inference

    @Test func inferenceBodyIsHeldWholeThenSentWithItsLengthAndTheLifecycleFollows() {
        var machine = Self.machine(.POST, "/api/chat", headers: [("Transfer-Encoding", "chunked")])
        _ = machine.start()
        #expect(machine.connected(reused: false) == .none, "the head waits for the whole body")
        let body = Self.chatBody
        let half = body.index(body.startIndex, offsetBy: 20)
        #expect(machine.clientSentBody(Self.bytes(String(body[..<half]))) == .none)
        #expect(machine.clientSentBody(Self.bytes(String(body[half...]))) == .none)
        #expect(machine.clientReadComplete() == .none)
        let sent = machine.clientSentEnd(trailers: nil)
        let head = Self.upstreamHead(of: machine, bodyLength: body.utf8.count)
        #expect(head.headers["content-length"] == ["\(body.utf8.count)"])
        #expect(!head.headers.contains(name: "transfer-encoding"))
        #expect(sent == Action(io: .sendRequest(head, body: Self.bytes(body), end: .init()), events: [.began, .upstreamConnected]))
        #expect(machine.inference?.start == InferenceRequestStart(
            endpoint: .chat, model: "llama3.2", isStreaming: false, clientHeaders: ["Transfer-Encoding": "chunked"]
        ), "the client's headers, for observers labelling by one")

        #expect(machine.upstreamReceivedHead(Self.responseHead()).events == [.responseHead])
        #expect(machine.inference?.status == 200)
        let answer = machine.upstreamReceivedBody(Self.bytes(Self.chatAnswer))
        #expect(answer.events == [.firstContent, .usage])
        #expect(machine.inference?.usage?.completionTokens == 8)
        #expect(machine.inference?.usage?.finishReason == .stop, "the inspector's finish reason travels with the usage")
        #expect(machine.upstreamReadComplete() == Action(io: .writeClientBody(Self.bytes(Self.chatAnswer))))
        let end = machine.upstreamReceivedEnd(trailers: nil)
        #expect(end == Action(io: .finishResponse(body: nil, trailers: nil, connection: .release, closeClient: false), events: [.ended, .requestEnded]))
        #expect(
            machine.inferenceEnding
                == InferenceEnding(outcome: .completed, requestBodyBytes: body.utf8.count, responseBodyBytes: Self.chatAnswer.utf8.count)
        )
    }

    @Test func inferenceReadBeforeTheConnectionReportsTheConnectionWhenItComes() {
        var machine = Self.machine(.POST, "/api/chat")
        _ = machine.clientSentBody(Self.bytes(Self.chatBody))
        #expect(machine.clientSentEnd(trailers: nil) == Action(io: .none, events: [.began]))
        let action = machine.connected(reused: true)
        #expect(action.events == [.upstreamConnected])
        #expect(machine.inference?.reusedConnection == true)
    }

    @Test func openAIStreamsAskForUsageInTheBodySentUpstream() {
        var machine = Self.machine(.POST, "/v1/chat/completions")
        _ = machine.clientSentBody(Self.bytes(#"{"model":"m","stream":true,"messages":[]}"#))
        _ = machine.clientSentEnd(trailers: nil)
        let action = machine.connected(reused: false)
        guard case .sendRequest(let head, let body?, _) = action.io else {
            Issue.record("expected the request, got \(action)")
            return
        }
        let edited = #"{"model":"m","stream":true,"messages":[],"stream_options":{"include_usage":true}}"#
        #expect(String(buffer: body) == edited)
        #expect(head.headers["content-length"] == ["\(edited.utf8.count)"])
        #expect(machine.inference?.request.withholdUsageChunks == true)
    }

    @Test func anInferenceBodyTooLargeToInspectStreamsThroughUnlabelled() {
        var machine = Self.machine(.POST, "/api/generate", headers: [("Content-Length", "30")], maxBody: 10)
        #expect(machine.clientSentBody(Self.bytes("0123456")) == .none)
        #expect(machine.clientSentBody(Self.bytes("789abc")) == Action(io: .holdClientReads(true), events: [.began]))
        #expect(machine.inference?.start.model == nil)
        let connected = machine.connected(reused: false)
        #expect(
            connected
                == Action(
                    io: .sendRequest(Self.upstreamHead(of: machine), body: Self.bytes("0123456789abc"), end: nil),
                    events: [.upstreamConnected]
                )
        )
        #expect(machine.upstreamHead(of: machine).headers["content-length"] == ["30"], "the client's framing is kept")
        #expect(machine.clientSentBody(Self.bytes("d")) == Action(io: .writeUpstreamBody(Self.bytes("d"))))
        #expect(machine.clientSentEnd(trailers: nil) == Action(io: .endUpstreamRequest(trailers: nil)))
        #expect(machine.requestBodyBytesSent == 14)
    }

    @Test func anInferenceBodyTooLargeWhileConnectedIsSentAtOnce() {
        var machine = Self.machine(.POST, "/api/generate", maxBody: 4)
        _ = machine.connected(reused: true)
        let action = machine.clientSentBody(Self.bytes("0123456"))
        #expect(action == Action(io: .sendRequest(Self.upstreamHead(of: machine), body: Self.bytes("0123456"), end: nil), events: [.began, .upstreamConnected]))
    }

    @Test func errorStatusesFailWithTheirClassAndAreNotInspected() {
        for (status, reason) in [(404, FailureReason.http4xx), (503, .http5xx), (302, .httpOther)] {
            var machine = Self.chatAwaitingResponse()
            #expect(machine.upstreamReceivedHead(Self.responseHead(.init(statusCode: status))).events == [.responseHead])
            // An error body that looks like usage is not read as usage.
            #expect(machine.upstreamReceivedBody(Self.bytes(Self.chatAnswer)).events == [])
            _ = machine.upstreamReceivedEnd(trailers: nil)
            #expect(machine.inference?.outcome == .failed(reason), "\(status)")
        }
    }

    @Test func anErrorInsideA2xxStreamFailsTheRequest() {
        var machine = Self.chatAwaitingResponse(stream: true)
        _ = machine.upstreamReceivedHead(Self.ndjsonHead)
        _ = machine.upstreamReceivedBody(Self.bytes(#"{"error":"model runner crashed"}"# + "\n"))
        #expect(machine.upstreamReceivedEnd(trailers: nil).events == [.ended, .requestEnded])
        #expect(machine.inference?.outcome == .failed(.streamError))
        #expect(machine.inference?.streamError == "model runner crashed")
    }

    @Test func theFirstContentChunkIsReportedOnceAndNotForARoleOnlyChunk() {
        var machine = Self.machine(.POST, "/v1/chat/completions")
        _ = machine.clientSentBody(Self.bytes(#"{"model":"m","stream":true,"messages":[]}"#))
        _ = machine.clientSentEnd(trailers: nil)
        _ = machine.connected(reused: false)
        _ = machine.upstreamReceivedHead(Self.responseHead(.ok, [("Content-Type", "text/event-stream")]))
        let role = #"data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","system_fingerprint":"fp_ollama","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"# + "\n\n"
        let token = #"data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","system_fingerprint":"fp_ollama","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"finish_reason":null}]}"# + "\n\n"
        #expect(machine.upstreamReceivedBody(Self.bytes(role)).events == [])
        #expect(machine.upstreamReceivedBody(Self.bytes(token)).events == [.firstContent])
        #expect(machine.upstreamReceivedBody(Self.bytes(token)).events == [])
    }

    @Test func a2xxStreamWithoutUsageEndsAsNoUsage() {
        var machine = Self.chatAwaitingResponse(stream: true)
        _ = machine.upstreamReceivedHead(Self.ndjsonHead)
        _ = machine.upstreamReceivedBody(Self.bytes(#"{"model":"llama3.2","message":{"role":"assistant","content":"Hel"},"done":false}"# + "\n"))
        _ = machine.upstreamReceivedEnd(trailers: nil)
        #expect(machine.inference?.outcome == .failed(.noUsage))
    }

    // MARK: - The client hangs up

    @Test func clientHangsUpWhileTheConnectionIsComingThenItGoesBackUnused() {
        var machine = Self.machine()
        #expect(machine.clientClosed() == Action(io: .none, events: [.requestEnded]))
        #expect(machine.isFinished)
        #expect(machine.connected(reused: false) == Action(io: .disposeConnection(.release)))
        #expect(machine.connectFailed(reason: "late") == .none)
    }

    @Test func clientHangsUpWhileAnInferenceBodyArrivesBeforeItsLifeBegan() {
        var machine = Self.machine(.POST, "/api/chat")
        _ = machine.clientSentBody(Self.bytes("{"))
        #expect(machine.clientClosed() == Action(io: .none, events: [.requestEnded]), "no inference lifecycle: the body was never read")
        #expect(machine.inference == nil)
    }

    @Test func clientHangsUpAfterTheBodyWasReadButBeforeAConnection() {
        var machine = Self.machine(.POST, "/api/chat")
        _ = machine.clientSentBody(Self.bytes(Self.chatBody))
        _ = machine.clientSentEnd(trailers: nil)
        #expect(machine.clientClosed() == Action(io: .none, events: [.ended, .requestEnded]))
        #expect(machine.inference?.outcome == .failed(.clientDisconnected))
    }

    @Test func clientHangsUpWhileWaitingForTheResponseClosesTheConnectionToOllama() {
        var machine = Self.chatAwaitingResponse()
        #expect(machine.clientClosed() == Action(io: .closeUpstream, events: [.ended, .requestEnded]))
        #expect(machine.inference?.outcome == .failed(.clientDisconnected))
        #expect(machine.upstreamClosed(reason: nil) == .none, "the close it caused changes nothing")
    }

    @Test func clientHangsUpMidStreamClosesTheConnectionSoOllamaStopsGenerating() {
        var machine = Self.chatAwaitingResponse(stream: true)
        _ = machine.upstreamReceivedHead(Self.ndjsonHead)
        _ = machine.upstreamReceivedBody(Self.bytes(#"{"model":"llama3.2","message":{"role":"assistant","content":"Hel"},"done":false}"# + "\n"))
        #expect(machine.clientClosed() == Action(io: .closeUpstream, events: [.ended, .requestEnded]))
        #expect(machine.inference?.outcome == .failed(.clientDisconnected))
        #expect(machine.upstreamReceivedBody(Self.bytes("late")) == .none)
        #expect(machine.upstreamReadComplete() == .none)
        #expect(machine.upstreamReceivedEnd(trailers: nil) == .none)
    }

    @Test func clientHangsUpAfterTheUsageWentByAndTheRequestStaysComplete() {
        var machine = Self.chatAwaitingResponse()
        _ = machine.upstreamReceivedHead(Self.responseHead())
        _ = machine.upstreamReceivedBody(Self.bytes(Self.chatAnswer))
        _ = machine.clientClosed()
        #expect(machine.inference?.outcome == .completed)
    }

    @Test func clientHangsUpAfterTheEndChangesNothing() {
        var machine = Self.chatAwaitingResponse()
        _ = machine.upstreamReceivedHead(Self.responseHead())
        _ = machine.upstreamReceivedEnd(trailers: nil)
        #expect(machine.clientClosed() == .none)
        #expect(machine.clientSentBody(Self.bytes("x")) == .none)
        #expect(machine.clientSentEnd(trailers: nil) == .none)
    }

    // MARK: - Ollama closes or cannot be reached

    @Test func unreachableOllamaGetsA502InTheClientsDialectAndCountsTheRequest() {
        var machine = Self.machine(.POST, "/v1/messages")
        _ = machine.clientSentBody(Self.bytes(#"{"model":"m","max_tokens":5,"messages":[]}"#))
        _ = machine.clientSentEnd(trailers: nil)
        let action = machine.connectFailed(reason: "connection refused")
        guard case .respond(let head, let body?, false) = action.io else {
            Issue.record("expected a 502 keeping the connection, got \(action)")
            return
        }
        #expect(head.status == .badGateway)
        #expect(String(buffer: body).contains(#""type":"error""#))
        #expect(String(buffer: body).contains("connection refused"))
        #expect(action.events == [.ended, .requestEnded])
        #expect(machine.inference?.outcome == .failed(.upstreamUnreachable))
    }

    @Test func unreachableOllamaWhileTheBodyArrivesCountsItWithoutAModelAndClosesTheClient() {
        var machine = Self.machine(.POST, "/api/chat")
        _ = machine.clientSentBody(Self.bytes("{\"mod"))
        let action = machine.connectFailed(reason: "connection refused")
        guard case .respond(_, _, true) = action.io else {
            Issue.record("the rest of the body cannot be read: the connection must close; got \(action)")
            return
        }
        #expect(action.events == [.began, .ended, .requestEnded])
        #expect(machine.inference?.start.model == nil)
    }

    @Test func ollamaClosingAFreshConnectionBeforeAnsweringIsA502() {
        var machine = Self.chatAwaitingResponse()
        let action = machine.upstreamClosed(reason: "connection reset")
        guard case .respond(let head, _, false) = action.io else {
            Issue.record("expected a 502, got \(action)")
            return
        }
        #expect(head.status == .badGateway)
        #expect(machine.inference?.outcome == .failed(.upstreamUnreachable))
    }

    @Test func aDeadPooledConnectionIsReplayedOnceOnAFreshOneWhenNothingCameBack() {
        var machine = Self.machine(.POST, "/api/chat")
        _ = machine.clientSentBody(Self.bytes(Self.chatBody))
        _ = machine.clientSentEnd(trailers: nil)
        let first = machine.connected(reused: true)
        #expect(machine.upstreamClosed(reason: nil) == Action(io: .acquireConnection))
        let second = machine.connected(reused: false)
        #expect(second == first, "the same head and body again")
        #expect(machine.upstreamClosed(reason: nil).events == [.ended, .requestEnded], "a fresh connection that closes is not replayed")
    }

    @Test func aReusedConnectionThatClosesAfterPartOfTheAnswerIsNotReplayed() {
        var machine = Self.machine(.POST, "/api/chat")
        _ = machine.clientSentBody(Self.bytes(Self.chatBody))
        _ = machine.clientSentEnd(trailers: nil)
        _ = machine.connected(reused: true)
        let action = machine.upstreamClosed(reason: "connection closed in the middle of the response head", answerStarted: true)
        guard case .respond(let head, _, _) = action.io else {
            Issue.record("Ollama started on the request: a 502, not a second generation, got \(action)")
            return
        }
        #expect(head.status == .badGateway)
        #expect(machine.inference?.outcome == .failed(.upstreamUnreachable))
    }

    @Test func aReplayIsTriedOnlyOnceEvenOnAnotherReusedConnection() {
        var machine = Self.machine()
        _ = machine.clientSentEnd(trailers: nil)
        _ = machine.connected(reused: true)
        #expect(machine.upstreamClosed(reason: nil) == Action(io: .acquireConnection))
        _ = machine.connected(reused: true)
        guard case .respond = machine.upstreamClosed(reason: nil).io else {
            Issue.record("the second close must answer 502")
            return
        }
    }

    @Test func aRequestWhoseStreamedBodyWasNotHeldIsNotReplayed() {
        var machine = Self.machine(.POST, "/api/pull")
        _ = machine.connected(reused: true)
        _ = machine.clientSentBody(Self.bytes(#"{"model":"x"}"#))
        _ = machine.clientSentEnd(trailers: nil)
        guard case .respond = machine.upstreamClosed(reason: nil).io else {
            Issue.record("a body that went by cannot be sent again")
            return
        }
    }

    @Test func aPooledConnectionThatDiesWhileTheInferenceBodyArrivesIsReplacedSilently() {
        var machine = Self.machine(.POST, "/api/chat")
        _ = machine.connected(reused: true)
        _ = machine.clientSentBody(Self.bytes("{"))
        #expect(machine.upstreamClosed(reason: nil) == Action(io: .acquireConnection))
        _ = machine.clientSentBody(Self.bytes(String(Self.chatBody.dropFirst())))
        #expect(machine.clientSentEnd(trailers: nil).events == [.began])
        #expect(machine.connected(reused: false).events == [.upstreamConnected])
    }

    @Test func ollamaClosingMidResponseCutsTheClientShortWithWhatArrived() {
        var machine = Self.chatAwaitingResponse(stream: true)
        _ = machine.upstreamReceivedHead(Self.ndjsonHead)
        let line = #"{"model":"llama3.2","message":{"role":"assistant","content":"Hel"},"done":false}"# + "\n"
        _ = machine.upstreamReceivedBody(Self.bytes(line))
        let action = machine.upstreamClosed(reason: "connection reset")
        #expect(action == Action(io: .abortResponse(body: Self.bytes(line)), events: [.ended, .requestEnded]))
        #expect(machine.inference?.outcome == .failed(.upstreamDisconnected))
        #expect(machine.inferenceEnding?.responseBodyBytes == line.utf8.count)
    }

    @Test func ollamaClosingAfterTheEndChangesNothing() {
        var machine = Self.chatAwaitingResponse()
        _ = machine.upstreamReceivedHead(Self.responseHead())
        _ = machine.upstreamReceivedEnd(trailers: nil)
        #expect(machine.upstreamClosed(reason: nil) == .none)
    }

    // MARK: - Every request's end (the access log)

    @Test func aPassThroughRequestEndsCompletedWithItsStatusAndBodyBytesEachWay() {
        var machine = Self.machine(.POST, "/api/pull")
        #expect(machine.clientSentBody(Self.bytes("{\"name\":\"x\"}")) == Action(io: .holdClientReads(true)))
        #expect(machine.clientSentEnd(trailers: nil) == .none)
        _ = machine.connected(reused: false)
        _ = machine.upstreamReceivedHead(Self.responseHead(.ok, [("Transfer-Encoding", "chunked")]))
        _ = machine.upstreamReceivedBody(Self.bytes("abc"))
        _ = machine.upstreamReadComplete()
        #expect(machine.requestEnding == nil, "not over yet")
        #expect(machine.upstreamReceivedBody(Self.bytes("de")) == .none)
        #expect(machine.upstreamReceivedEnd(trailers: nil).events == [.requestEnded])
        #expect(machine.requestEnding == RequestEnding(status: 200, outcome: .completed, requestBodyBytes: 12, responseBodyBytes: 5))
        #expect(machine.inference == nil, "no inference lifecycle")
    }

    @Test func aPassThroughRequestToAnUnreachableOllamaEndsWithThe502() {
        var machine = Self.machine()
        _ = machine.clientSentEnd(trailers: nil)
        #expect(machine.connectFailed(reason: "connection refused").events == [.requestEnded])
        #expect(machine.requestEnding == RequestEnding(status: 502, outcome: .failed(.upstreamUnreachable), requestBodyBytes: 0, responseBodyBytes: 0))
    }

    @Test func aPassThroughClientThatHangsUpBeforeTheHeadEndsWithoutAStatus() {
        var machine = Self.machine()
        _ = machine.clientSentEnd(trailers: nil)
        _ = machine.connected(reused: false)
        #expect(machine.clientClosed() == Action(io: .closeUpstream, events: [.requestEnded]))
        #expect(machine.requestEnding == RequestEnding(status: nil, outcome: .failed(.clientDisconnected), requestBodyBytes: 0, responseBodyBytes: 0))
        #expect(machine.clientClosed() == .none, "it ends once")
    }

    @Test func aPassThroughResponseThatBreaksOffEndsUpstreamDisconnectedWithWhatWasForwarded() {
        var machine = Self.machine()
        _ = machine.clientSentEnd(trailers: nil)
        _ = machine.connected(reused: false)
        _ = machine.upstreamReceivedHead(Self.responseHead(.ok, [("Content-Length", "10")]))
        _ = machine.upstreamReceivedBody(Self.bytes("abcd"))
        #expect(machine.upstreamClosed(reason: "connection reset") == Action(io: .abortResponse(body: Self.bytes("abcd")), events: [.requestEnded]))
        #expect(machine.requestEnding == RequestEnding(status: 200, outcome: .failed(.upstreamDisconnected), requestBodyBytes: 0, responseBodyBytes: 4))
    }

    @Test func anInferenceRequestEndsWithItsInferenceOutcomeAndCountsAfterItsLifecycleEnded() {
        var machine = Self.chatAwaitingResponse()
        _ = machine.upstreamReceivedHead(Self.responseHead(.notFound))
        _ = machine.upstreamReceivedBody(Self.bytes(#"{"error":"model 'x' not found"}"#))
        #expect(machine.upstreamReceivedEnd(trailers: nil).events == [.ended, .requestEnded])
        #expect(machine.requestEnding == RequestEnding(
            status: 404, outcome: .failed(.http4xx), requestBodyBytes: Self.chatBody.utf8.count, responseBodyBytes: 31
        ))
    }

    // MARK: - Early responses and backpressure

    @Test func anEarlyResponseWhileTheBodyStreamsKeepsForwardingItAndClosesTheConnectionAfter() {
        var machine = Self.machine(.POST, "/api/blobs/sha256:abc")
        _ = machine.connected(reused: false)
        _ = machine.clientSentBody(Self.bytes("part1"))
        let head = Self.responseHead(.badRequest, [("Content-Length", "0")])
        #expect(machine.upstreamReceivedHead(head) == Action(io: .writeClientHead(head)))
        #expect(!machine.isRequestComplete)
        #expect(machine.clientSentBody(Self.bytes("part2")) == Action(io: .writeUpstreamBody(Self.bytes("part2"))))
        #expect(
            machine.upstreamReceivedEnd(trailers: nil)
                == Action(io: .finishResponse(body: nil, trailers: nil, connection: .close, closeClient: false), events: [.requestEnded]),
            "a connection whose request was not finished cannot be reused"
        )
        #expect(machine.clientSentBody(Self.bytes("part3")) == .none)
    }

    @Test func aResponseBeforeAnythingWasSentDropsTheRestOfTheBody() {
        var machine = Self.machine(.POST, "/api/chat")
        _ = machine.connected(reused: false)
        _ = machine.clientSentBody(Self.bytes("{"))
        _ = machine.upstreamReceivedHead(Self.responseHead(.badRequest, [("Content-Length", "0")]))
        #expect(machine.clientSentBody(Self.bytes("more")) == .none)
        #expect(machine.clientSentEnd(trailers: nil) == .none)
    }

    @Test func writabilityOfEachSideThrottlesTheOther() {
        var machine = Self.machine(.POST, "/api/push")
        #expect(machine.clientWritabilityChanged(isWritable: false) == .none, "no connection to pause yet")
        _ = machine.connected(reused: false)
        #expect(machine.clientWritabilityChanged(isWritable: false) == Action(io: .pauseUpstreamReads(true)))
        #expect(machine.clientWritabilityChanged(isWritable: true) == Action(io: .pauseUpstreamReads(false)))
        #expect(machine.upstreamWritabilityChanged(isWritable: false) == Action(io: .holdClientReads(true)))
        _ = machine.clientSentEnd(trailers: nil)
        #expect(machine.upstreamWritabilityChanged(isWritable: false) == Action(io: .holdClientReads(false)), "nothing left to read")
    }
}

extension ExchangeStateMachine {
    /// The head this machine sends upstream for its request when it was not rewritten.
    fileprivate func upstreamHead(of machine: ExchangeStateMachine) -> HTTPRequestHead {
        UpstreamRequestHead.make(
            from: machine.clientHead, upstream: ExchangeStateMachineTests.upstream, clientAddress: "10.0.0.9", bodyLength: nil
        )
    }
}

// MARK: - Trust at the edge (#17)

extension ExchangeStateMachineTests {
    @Test(arguments: [
        ([("Host", "proxy"), ("Connection", "close")], HTTPVersion.http1_1, true, "close"),
        ([("Host", "proxy")], .http1_0, true, "close"),
        ([("Host", "proxy"), ("Connection", "keep-alive")], .http1_0, false, "keep-alive"),
        ([("Host", "proxy")], .http1_1, false, nil),
    ] as [([(String, String)], HTTPVersion, Bool, String?)])
    func the502FollowsTheClientsConnectionSemantics(headers: [(String, String)], version: HTTPVersion, closes: Bool, connection: String?) {
        var machine = Self.machine(.GET, "/api/tags", headers: headers, version: version)
        _ = machine.clientSentEnd(trailers: nil)
        let action = machine.connectFailed(reason: "connection refused")
        guard case .respond(let head, _, let closeClient) = action.io else {
            Issue.record("expected a 502, got \(action)")
            return
        }
        #expect(head.status == .badGateway)
        #expect(closeClient == closes)
        #expect(head.headers["connection"].first == connection)
        #expect(head.version == version)
    }

    @Test func aMalformedBodyBeforeAConnectionIsA400AndTheConnectionComesBackUnused() {
        var machine = Self.machine(.POST, "/api/show", headers: [("Host", "p"), ("Transfer-Encoding", "chunked")])
        _ = machine.clientSentBody(Self.bytes("{\"mo"))
        let refusal = ClientRefusal.malformedRequestBody(endpoint: nil).response
        let action = machine.clientSentMalformedBody(response: refusal)
        #expect(action == Action(io: .refuseRequest(refusal.0, body: refusal.1, connection: .release), events: .requestEnded))
        #expect(machine.requestEnding?.status == 400)
        #expect(machine.connected(reused: false) == Action(io: .disposeConnection(.release)))
    }

    @Test func aMalformedBodyAfterPartOfItWentUpstreamClosesThatConnection() {
        var machine = Self.machine(.POST, "/api/show", headers: [("Host", "p"), ("Transfer-Encoding", "chunked")])
        _ = machine.connected(reused: true)
        _ = machine.clientSentBody(Self.bytes("{\"mo"))
        let refusal = ClientRefusal.malformedRequestBody(endpoint: nil).response
        #expect(machine.clientSentMalformedBody(response: refusal).io == .refuseRequest(refusal.0, body: refusal.1, connection: .close))
        #expect(machine.requestEnding?.outcome == .failed(.clientDisconnected))
    }

    @Test func aMalformedBodyOfAHeldInferenceRequestReleasesTheUnusedConnectionAndCountsNoInference() {
        var machine = Self.machine(.POST, "/v1/messages", headers: [("Host", "p"), ("Transfer-Encoding", "chunked")])
        _ = machine.connected(reused: false)
        _ = machine.clientSentBody(Self.bytes("{\"mo"))
        let refusal = ClientRefusal.malformedRequestBody(endpoint: .messages).response
        let action = machine.clientSentMalformedBody(response: refusal)
        #expect(action.io == .refuseRequest(refusal.0, body: refusal.1, connection: .release), "nothing was sent on it")
        #expect(machine.inference == nil)
    }

    @Test func aMalformedBodyOfAStreamedInferenceRequestEndsItsLife() {
        var machine = Self.machine(.POST, "/api/chat", maxBody: 4)
        _ = machine.connected(reused: false)
        #expect(machine.clientSentBody(Self.bytes("{\"model\"")).events == [.began, .upstreamConnected])
        let action = machine.clientSentMalformedBody(response: ClientRefusal.malformedRequestBody(endpoint: .chat).response)
        #expect(action.events == [.ended, .requestEnded], "no gauge is left up")
        #expect(machine.inference?.outcome == .failed(.clientDisconnected))
    }

    @Test func aMalformedBodyAfterOllamaAnsweredCutsTheResponse() {
        var machine = Self.machine(.POST, "/api/show", headers: [("Host", "p"), ("Transfer-Encoding", "chunked")])
        _ = machine.connected(reused: false)
        _ = machine.clientSentBody(Self.bytes("{"))
        _ = machine.upstreamReceivedHead(Self.responseHead(.ok, [("Content-Length", "9")]))
        _ = machine.upstreamReceivedBody(Self.bytes("{\"a\""))
        let action = machine.clientSentMalformedBody(response: ClientRefusal.malformedRequestBody(endpoint: nil).response)
        #expect(action.io == .abortResponse(body: Self.bytes("{\"a\"")))
        #expect(machine.isFinished)
    }

    @Test(arguments: ["/api/%63hat", "/api%2Fchat", "http://proxy:11435/api/chat", "HTTP://proxy/api/ch%61t?x=1"])
    func encodedAndAbsoluteFormPathsAreMeteredAsOllamaRoutesThem(uri: String) {
        let machine = Self.machine(.POST, uri)
        #expect(machine.endpoint == .chat, "\(uri)")
    }

    @Test(arguments: ["/api/chat/", "//api/chat", "/api/./chat", "/API/chat", "/api/chat#x", "/api/chat%3F"])
    func pathsOllamaDoesNotRunAsInferenceAreNotMetered(uri: String) {
        #expect(Self.machine(.POST, uri).endpoint == nil, "\(uri)")
    }
}
