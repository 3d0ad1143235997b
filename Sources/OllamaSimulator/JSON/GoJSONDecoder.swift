/// Why a request body could not be decoded, with the message Go's `encoding/json` `Decoder.Decode` would give.
enum GoJSONDecodingError: Error, Equatable {
    /// Nothing but whitespace: Go returns `io.EOF` (Ollama answers "missing request body").
    case empty
    /// The body ended inside a value: `io.ErrUnexpectedEOF`.
    case unexpectedEnd
    /// A syntax error, with Go's scanner message.
    case syntax(String)
    /// A value of the wrong JSON kind for the Go type it is decoded into.
    case type(String)

    /// `err.Error()` as Go prints it.
    var goMessage: String {
        switch self {
        case .empty: "EOF"
        case .unexpectedEnd: "unexpected EOF"
        case .syntax(let message), .type(let message): message
        }
    }
}

/// Parses the first JSON value of a request body as Go's `json.Decoder` does, reporting Go's error messages.
///
/// Like `Decoder.Decode`, bytes after the first complete value are ignored.
struct GoJSONDecoder {
    private let bytes: [UInt8]
    private var index = 0

    static func decode(_ bytes: [UInt8]) throws(GoJSONDecodingError) -> JSONValue {
        var decoder = GoJSONDecoder(bytes: bytes)
        decoder.skipWhitespace()
        guard decoder.index < bytes.count else { throw .empty }
        return try decoder.parseValue()
    }

    private init(bytes: [UInt8]) { self.bytes = bytes }

    private var current: UInt8? { index < bytes.count ? bytes[index] : nil }

    private mutating func skipWhitespace() {
        while let byte = current, byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D { index += 1 }
    }

    private func invalid(_ byte: UInt8, _ context: String) -> GoJSONDecodingError {
        .syntax("invalid character \(Self.quoteChar(byte)) \(context)")
    }

