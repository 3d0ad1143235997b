import NIOCore
import NIOHTTP1

/// Writes responses to the client as HTTP/1.x bytes: the head as `ClientResponseHead` made it, and the body
/// framed as that head says — chunked (a hex size line before each piece), as is, or not at all (a response
/// to HEAD, 1xx, 204, 304).
///
/// Why not NIO's `HTTPResponseEncoder`: it writes every streamed chunk as three buffers, two of them
/// allocated, formats the size through a `String`, and each part reaches it boxed in `NIOAny`. Here what a
/// read burst brings becomes one buffer — head, size lines, bytes and end together — written once.
///
/// Pieces are gathered in `output` until `take()`; a piece larger than `copyLimit` is not copied but handed
/// to `write` in order with what was gathered before it. While a chunked body streams, the buffer of one
/// burst is used again for the next once the socket has written it, so a streamed token allocates nothing.
struct ClientResponseEncoder {
    /// How the body of the response being written is delimited.
    enum BodyFraming: Equatable {
        /// No body may follow the head: whatever arrives is dropped, and the end writes nothing.
        case none
        /// Bytes as they are: delimited by the head's `Content-Length`, or by the connection's close.
        case identity
        case chunked
    }

    /// Larger body pieces are written as their own buffer rather than copied into the gathered one.
    static let copyLimit = 16 * 1024

    private(set) var framing: BodyFraming = .identity
    private var output: ByteBuffer?
    /// The last burst's buffer, to be used again: cleared in place when nothing else holds it any more (the
    /// socket wrote it), copied on write otherwise. Kept only in the middle of a chunked body.
    private var spare: ByteBuffer?

    /// Whether bytes are gathered and not taken yet.
    var hasOutput: Bool { self.output != nil }

    /// Adds a response head. A final head (not 1xx) sets the framing of the body that follows.
    mutating func head(_ head: HTTPResponseHead, requestMethod: HTTPMethod) {
        let code = head.status.code
        if code >= 200 {
            if requestMethod == .HEAD || code == 204 || code == 304 {
                self.framing = .none
            } else if head.version.major == 1 && head.version.minor >= 1, TransferCoding.isChunked(head.headers) == true {
                self.framing = .chunked
            } else {
                self.framing = .identity
            }
        }
        var size = 32 + head.status.reasonPhrase.utf8.count
        for (name, value) in head.headers { size += name.utf8.count + value.utf8.count + 4 }
        // Room for the first bytes of the body too: they mostly come in the same burst.
        self.reserve(code >= 200 ? size + 1024 : size)
        Self.writeHead(head, into: &self.output!)
    }

    /// Adds a piece of the body, framed.
    mutating func body(_ bytes: ByteBuffer, write: (ByteBuffer) -> Void) {
        let count = bytes.readableBytes
        guard count > 0 else { return }
        switch self.framing {
        case .none:
            return
        case .identity:
            if count > Self.copyLimit {
                if let gathered = self.take() { write(gathered) }
                write(bytes)
                return
            }
            self.reserve(count)
            self.output!.writeImmutableBuffer(bytes)
        case .chunked:
            if count > Self.copyLimit {
                self.reserve(18)
                Self.writeChunkSize(count, into: &self.output!)
                write(self.take()!)
                write(bytes)
                self.reserve(2 + 5)
                self.output!.writeStaticString("\r\n")
                return
            }
            // Room for the size line, the bytes, their CRLF and a last chunk, should the end follow.
            self.reserve(count + 18 + 2 + 5)
            Self.writeChunkSize(count, into: &self.output!)
            self.output!.writeImmutableBuffer(bytes)
            self.output!.writeStaticString("\r\n")
        }
    }

    /// Adds the end of the body: the last chunk and the trailers when chunked; nothing otherwise.
    mutating func end(trailers: HTTPHeaders?) {
        defer { self.framing = .identity }
        guard self.framing == .chunked else { return }
        guard let trailers, !trailers.isEmpty else {
            self.reserve(5)
            self.output!.writeStaticString("0\r\n\r\n")
            return
        }
        var size = 5
        for (name, value) in trailers { size += name.utf8.count + value.utf8.count + 4 }
        self.reserve(size)
        self.output!.writeStaticString("0\r\n")
        Self.writeFields(trailers, into: &self.output!)
        self.output!.writeStaticString("\r\n")
    }

    /// The bytes gathered since the last call, if any.
    mutating func take() -> ByteBuffer? {
        guard let output = self.output else { return nil }
        self.output = nil
        self.spare = self.framing == .chunked && output.capacity <= Self.copyLimit ? output : nil
        return output
    }

    // MARK: - Bytes

    /// Makes room for `count` more bytes; a new buffer is sized for what the burst is known to need.
    @inline(__always)
    private mutating func reserve(_ count: Int) {
        if self.output == nil {
            // Moved, not copied: a second reference would make the clear copy it.
            swap(&self.output, &self.spare)
            if self.output != nil, self.output!.capacity >= count {
                self.output!.clear()
            } else {
                self.output = ByteBufferAllocator().buffer(capacity: max(count, 64))
            }
        } else if self.output!.writableBytes < count {
            self.output!.reserveCapacity(minimumWritableBytes: count)
        }
    }

    private static func writeHead(_ head: HTTPResponseHead, into buffer: inout ByteBuffer) {
        if head.version.major == 1 && head.version.minor == 1 {
            buffer.writeStaticString("HTTP/1.1 ")
        } else {
            buffer.writeStaticString("HTTP/")
            buffer.writeString(String(head.version.major))
            buffer.writeStaticString(".")
            buffer.writeString(String(head.version.minor))
            buffer.writeStaticString(" ")
        }
        let code = Int(head.status.code)
        buffer.writeInteger(UInt8(ascii: "0") &+ UInt8(code / 100 % 10))
        buffer.writeInteger(UInt8(ascii: "0") &+ UInt8(code / 10 % 10))
        buffer.writeInteger(UInt8(ascii: "0") &+ UInt8(code % 10))
        buffer.writeStaticString(" ")
        buffer.writeString(head.status.reasonPhrase)
        buffer.writeStaticString("\r\n")
        Self.writeFields(head.headers, into: &buffer)
        buffer.writeStaticString("\r\n")
    }

    private static func writeFields(_ fields: HTTPHeaders, into buffer: inout ByteBuffer) {
        for (name, value) in fields {
            buffer.writeString(name)
            buffer.writeStaticString(": ")
            buffer.writeString(value)
            buffer.writeStaticString("\r\n")
        }
    }

    private static let hexDigits: StaticString = "0123456789abcdef"

    /// `size` in lowercase hex without leading zeros, then CRLF: the line before a chunk's bytes.
    @inline(__always)
    static func writeChunkSize(_ size: Int, into buffer: inout ByteBuffer) {
        var digits = (Int.bitWidth - size.leadingZeroBitCount + 3) / 4
        let digitTable = Self.hexDigits.utf8Start
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: digits + 2) { target in
            var index = 0
            while digits > 0 {
                digits -= 1
                target[index] = digitTable[(size >> (digits * 4)) & 0xF]
                index += 1
            }
            target[index] = UInt8(ascii: "\r")
            target[index + 1] = UInt8(ascii: "\n")
            return index + 2
        }
    }
}
