import NIOCore
import NIOHTTP1

/// Reads Ollama's HTTP/1.1 responses off the bytes of one upstream connection: the head, then the body as
/// its framing says (RFC 9112 §6.3) — none (a response to HEAD, 1xx, 204, 304), `Content-Length`, chunked
/// (extensions skipped, trailers kept) or delimited by the connection's close.
///
/// Why not NIO's `HTTPResponseDecoder`: on a stream, every token is one chunk, and NIO's decoder, its
/// pipeline hop and the `NIOAny` boxing of each part cost more than the rest of the proxy's work on it.
/// Here a chunk is a size line scanned in place and a slice of the read buffer: body bytes are never copied.
/// Requests from clients stay on NIO's llhttp decoder, which is what guards the proxy against smuggling;
/// this parser reads only the answers of the one server the proxy was pointed at.
///
/// Pure: bytes in, parts out, no I/O. One request at a time: `expectResponse(toHEAD:)` before each request
/// is sent; bytes that arrive when no response is expected are an error.
struct UpstreamResponseParser {
    /// Longest response head, and longest trailer section (NIO's default limit too).
    static let maxHeadBytes = 80 * 1024
    /// Longest chunk-size line, extensions included.
    static let maxChunkLineBytes = 4 * 1024

    enum Error: Swift.Error, Equatable, CustomStringConvertible {
        case unsolicitedResponse
        case headTooLarge
        case invalidStatusLine
        case unsupportedVersion
        case invalidHeader
        case invalidContentLength
        case switchingProtocols
        case invalidChunkSize
        case chunkLineTooLong
        case missingChunkTerminator
        case trailersTooLarge
        case closedMidHead
        case closedMidBody

        var description: String {
            switch self {
            case .unsolicitedResponse: "response bytes without a request"
            case .headTooLarge: "response head over \(UpstreamResponseParser.maxHeadBytes / 1024) KiB"
            case .invalidStatusLine: "invalid response status line"
            case .unsupportedVersion: "response is not HTTP/1.0 or HTTP/1.1"
            case .invalidHeader: "invalid response header line"
            case .invalidContentLength: "invalid Content-Length"
            case .switchingProtocols: "101 Switching Protocols, which the proxy does not forward"
            case .invalidChunkSize: "invalid chunk size"
            case .chunkLineTooLong: "chunk-size line over \(UpstreamResponseParser.maxChunkLineBytes / 1024) KiB"
            case .missingChunkTerminator: "chunk data not followed by CRLF"
            case .trailersTooLarge: "trailers over \(UpstreamResponseParser.maxHeadBytes / 1024) KiB"
            case .closedMidHead: "connection closed in the middle of the response head"
            case .closedMidBody: "connection closed before the end of the response body"
            }
        }
    }

    private enum Chunked: Equatable {
        /// Before a chunk-size line.
        case size
        /// Inside a chunk's data.
        case data(remaining: Int)
        /// After a chunk's data: its CRLF.
        case dataEnd
        /// After the last chunk: trailer lines up to an empty one.
        case trailers
    }

    private enum State: Equatable {
        /// No request is waiting for an answer.
        case idle
        /// A head is awaited (after any 1xx heads, which are dropped).
        case head(toHEAD: Bool)
        case fixedLength(remaining: Int)
        case chunked(Chunked)
        case untilClose
        /// A parse error was thrown: nothing more is read.
        case failed
    }

    private var state: State = .idle
    /// Bytes received and not parsed yet: a read buffer, or an incomplete line carried into the next read.
    private var buffer = ByteBuffer()
    /// Trailer fields of the chunked body being ended.
    private var trailers: HTTPHeaders?
    private var trailerBytes = 0

    /// Whether a response is under way or awaited: a close now would cut it.
    var isMidResponse: Bool {
        switch self.state {
        case .idle, .failed: false
        case .head, .fixedLength, .chunked, .untilClose: true
        }
    }

    /// Whether some bytes of the awaited response arrived (a head in part, or more).
    var hasResponseBytes: Bool {
        switch self.state {
        case .head: self.buffer.readableBytes > 0
        case .fixedLength, .chunked, .untilClose: true
        case .idle, .failed: false
        }
    }

    /// Whether no response is awaited (none was, or the last one ended).
    var isIdle: Bool { self.state == .idle }

