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
