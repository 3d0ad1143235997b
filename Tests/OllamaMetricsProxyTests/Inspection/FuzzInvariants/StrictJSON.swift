/// An RFC 8259 validator, strict where the proxy's scanner is deliberately lenient (separators, numbers,
/// escapes and control characters inside skipped values): the judge of "valid JSON stays valid JSON".
/// UTF-8 is not checked, as Go's decoder does not reject invalid UTF-8 either.
enum StrictJSON {
    /// Nil when nesting is too deep to judge here.
    static func isValid(_ bytes: [UInt8]) -> Bool? {
        var validator = Validator(bytes: bytes)
        validator.skipWhitespace()
        let result = validator.value(depth: 0)
        validator.skipWhitespace()
        guard let result else { return nil }
        return result && validator.position == bytes.count
    }

    private struct Validator {
        let bytes: [UInt8]
        var position = 0
        static let maximumDepth = 200

        private var next: UInt8? { position < bytes.count ? bytes[position] : nil }

        mutating func skipWhitespace() {
            while let byte = next, byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 { position += 1 }
        }

        private mutating func consume(_ byte: UInt8) -> Bool {
            guard next == byte else { return false }
            position += 1
            return true
        }

        /// A value; nil when too deeply nested.
        mutating func value(depth: Int) -> Bool? {
            guard depth < Self.maximumDepth else { return nil }
            switch next {
            case UInt8(ascii: "{"): return container(closing: UInt8(ascii: "}"), depth: depth, isObject: true)
            case UInt8(ascii: "["): return container(closing: UInt8(ascii: "]"), depth: depth, isObject: false)
            case UInt8(ascii: "\""): return string()
            case UInt8(ascii: "t"): return literal("true")
            case UInt8(ascii: "f"): return literal("false")
            case UInt8(ascii: "n"): return literal("null")
            default: return number()
            }
        }

        private mutating func container(closing: UInt8, depth: Int, isObject: Bool) -> Bool? {
            position += 1
            skipWhitespace()
            if consume(closing) { return true }
            while true {
                skipWhitespace()
                if isObject {
                    guard string() else { return false }
                    skipWhitespace()
                    guard consume(UInt8(ascii: ":")) else { return false }
                    skipWhitespace()
                }
                guard let valid = value(depth: depth + 1) else { return nil }
                guard valid else { return false }
                skipWhitespace()
                if consume(closing) { return true }
                guard consume(UInt8(ascii: ",")) else { return false }
            }
        }

        private mutating func string() -> Bool {
            guard consume(UInt8(ascii: "\"")) else { return false }
            while let byte = next {
                position += 1
                switch byte {
                case UInt8(ascii: "\""):
                    return true
                case UInt8(ascii: "\\"):
                    guard let escaped = next else { return false }
                    position += 1
                    if escaped == UInt8(ascii: "u") {
                        for _ in 0..<4 {
                            guard let hex = next, hex.isHexDigit else { return false }
                            position += 1
                        }
                    } else if !Array(#""\/bfnrt"#.utf8).contains(escaped) {
                        return false
                    }
                case 0x00..<0x20:
                    return false
                default:
                    continue
                }
            }
            return false
        }

        private mutating func literal(_ word: StaticString) -> Bool {
            let count = word.utf8CodeUnitCount
            guard position + count <= bytes.count,
                  bytes[position..<(position + count)].elementsEqual(UnsafeBufferPointer(start: word.utf8Start, count: count))
            else { return false }
            position += count
            return true
        }

        private mutating func number() -> Bool {
            _ = consume(UInt8(ascii: "-"))
            if !consume(UInt8(ascii: "0")) {
                guard digits() else { return false }
            }
            if consume(UInt8(ascii: ".")) {
                guard digits() else { return false }
            }
            if consume(UInt8(ascii: "e")) || consume(UInt8(ascii: "E")) {
                if !consume(UInt8(ascii: "+")) { _ = consume(UInt8(ascii: "-")) }
                guard digits() else { return false }
            }
            return true
        }

        /// One or more digits.
        private mutating func digits() -> Bool {
            let start = position
            while let byte = next, byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") { position += 1 }
            return position > start
        }
    }
}

private extension UInt8 {
    var isHexDigit: Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(self) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(self | 0x20)
    }
}