    /// Whether bytes were fed and not parsed yet.
    var hasUnparsedBytes: Bool { self.buffer.readableBytes > 0 }

    /// A request is being sent: its answer is next. `toHEAD`: the answer has no body whatever it says.
    mutating func expectResponse(toHEAD: Bool) {
        // On a connection that failed nothing is read any more: its close tells the exchange.
        guard self.state != .failed else { return }
        precondition(self.state == .idle, "a request sent while a response is awaited")
        self.state = .head(toHEAD: toHEAD)
    }

    /// Takes the bytes of one read; `next()` then hands out what they complete.
    mutating func feed(_ bytes: ByteBuffer) {
        // After an error nothing more is read, so nothing more is kept.
        guard self.state != .failed else { return }
        if self.buffer.readableBytes == 0 {
            self.buffer = bytes
        } else {
            // Only an incomplete tail is carried over, and it is copied into a buffer of its own: writing
            // into the old read buffer would copy all of it, since body slices handed out still share it.
            var merged = ByteBuffer()
            merged.reserveCapacity(self.buffer.readableBytes + bytes.readableBytes)
            merged.writeImmutableBuffer(self.buffer)
            merged.writeImmutableBuffer(bytes)
            self.buffer = merged
        }
    }

    /// The next complete part, or nil when more bytes are needed.
    mutating func next() throws(Error) -> HTTPClientResponsePart? {
        let part = try self.nextPart()
        if case .none = part, self.buffer.readableBytes == 0 {
            // A spent read buffer is let go of: NIO reuses a read buffer only when nothing else holds it.
            self.buffer = ByteBuffer()
        }
        return part
    }

    private mutating func nextPart() throws(Error) -> HTTPClientResponsePart? {
        while true {
            switch self.state {
            case .idle:
                guard self.buffer.readableBytes == 0 else { throw self.fail(.unsolicitedResponse) }
                return nil
            case .failed:
                return nil
            case .head(let toHEAD):
                guard let head = try self.parseHead() else { return nil }
                let code = Int(head.status.code)
                if code >= 100 && code < 200 {
                    // 1xx: dropped, as NIO's decoder does by default; the proxy answers `Expect` itself.
                    if code == 101 { throw self.fail(.switchingProtocols) }
                    continue
                }
                try self.startBody(of: head, toHEAD: toHEAD)
                return .head(head)
            case .fixedLength(let remaining):
                if remaining == 0 {
                    self.state = .idle
                    return .end(nil)
                }
                guard self.buffer.readableBytes > 0 else { return nil }
                let length = min(remaining, self.buffer.readableBytes)
                self.state = .fixedLength(remaining: remaining - length)
                return .body(self.buffer.readSlice(length: length)!)
            case .untilClose:
                guard self.buffer.readableBytes > 0 else { return nil }
                return .body(self.buffer.readSlice(length: self.buffer.readableBytes)!)
            case .chunked(let chunked):
                switch chunked {
                case .size:
                    guard let size = try self.parseChunkSize() else { return nil }
                    self.state = .chunked(size == 0 ? .trailers : .data(remaining: size))
                case .data(let remaining):
                    guard self.buffer.readableBytes > 0 else { return nil }
                    let length = min(remaining, self.buffer.readableBytes)
                    self.state = .chunked(length == remaining ? .dataEnd : .data(remaining: remaining - length))
                    return .body(self.buffer.readSlice(length: length)!)
                case .dataEnd:
                    guard let line = try self.lineEnd(limit: 0, tooLong: .missingChunkTerminator) else { return nil }
                    self.buffer.moveReaderIndex(forwardBy: line.total)
                    self.state = .chunked(.size)
                case .trailers:
                    guard let line = try self.takeLine(
                        limit: Self.maxHeadBytes - self.trailerBytes, tooLong: .trailersTooLarge
                    ) else { return nil }
                    self.trailerBytes += line.readableBytes + 2
                    if line.readableBytes == 0 {
                        let trailers = self.trailers
                        self.trailers = nil
                        self.trailerBytes = 0
                        self.state = .idle
                        return .end(trailers)
                    }
                    guard let (name, value) = line.withUnsafeReadableBytes({ Self.headerField($0[...]) }) else {
                        throw self.fail(.invalidHeader)
                    }
                    if self.trailers == nil { self.trailers = HTTPHeaders() }
                    self.trailers!.add(name: name, value: value)
                }
            }
        }
    }