    private mutating func parseValue() throws(GoJSONDecodingError) -> JSONValue {
        skipWhitespace()
        guard let byte = current else { throw .unexpectedEnd }
        switch byte {
        case UInt8(ascii: "{"): return try parseObject()
        case UInt8(ascii: "["): return try parseArray()
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try parseNumber())
        case UInt8(ascii: "t"): try parseLiteral("true"); return .bool(true)
        case UInt8(ascii: "f"): try parseLiteral("false"); return .bool(false)
        case UInt8(ascii: "n"): try parseLiteral("null"); return .null
        default: throw invalid(byte, "looking for beginning of value")
        }
    }

    private mutating func parseObject() throws(GoJSONDecodingError) -> JSONValue {
        index += 1  // {
        var members: [JSONMember] = []
        skipWhitespace()
        guard let first = current else { throw .unexpectedEnd }
        if first == UInt8(ascii: "}") {
            index += 1
            return .object(members)
        }
        while true {
            skipWhitespace()
            guard let quote = current else { throw .unexpectedEnd }
            guard quote == UInt8(ascii: "\"") else {
                throw invalid(quote, "looking for beginning of object key string")
            }
            let key = try parseString()
            skipWhitespace()
            guard let colon = current else { throw .unexpectedEnd }
            guard colon == UInt8(ascii: ":") else { throw invalid(colon, "after object key") }
            index += 1
            let value = try parseValue()
            members.append(JSONMember(key: key, value: value))
            skipWhitespace()
            guard let separator = current else { throw .unexpectedEnd }
            index += 1
            if separator == UInt8(ascii: "}") { return .object(members) }
            guard separator == UInt8(ascii: ",") else {
                throw invalid(separator, "after object key:value pair")
            }
        }
    }

    private mutating func parseArray() throws(GoJSONDecodingError) -> JSONValue {
        index += 1  // [
        var elements: [JSONValue] = []
        skipWhitespace()
        guard let first = current else { throw .unexpectedEnd }
        if first == UInt8(ascii: "]") {
            index += 1
            return .array(elements)
        }
        while true {
            elements.append(try parseValue())
            skipWhitespace()
            guard let separator = current else { throw .unexpectedEnd }
            index += 1
            if separator == UInt8(ascii: "]") { return .array(elements) }
            guard separator == UInt8(ascii: ",") else { throw invalid(separator, "after array element") }
        }
    }

    private mutating func parseString() throws(GoJSONDecodingError) -> String {
        index += 1  // opening quote
        var decoded: [UInt8] = []
        while true {
            // Copy the run of ordinary bytes in one go: request bodies can hold megabytes of text.
            let runEnd = endOfPlainRun(from: index)
            if runEnd < bytes.count, bytes[runEnd] == UInt8(ascii: "\""), decoded.isEmpty {
                defer { index = runEnd + 1 }
                return String(decoding: bytes[index..<runEnd], as: UTF8.self)
            }
            decoded.append(contentsOf: bytes[index..<runEnd])
            index = runEnd
            guard let byte = current else { throw .unexpectedEnd }
            index += 1
            switch byte {
            case UInt8(ascii: "\""):
                return String(decoding: decoded, as: UTF8.self)
            case UInt8(ascii: "\\"):
                try appendEscape(to: &decoded)
            default:
                throw invalid(byte, "in string literal")  // a control character
            }
        }
    }

    /// The index of the first quote, backslash or control character at or after `start` (or the end).
    private func endOfPlainRun(from start: Int) -> Int {
        bytes.withUnsafeBufferPointer { buffer in
            var position = start
            while position < buffer.count {
                let byte = buffer[position]
                if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") || byte < 0x20 { break }
                position += 1
            }
            return position
        }
    }

    /// Decodes the escape after a backslash.
    private mutating func appendEscape(to decoded: inout [UInt8]) throws(GoJSONDecodingError) {
        guard let escape = current else { throw .unexpectedEnd }
        index += 1
        switch escape {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): decoded.append(escape)
        case UInt8(ascii: "b"): decoded.append(0x08)
        case UInt8(ascii: "f"): decoded.append(0x0C)
        case UInt8(ascii: "n"): decoded.append(0x0A)
        case UInt8(ascii: "r"): decoded.append(0x0D)
        case UInt8(ascii: "t"): decoded.append(0x09)
        case UInt8(ascii: "u"):
            var code = try parseHex4()
            if (0xD800..<0xDC00).contains(code), bytes.count >= index + 6,
                bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u")
            {
                let saved = index
                index += 2
                let low = try parseHex4()
                if (0xDC00..<0xE000).contains(low) {
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                } else {
                    index = saved
                }
            }
            let scalar = Unicode.Scalar(code) ?? "\u{FFFD}"
            decoded.append(contentsOf: Array(String(Character(scalar)).utf8))
        default:
            throw invalid(escape, "in string escape code")
        }
    }

    private mutating func parseHex4() throws(GoJSONDecodingError) -> UInt32 {
        var code: UInt32 = 0
        for _ in 0..<4 {
            guard let byte = current else { throw .unexpectedEnd }
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw invalid(byte, "in \\u hexadecimal character escape")
            }
            code = code << 4 | UInt32(digit)
            index += 1
        }
        return code
    }

    private mutating func parseNumber() throws(GoJSONDecodingError) -> String {
        let start = index
        func isDigit(_ byte: UInt8?) -> Bool { byte.map { (0x30...0x39).contains($0) } ?? false }
        if current == UInt8(ascii: "-") {
            index += 1
            guard let byte = current else { throw .unexpectedEnd }
            guard isDigit(byte) else { throw invalid(byte, "in numeric literal") }
        }
        if current == UInt8(ascii: "0") {
            index += 1
        } else {
            while isDigit(current) { index += 1 }
        }
        if current == UInt8(ascii: ".") {
            index += 1
            guard let byte = current else { throw .unexpectedEnd }
            guard isDigit(byte) else { throw invalid(byte, "after decimal point in numeric literal") }
            while isDigit(current) { index += 1 }
        }
        if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
            index += 1
            if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { index += 1 }
            guard let byte = current else { throw .unexpectedEnd }
            guard isDigit(byte) else { throw invalid(byte, "in exponent of numeric literal") }
            while isDigit(current) { index += 1 }
        }
        return String(decoding: bytes[start..<index], as: UTF8.self)
    }

    private mutating func parseLiteral(_ literal: StaticString) throws(GoJSONDecodingError) {
        let expected = Array(UnsafeBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount))
        let name = String(decoding: expected, as: UTF8.self)
        index += 1
        for position in 1..<expected.count {
            guard let byte = current else { throw .unexpectedEnd }
            guard byte == expected[position] else {
                let want = Self.quoteChar(expected[position])
                throw invalid(byte, "in literal \(name) (expecting \(want))")
            }
            index += 1
        }
    }

    /// Go's `quoteChar`: the offending byte in single quotes, escaped like `strconv.Quote` does.
    static func quoteChar(_ byte: UInt8) -> String {
        switch byte {
        case UInt8(ascii: "'"): return #"'\''"#
        case UInt8(ascii: "\""): return #"'"'"#
        case 0x07: return #"'\a'"#
        case 0x08: return #"'\b'"#
        case 0x0C: return #"'\f'"#
        case 0x0A: return #"'\n'"#
        case 0x0D: return #"'\r'"#
        case 0x09: return #"'\t'"#
        case 0x0B: return #"'\v'"#
        case UInt8(ascii: "\\"): return #"'\\'"#
        case 0x00..<0x20, 0x7F:
            let hex = String(byte, radix: 16)
            return #"'\x"# + (hex.count < 2 ? "0" + hex : hex) + "'"
        case 0x80...0x9F, 0xAD:
            // Non-printable code points in Latin-1 (strconv.Quote escapes them as \u00XX).
            let hex = String(byte, radix: 16)
            return #"'\u00"# + (hex.count < 2 ? "0" + hex : hex) + "'"
        default:
            return "'" + String(Character(Unicode.Scalar(byte))) + "'"
        }
    }
}
