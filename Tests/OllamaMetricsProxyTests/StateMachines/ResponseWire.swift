import NIOCore
import NIOHTTP1

@testable import OllamaMetricsProxy

/// Ollama's side of a handler test: response parts turned into the bytes Ollama sends, framed as their head
/// says, since `UpstreamConnectionHandler` reads bytes.
struct OllamaWireWriter {
    private var encoder = ClientResponseEncoder()

    /// Whether the end of the response being written has bytes of its own (the last chunk); otherwise the
    /// response is complete with its head (no body) or with the last of its declared length.
    var endHasBytes: Bool { self.encoder.framing == .chunked }

    /// The bytes of `part`; `method` is the request's (a response to HEAD has no body).
    mutating func bytes(of part: HTTPClientResponsePart, method: HTTPMethod = .GET) -> ByteBuffer {
        var written = ByteBuffer()
        let write: (ByteBuffer) -> Void = { written.writeImmutableBuffer($0) }
        switch part {
        case .head(let head): self.encoder.head(head, requestMethod: method)
        case .body(let body): self.encoder.body(body, write: write)
        case .end(let trailers): self.encoder.end(trailers: trailers)
        }
        if let gathered = self.encoder.take() { written.writeImmutableBuffer(gathered) }
        return written
    }
}

/// A client's side of a handler test: the proxy's response bytes read back as parts, with the proxy's own
/// parser (tested against NIO's decoder on its own). Informational heads are left out.
struct ClientWireReader {
    private var parser = UpstreamResponseParser()
    private(set) var parts: [HTTPServerResponsePart] = []
    /// What could not be read as HTTP responses.
    private(set) var problems: [String] = []

    /// Reads `bytes`. `nextMethod` gives the method of the request the next response answers.
    mutating func read(_ bytes: ByteBuffer, nextMethod: () -> HTTPMethod = { .GET }) {
        guard self.problems.isEmpty else { return }
        self.parser.feed(bytes)
        do {
            while true {
                if self.parser.isIdle {
                    guard self.parser.hasUnparsedBytes else { return }
                    self.parser.expectResponse(toHEAD: nextMethod() == .HEAD)
                }
                guard let part = try self.parser.next() else { return }
                self.append(part)
            }
        } catch {
            self.problems.append("the client got bytes that are not a response: \(error)")
        }
    }

    /// The connection closed: a body delimited by the close ends here.
    mutating func connectionClosed() {
        guard self.problems.isEmpty, !self.parser.isIdle else { return }
        if let end = try? self.parser.inputEnded() { self.append(end) }
    }

    private mutating func append(_ part: HTTPClientResponsePart) {
        switch part {
        case .head(let head): self.parts.append(.head(head))
        case .body(let body): self.parts.append(.body(.byteBuffer(body)))
        case .end(let trailers): self.parts.append(.end(trailers))
        }
    }
}