    /// The connection reached its end: the end of a body delimited by it, nothing when no response was
    /// under way, an error when one was cut.
    mutating func inputEnded() throws(Error) -> HTTPClientResponsePart? {
        switch self.state {
        case .idle, .failed:
            return nil
        case .untilClose:
            self.state = .idle
            return .end(nil)
        case .head:
            // A close before any byte of the answer is the caller's to judge (a reused connection Ollama
            // closed as it was picked): not a parse error.
            guard self.buffer.readableBytes > 0 else {
                self.state = .idle
                return nil
            }
            throw self.fail(.closedMidHead)
        case .fixedLength, .chunked:
            throw self.fail(.closedMidBody)
        }
    }

    // MARK: - Head

    private mutating func fail(_ error: Error) -> Error {
        self.state = .failed
        // Let go of, not cleared: clearing a buffer that body slices still share would copy it.
        self.buffer = ByteBuffer()
        return error
    }

    /// The head, when all of it arrived.
    private mutating func parseHead() throws(Error) -> HTTPResponseHead? {
        guard let headLength = Self.headLength(in: self.buffer) else {
            if self.buffer.readableBytes > Self.maxHeadBytes { throw self.fail(.headTooLarge) }
            return nil
        }
        guard headLength <= Self.maxHeadBytes else { throw self.fail(.headTooLarge) }
        let head = self.buffer.readSlice(length: headLength)!
        let parsed: Result<HTTPResponseHead, Error> = head.withUnsafeReadableBytes { bytes in
            var lines = HeadLines(bytes: bytes)
            guard let statusLine = lines.next() else { return .failure(.invalidStatusLine) }
            let status: (version: HTTPVersion, status: HTTPResponseStatus)
            switch Self.statusLine(statusLine) {
            case .success(let parsed): status = parsed
            case .failure(let error): return .failure(error)
            }
            var headers = HTTPHeaders()
            headers.reserveCapacity(lines.remainingLineCount)
            while let line = lines.next(), !line.isEmpty {
                guard let (name, value) = Self.headerField(line) else { return .failure(.invalidHeader) }
                headers.add(name: name, value: value)
            }
            return .success(HTTPResponseHead(version: status.version, status: status.status, headers: headers))
        }
        switch parsed {
        case .success(let head): return head
        case .failure(let error): throw self.fail(error)
        }
    }

    /// Where the head ends (after its empty line), if it is all in `buffer`. Lines end in CRLF, or in LF
    /// alone, which Go never sends (NIO's llhttp refuses it; accepting it costs nothing here).
    private static func headLength(in buffer: ByteBuffer) -> Int? {
        buffer.withUnsafeReadableBytes { bytes -> Int? in
            let count = min(bytes.count, Self.maxHeadBytes + 1)
            var index = 0
            while index < count {
                guard let newline = Self.index(of: UInt8(ascii: "\n"), in: bytes, from: index, to: count) else { return nil }
                // An empty line: LF right after the previous line's LF, or CR LF.
                let next = newline + 1
                if next < count, bytes[next] == UInt8(ascii: "\n") { return next + 1 }
                if next + 1 < count, bytes[next] == UInt8(ascii: "\r"), bytes[next + 1] == UInt8(ascii: "\n") { return next + 2 }
                if next >= count || (next + 1 >= count && bytes[next] == UInt8(ascii: "\r")) { return nil }
                index = next
            }
            return nil
        }
    }

    /// The first `byte` in `bytes[start..<end]`.
    @inline(__always)
    private static func index(of byte: UInt8, in bytes: UnsafeRawBufferPointer, from start: Int, to end: Int) -> Int? {
        guard start < end else { return nil }
        let found = ByteScan.firstIndex(of: byte, in: UnsafeRawBufferPointer(rebasing: bytes[..<end]), from: start)
        return found < end ? found : nil
    }

