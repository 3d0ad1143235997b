import NIOCore
import NIOHTTP1
import Testing

@testable import OllamaMetricsProxy

/// The bytes the proxy writes to clients: the head as given, the body framed as the head says.
@Suite struct ClientResponseEncoderTests {
    static func head(
        _ status: HTTPResponseStatus = .ok, _ headers: [(String, String)], version: HTTPVersion = .http1_1
    ) -> HTTPResponseHead {
        HTTPResponseHead(version: version, status: status, headers: HTTPHeaders(headers))
    }

    /// Everything written, in order: what `write` got and then what was gathered.
    static func wire(_ build: (inout ClientResponseEncoder, (ByteBuffer) -> Void) -> Void) -> (text: String, writes: Int) {
        var encoder = ClientResponseEncoder()
        var written: [ByteBuffer] = []
        build(&encoder) { written.append($0) }
        if let gathered = encoder.take() { written.append(gathered) }
        #expect(encoder.take() == nil, "take() hands out what was gathered once")
        return (written.map { String(buffer: $0) }.joined(), written.count)
    }

    @Test func aChunkedStreamIsOneBufferWithSizeLinesAndTheLastChunk() {
        let (text, writes) = Self.wire { encoder, write in
            encoder.head(Self.head(.ok, [("Content-Type", "application/x-ndjson"), ("Transfer-Encoding", "chunked")]), requestMethod: .POST)
            encoder.body(ByteBuffer(string: "{\"a\":1}\n"), write: write)
            encoder.body(ByteBuffer(string: String(repeating: "x", count: 300)), write: write)
            encoder.end(trailers: nil)
        }
        #expect(
            text == "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n"
                + "8\r\n{\"a\":1}\n\r\n" + "12c\r\n" + String(repeating: "x", count: 300) + "\r\n" + "0\r\n\r\n"
        )
        #expect(writes == 1)
    }

    @Test func chunkSizesAreLowercaseHexWithoutLeadingZeros() {
        for size in [1, 9, 10, 15, 16, 255, 256, 4095, 4096, 16384, 65535, 1 << 20, Int(UInt32.max)] {
            var buffer = ByteBuffer()
            ClientResponseEncoder.writeChunkSize(size, into: &buffer)
            #expect(String(buffer: buffer) == String(size, radix: 16) + "\r\n")
        }
    }

    @Test func aContentLengthBodyGoesAsItIsAndItsEndWritesNothing() {
        let (text, _) = Self.wire { encoder, write in
            encoder.head(Self.head(.ok, [("Content-Length", "13")]), requestMethod: .GET)
            encoder.body(ByteBuffer(string: #"{"models":[]}"#), write: write)
            encoder.end(trailers: nil)
        }
        #expect(text == "HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\n{\"models\":[]}")
    }

    @Test func responsesWithoutABodyGetNoFramingWhateverTheirHeadersSay() {
        for (status, method) in [(HTTPResponseStatus.ok, HTTPMethod.HEAD), (.noContent, .GET), (.notModified, .GET)] {
            let (text, _) = Self.wire { encoder, write in
                encoder.head(Self.head(status, [("Transfer-Encoding", "chunked")]), requestMethod: method)
                encoder.body(ByteBuffer(string: "stray"), write: write)
                encoder.end(trailers: nil)
            }
            #expect(text == "HTTP/1.1 \(status.code) \(status.reasonPhrase)\r\nTransfer-Encoding: chunked\r\n\r\n", "\(status) to \(method)")
        }
    }

    @Test func trailersFollowTheLastChunk() {
        let (text, _) = Self.wire { encoder, write in
            encoder.head(Self.head(.ok, [("Transfer-Encoding", "chunked")]), requestMethod: .GET)
            encoder.body(ByteBuffer(string: "ab"), write: write)
            encoder.end(trailers: HTTPHeaders([("X-Checksum", "1"), ("X-Other", "two words")]))
        }
        #expect(text == "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\nX-Checksum: 1\r\nX-Other: two words\r\n\r\n")
    }

    @Test func aLargePieceIsWrittenOnItsOwnInOrderWithWhatCameBefore() {
        let large = String(repeating: "L", count: ClientResponseEncoder.copyLimit + 1)
        let (text, writes) = Self.wire { encoder, write in
            encoder.head(Self.head(.ok, [("Transfer-Encoding", "chunked")]), requestMethod: .GET)
            encoder.body(ByteBuffer(string: "s"), write: write)
            encoder.body(ByteBuffer(string: large), write: write)
            encoder.body(ByteBuffer(string: "t"), write: write)
            encoder.end(trailers: nil)
        }
        let size = String(large.utf8.count, radix: 16)
        #expect(text == "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\ns\r\n\(size)\r\n\(large)\r\n1\r\nt\r\n0\r\n\r\n")
        #expect(writes == 3, "what came before, the large piece uncopied, what follows")

        let (identity, identityWrites) = Self.wire { encoder, write in
            encoder.head(Self.head(.ok, [("Content-Length", "\(large.utf8.count + 1)")]), requestMethod: .GET)
            encoder.body(ByteBuffer(string: large), write: write)
            encoder.body(ByteBuffer(string: "!"), write: write)
        }
        #expect(identity.hasSuffix(large + "!"))
        #expect(identityWrites == 3)
    }

    @Test func anInformationalHeadKeepsTheFramingOfTheResponseToCome() {
        let (text, _) = Self.wire { encoder, write in
            encoder.head(Self.head(.continue, []), requestMethod: .POST)
            encoder.head(Self.head(.ok, [("Transfer-Encoding", "chunked")]), requestMethod: .POST)
            encoder.body(ByteBuffer(string: "a"), write: write)
            encoder.end(trailers: nil)
        }
        #expect(text == "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n\r\n")
    }

    @Test func anHTTP10ResponseIsNeverChunkedAndKeepsItsVersionAndReason() {
        let (text, _) = Self.wire { encoder, write in
            encoder.head(
                Self.head(HTTPResponseStatus(statusCode: 299, reasonPhrase: "Custom Reason"), [("Transfer-Encoding", "chunked")], version: .http1_0),
                requestMethod: .GET
            )
            encoder.body(ByteBuffer(string: "abc"), write: write)
            encoder.end(trailers: nil)
        }
        #expect(text == "HTTP/1.0 299 Custom Reason\r\nTransfer-Encoding: chunked\r\n\r\nabc")
    }

    @Test func theFinalCodingDecidesChunkingInAnyLetterCase() {
        let (text, _) = Self.wire { encoder, write in
            encoder.head(Self.head(.ok, [("transfer-encoding", "gzip"), ("Transfer-Encoding", "Chunked")]), requestMethod: .GET)
            encoder.body(ByteBuffer(string: "z"), write: write)
            encoder.end(trailers: nil)
        }
        #expect(text.hasSuffix("\r\n\r\n1\r\nz\r\n0\r\n\r\n"))
    }

    @Test func headersGoOutInTheirOrderAndLetterCase() {
        let (text, _) = Self.wire { encoder, _ in
            encoder.head(Self.head(.notFound, [("content-type", "application/json"), ("X-B", "2"), ("x-a", "1"), ("Date", "Sun, 01 Jun 2025 12:00:00 GMT")]), requestMethod: .GET)
        }
        #expect(text == "HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\nX-B: 2\r\nx-a: 1\r\nDate: Sun, 01 Jun 2025 12:00:00 GMT\r\n\r\n")
    }

    @Test func aStreamReusesItsBufferOnceWrittenAndNeverOverwritesOneStillHeld() {
        var encoder = ClientResponseEncoder()
        encoder.head(Self.head(.ok, [("Transfer-Encoding", "chunked")]), requestMethod: .POST)
        _ = encoder.take()
        func address(_ buffer: ByteBuffer) -> Int { buffer.withUnsafeReadableBytes { Int(bitPattern: $0.baseAddress) } }

        encoder.body(ByteBuffer(string: "first"), write: { _ in })
        let firstAddress = address(encoder.take()!)  // written and let go of, as the socket does
        encoder.body(ByteBuffer(string: "second"), write: { _ in })
        let second = encoder.take()!
        #expect(address(second) == firstAddress, "the written buffer is used again: no allocation per token")
        #expect(String(buffer: second) == "6\r\nsecond\r\n")

        // Still held (a socket that has not written it yet): the next burst must not write into it.
        encoder.body(ByteBuffer(string: "third"), write: { _ in })
        let third = encoder.take()!
        #expect(String(buffer: second) == "6\r\nsecond\r\n", "a buffer still held is never changed")
        #expect(String(buffer: third) == "5\r\nthird\r\n")
        #expect(address(third) != address(second))

        encoder.end(trailers: nil)
        #expect(String(buffer: encoder.take()!) == "0\r\n\r\n")
    }
}
