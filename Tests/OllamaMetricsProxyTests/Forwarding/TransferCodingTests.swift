import NIOHTTP1
import Testing

@testable import OllamaMetricsProxy

@Suite struct TransferCodingTests {
    @Test(arguments: [
        ([("Transfer-Encoding", "chunked")], true),
        ([("transfer-encoding", "Chunked")], true),
        ([("Transfer-Encoding", "gzip, chunked")], true),
        ([("Transfer-Encoding", "gzip"), ("Transfer-Encoding", "chunked")], true),
        ([("Transfer-Encoding", "chunked, ")], true),
        ([("Transfer-Encoding", " chunked\t")], true),
        ([("Transfer-Encoding", "chunked, gzip")], false),
        ([("Transfer-Encoding", "gzip")], false),
        ([("Transfer-Encoding", "")], false),
        ([("Transfer-Encoding", "chunkedx")], false),
    ] as [([(String, String)], Bool)])
    func theFinalCodingDecides(headers: [(String, String)], chunked: Bool) {
        #expect(TransferCoding.isChunked(HTTPHeaders(headers)) == chunked)
    }

    @Test func noFieldIsNil() {
        #expect(TransferCoding.isChunked(HTTPHeaders([("Content-Length", "3")])) == nil)
    }
}

@Suite struct RequestTransferCodings {
    @Test(arguments: [
        ([("Content-Length", "3")], .absent),
        ([("Transfer-Encoding", "chunked")], .chunked),
        ([("transfer-encoding", " Chunked ")], .chunked),
        ([("Transfer-Encoding", ", chunked,")], .chunked),
        ([("Transfer-Encoding", ""), ("Transfer-Encoding", "chunked")], .chunked),
        ([("Transfer-Encoding", "gzip, chunked")], .unsupported),
        ([("Transfer-Encoding", "gzip"), ("Transfer-Encoding", "chunked")], .unsupported),
        ([("Transfer-Encoding", "identity, chunked")], .unsupported),
        ([("Transfer-Encoding", "chunked, gzip")], .invalid),
        ([("Transfer-Encoding", "chunked, chunked")], .invalid),
        ([("Transfer-Encoding", "chunked"), ("Transfer-Encoding", "chunked")], .invalid),
        ([("Transfer-Encoding", "gzip")], .invalid),
        ([("Transfer-Encoding", "")], .invalid),
        ([("Transfer-Encoding", " , ")], .invalid),
        ([("Transfer-Encoding", "chunked;x=1")], .invalid),
    ] as [([(String, String)], TransferCoding.RequestCodings)])
    func onlyChunkedAloneIsForwarded(headers: [(String, String)], expected: TransferCoding.RequestCodings) {
        #expect(TransferCoding.ofRequest(HTTPHeaders(headers)) == expected)
    }

    @Test func codingsThatAreNotImplementedAre501AndUndeterminableLengthsAre400InTheEndpointsDialect() {
        let gzipped = HTTPRequestHead(
            version: .http1_1, method: .POST, uri: "/v1/chat/completions", headers: ["Transfer-Encoding": "gzip, chunked"]
        )
        #expect(RequestHeadValidation.refusal(for: gzipped) == .unsupportedTransferCoding(endpoint: .chatCompletions))
        let (head, body) = ClientRefusal.unsupportedTransferCoding(endpoint: .chatCompletions).response
        #expect(head.status == .notImplemented)
        #expect(head.headers["connection"] == ["close"])
        #expect(body.map { String(buffer: $0) }?.hasPrefix(#"{"error":{"message":"unsupported Transfer-Encoding"#) == true)

        let last = HTTPRequestHead(version: .http1_1, method: .POST, uri: "/api/%63hat", headers: ["Transfer-Encoding": "chunked, gzip"])
        #expect(RequestHeadValidation.refusal(for: last) == .invalidTransferEncoding(endpoint: .chat))
        #expect(ClientRefusal.invalidTransferEncoding(endpoint: .chat).response.0.status == .badRequest)
        let plain = HTTPRequestHead(version: .http1_1, method: .POST, uri: "/api/chat", headers: ["Transfer-Encoding": "chunked"])
        #expect(RequestHeadValidation.refusal(for: plain) == nil)
    }

    @Test func aMalformedBodyIsA400InTheEndpointsDialectThatCloses() {
        let (head, body) = ClientRefusal.malformedRequestBody(endpoint: .messages).response
        #expect(head.status == .badRequest)
        #expect(head.headers["connection"] == ["close"])
        #expect(body.map { String(buffer: $0) } == #"{"type":"error","error":{"type":"api_error","message":"malformed chunked request body"}}"#)
        #expect(ClientRefusal.malformedRequestBody(endpoint: nil).reason.rawValue == "malformed_request_body")
    }
}