    /// `HTTP/1.x SP 3DIGIT [SP reason]`.
    private static func statusLine(
        _ line: UnsafeRawBufferPointer.SubSequence
    ) -> Result<(version: HTTPVersion, status: HTTPResponseStatus), Error> {
        let bytes = UnsafeRawBufferPointer(rebasing: line)
        guard bytes.count >= 12, bytes.starts(with: "HTTP/".utf8), bytes[5].isDigit, bytes[6] == UInt8(ascii: "."),
            bytes[7].isDigit, bytes[8] == UInt8(ascii: " ")
        else { return .failure(.invalidStatusLine) }
        guard bytes[5] == UInt8(ascii: "1"), bytes[7] == UInt8(ascii: "0") || bytes[7] == UInt8(ascii: "1") else {
            return .failure(.unsupportedVersion)
        }
        guard bytes[9].isDigit, bytes[10].isDigit, bytes[11].isDigit else { return .failure(.invalidStatusLine) }
        let code = Int(bytes[9] &- 48) * 100 + Int(bytes[10] &- 48) * 10 + Int(bytes[11] &- 48)
        guard code >= 100 else { return .failure(.invalidStatusLine) }
        let status: HTTPResponseStatus
        if bytes.count > 12 {
            guard bytes[12] == UInt8(ascii: " "), !bytes[13...].contains(where: \.isControlCharacter) else {
                return .failure(.invalidStatusLine)
            }
            let reason = UnsafeRawBufferPointer(rebasing: bytes[13...])
            let known = HTTPResponseStatus(statusCode: code)
            // The usual phrase needs no string of its own.
            status = reason.elementsEqual(known.reasonPhrase.utf8)
                ? known : HTTPResponseStatus(statusCode: code, reasonPhrase: String(decoding: reason, as: UTF8.self))
        } else {
            status = HTTPResponseStatus(statusCode: code, reasonPhrase: "")
        }
        let version = HTTPVersion(major: 1, minor: bytes[7] == UInt8(ascii: "1") ? 1 : 0)
        return .success((version, status))
    }

    /// `name: value`, the value without surrounding spaces; nil unless the name is a token and the value
    /// holds no control characters.
    private static func headerField<Line: Collection<UInt8>>(_ line: Line) -> (String, String)? {
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon != line.startIndex else { return nil }
        let name = line[line.startIndex..<colon]
        guard name.allSatisfy(\.isTokenCharacter) else { return nil }
        var value = line[line.index(after: colon)...]
        while let first = value.first, first == UInt8(ascii: " ") || first == UInt8(ascii: "\t") { value = value.dropFirst() }
        var end = value.endIndex
        while end > value.startIndex {
            let before = value.index(end, offsetBy: -1)
            guard value[before] == UInt8(ascii: " ") || value[before] == UInt8(ascii: "\t") else { break }
            end = before
        }
        value = value[value.startIndex..<end]
        guard !value.contains(where: \.isControlCharacter) else { return nil }
        return (String(decoding: name, as: UTF8.self), String(decoding: value, as: UTF8.self))
    }

