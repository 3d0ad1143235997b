import NIOCore
import NIOHTTP1
import Testing

@testable import OllamaMetricsProxy

@Suite struct RequestHeadLimitsTests {
    static func head(_ uri: String, _ headers: [(String, String)]) -> HTTPRequestHead {
        HTTPRequestHead(version: .http1_1, method: .POST, uri: uri, headers: HTTPHeaders(headers))
    }

    @Test func theSizeIsTheHeadAsWrittenOnTheWire() {
        let head = Self.head("/api/chat", [("Host", "x"), ("X-A", "12345")])
        // "POST /api/chat HTTP/1.1\r\n" (25) + "Host: x\r\n" (9) + "X-A: 12345\r\n" (12) + "\r\n" (2) = 48
        #expect(RequestHeadLimits(maxBytes: 48, maxHeaderCount: 10).refusal(for: head) == nil)
        #expect(
            RequestHeadLimits(maxBytes: 47, maxHeaderCount: 10).refusal(for: head)
                == .requestHeadTooLarge(limit: 47, endpoint: .chat)
        )
    }

    @Test func theHeaderCountIsCheckedFirstAndTheEndpointNamesTheDialect() {
        let head = Self.head("/v1/messages?beta=true", [("A", "1"), ("B", "2"), ("C", "3")])
        #expect(RequestHeadLimits(maxBytes: 10, maxHeaderCount: 2).refusal(for: head) == .tooManyHeaders(limit: 2, endpoint: .messages))
        #expect(RequestHeadLimits(maxBytes: 1000, maxHeaderCount: 3).refusal(for: head) == nil)
        #expect(
            RequestHeadLimits(maxBytes: 10, maxHeaderCount: 3).refusal(for: Self.head("/api/tags", []))
                == .requestHeadTooLarge(limit: 10, endpoint: nil)
        )
    }

    @Test func refusalsAnswerInTheDialectAndClose() {
        let (openAI, openAIBody) = ClientRefusal.tooManyHeaders(limit: 2, endpoint: .chatCompletions).response
        #expect(openAI.status == .requestHeaderFieldsTooLarge)
        #expect(openAI.headers["Connection"] == ["close"])
        #expect(openAIBody.map { String(buffer: $0) }?.hasPrefix(#"{"error":{"message":"request with more than 2 header fields"#) == true)

        let (anthropic, anthropicBody) = ClientRefusal.requestHeadTooLarge(limit: 1024, endpoint: .messages).response
        #expect(anthropic.status.code == 431)
        #expect(anthropicBody.map { String(buffer: $0) }?.hasPrefix(#"{"type":"error","error":{"type":"api_error","message":"request head larger than 1024 bytes"#) == true)

        let (busy, busyBody) = ClientRefusal.tooManyConnections(limit: 5).response
        #expect(busy.status == .serviceUnavailable)
        #expect(busy.headers["Retry-After"] == ["1"])
        #expect(busyBody.map { String(buffer: $0) } == #"{"error":"too many connections: 5 are open (ollama-metrics-proxy --max-connections)"}"#)

        let (bad, badBody) = ClientRefusal.malformedRequest.response
        #expect(bad.status == .badRequest)
        #expect(bad.headers["Content-Length"] == ["0"])
        #expect(badBody == nil)
    }
}