    /// Chooses the body's framing (RFC 9112 §6.3) and checks its headers.
    private mutating func startBody(of head: HTTPResponseHead, toHEAD: Bool) throws(Error) {
        let code = head.status.code
        if toHEAD || code == 204 || code == 304 {
            self.state = .fixedLength(remaining: 0)
            return
        }
        if let chunked = TransferCoding.isChunked(head.headers) {
            // Transfer-Encoding overrides Content-Length. Chunked when chunked is the final coding, else the
            // body runs to the close.
            self.state = chunked ? .chunked(.size) : .untilClose
            return
        }
        var length: Int?
        for (name, value) in head.headers where name.equalsLowercaseASCII("content-length") {
            // A list of identical lengths is one length; an empty element, or an empty value, is invalid.
            for element in value.utf8.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false) {
                guard let parsed = Self.decimal(element), length == nil || length == parsed else {
                    throw self.fail(.invalidContentLength)
                }
                length = parsed
            }
        }
        self.state = length.map { .fixedLength(remaining: $0) } ?? .untilClose
    }

    /// Up to 18 digits, with spaces or tabs around them.
    private static func decimal(_ element: Substring.UTF8View) -> Int? {
        var digits = element
        while let first = digits.first, first == UInt8(ascii: " ") || first == UInt8(ascii: "\t") { digits = digits.dropFirst() }
        while let last = digits.last, last == UInt8(ascii: " ") || last == UInt8(ascii: "\t") { digits = digits.dropLast() }
        guard !digits.isEmpty, digits.count <= 18, digits.allSatisfy(\.isDigit) else { return nil }
        return digits.reduce(0) { $0 * 10 + Int($1 &- UInt8(ascii: "0")) }
    }

    // MARK: - Chunked framing

    /// The size of the next chunk, when its whole line arrived; extensions are skipped. Read in place:
    /// this runs once per streamed token.
    private mutating func parseChunkSize() throws(Error) -> Int? {
        guard let line = try self.lineEnd(limit: Self.maxChunkLineBytes, tooLong: .chunkLineTooLong) else { return nil }
        let size = self.buffer.withUnsafeReadableBytes { bytes -> Int? in
            var size = 0
            var digits = 0
            for index in 0..<line.content {
                let byte = bytes[index]
                let value: Int
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): value = Int(byte &- 48)
                case UInt8(ascii: "a")...UInt8(ascii: "f"): value = Int(byte &- 87)
                case UInt8(ascii: "A")...UInt8(ascii: "F"): value = Int(byte &- 55)
                case UInt8(ascii: ";"), UInt8(ascii: " "), UInt8(ascii: "\t"):
                    // An extension (or whitespace before one): ignored, as every server and client does.
                    return digits > 0 ? size : nil
                default:
                    return nil
                }
                digits += 1
                // 15 hex digits at most: no chunk is an exabyte long, and the size cannot overflow.
                guard digits <= 15 else { return nil }
                size = size << 4 | value
            }
            return digits > 0 ? size : nil
        }
        guard let size else { throw self.fail(.invalidChunkSize) }
        self.buffer.moveReaderIndex(forwardBy: line.total)
        return size
    }

    /// Where the next line's content ends and the line with its CRLF (or LF) ends, from the reader index;
    /// nil until its end arrived. A line that cannot end within `limit` content bytes throws `tooLong`.
    private mutating func lineEnd(limit: Int, tooLong: Error) throws(Error) -> (content: Int, total: Int)? {
        let found: (content: Int, total: Int)? = self.buffer.withUnsafeReadableBytes { bytes in
            // The LF may come one byte after the limit, behind a CR.
            guard let newline = Self.index(of: UInt8(ascii: "\n"), in: bytes, from: 0, to: min(bytes.count, limit + 2)) else {
                return nil
            }
            let content = newline > 0 && bytes[newline - 1] == UInt8(ascii: "\r") ? newline - 1 : newline
            return (content, newline + 1)
        }
        guard let found else {
            if self.buffer.readableBytes > limit + 1 { throw self.fail(tooLong) }
            return nil
        }
        guard found.content <= limit else { throw self.fail(tooLong) }
        return found
    }

    /// The next line's content, consumed with its terminator; nil until its end arrived.
    private mutating func takeLine(limit: Int, tooLong: Error) throws(Error) -> ByteBuffer? {
        guard let line = try self.lineEnd(limit: limit, tooLong: tooLong) else { return nil }
        let content = self.buffer.readSlice(length: line.content)!
        self.buffer.moveReaderIndex(forwardBy: line.total - line.content)
        return content
    }
}

/// The lines of a response head, CRLF or LF terminated, without their terminators.
private struct HeadLines {
    let bytes: UnsafeRawBufferPointer
    var index = 0

    init(bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    mutating func next() -> UnsafeRawBufferPointer.SubSequence? {
        guard self.index < self.bytes.count else { return nil }
        var end = self.index
        while end < self.bytes.count, self.bytes[end] != UInt8(ascii: "\n") { end += 1 }
        let contentEnd = end > self.index && self.bytes[end - 1] == UInt8(ascii: "\r") ? end - 1 : end
        let line = self.bytes[self.index..<contentEnd]
        self.index = end + 1
        return line
    }

    /// Lines from here to the end, the empty last one included: enough room for the header fields.
    var remainingLineCount: Int {
        var count = 0
        for byte in self.bytes[self.index...] where byte == UInt8(ascii: "\n") { count += 1 }
        return count
    }

}

extension UInt8 {
    fileprivate var isDigit: Bool { self &- UInt8(ascii: "0") < 10 }

    /// A control character other than HTAB: never in a header value or a reason phrase.
    fileprivate var isControlCharacter: Bool { (self < 0x20 && self != 0x09) || self == 0x7F }

    /// A `tchar` of RFC 9110 §5.6.2: what a header name is made of.
    fileprivate var isTokenCharacter: Bool {
        switch self {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"), UInt8(ascii: "'"),
            UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"),
            UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }
}
