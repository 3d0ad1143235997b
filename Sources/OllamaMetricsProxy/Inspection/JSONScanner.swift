/// A cursor over one complete JSON text in memory that reads the few values the proxy needs and skips
/// everything else without allocating.
///
/// Foundation's decoders would materialise whole documents (a generate reply's `context` array has
/// hundreds of thousands of numbers) and cost microseconds per chunk; this reads bytes in place.
///
/// Leniency is deliberate and one-sided: values the proxy reads (counts, strings, booleans) are parsed
/// strictly, values it skips are only checked for balanced brackets and terminated strings. Anything
/// malformed sets `failed`, and callers discard everything read from a text that failed.
///
/// Keys are compared as raw bytes, escapes included: Go's encoder never escapes the ASCII letters and
/// underscores of the keys we look for.
struct JSONScanner {
    /// The kind of the next value, from its first byte.
    enum ValueKind: Equatable {
        case object, array, string, number, `true`, `false`, null, invalid
    }

    /// Where a string's contents lie in `bytes`.
    struct RawString {
        var contents: Range<Int>
        var hasEscapes: Bool
    }

    let bytes: UnsafeRawBufferPointer
    private(set) var position: Int
    /// Set as soon as anything malformed or truncated was met; every later read returns nil.
    private(set) var failed = false

    init(_ bytes: UnsafeRawBufferPointer, position: Int = 0) {
        self.bytes = bytes
        self.position = position
    }

    var isAtEnd: Bool { position >= bytes.count }

    /// Where `slice` (a key or value handed out by this scanner) starts in `bytes`.
    func offset(of slice: UnsafeRawBufferPointer) -> Int {
        guard let start = slice.baseAddress, let base = bytes.baseAddress else { return 0 }
        return base.distance(to: start)
    }

    mutating func fail() {
        failed = true
        position = bytes.count
    }

    @inline(__always)
    mutating func skipWhitespace() {
        while position < bytes.count, JSONBytes.isWhitespace(bytes[position]) {
            position += 1
        }
    }

    /// Skips whitespace and tells what kind of value follows, without consuming it.
    mutating func peekKind() -> ValueKind {
        skipWhitespace()
        guard !failed, position < bytes.count else { return .invalid }
        switch bytes[position] {
        case UInt8(ascii: "{"): return .object
        case UInt8(ascii: "["): return .array
        case UInt8(ascii: "\""): return .string
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number
        case UInt8(ascii: "t"): return .true
        case UInt8(ascii: "f"): return .false
        case UInt8(ascii: "n"): return .null
        default: return .invalid
        }
    }

    /// Whether only whitespace remains (and nothing failed): the text was exactly one value.
    mutating func isCleanlyFinished() -> Bool {
        skipWhitespace()
        return !failed && position == bytes.count
    }

    // MARK: Objects

    /// Consumes `{` if an object follows; otherwise consumes nothing and returns false.
    mutating func enterObject() -> Bool {
        guard peekKind() == .object else { return false }
        position += 1
        return true
    }

    /// Reads the next member's key and the colon after it, leaving the scanner at the member's value,
    /// which the caller must then read or skip. Returns nil after consuming the closing `}`, or on
    /// malformed input (then `failed` is set). `isFirst` must start true for each object.
    mutating func nextKey(isFirst: inout Bool) -> UnsafeRawBufferPointer? {
        guard enterNextItem(isFirst: &isFirst, closing: UInt8(ascii: "}")) else { return nil }
        skipWhitespace()
        guard let key = scanString() else {
            fail()
            return nil
        }
        skipWhitespace()
        guard position < bytes.count, bytes[position] == UInt8(ascii: ":") else {
            fail()
            return nil
        }
        position += 1
        return UnsafeRawBufferPointer(rebasing: bytes[key.contents])
    }

    /// Reads members until the object's end, handing each key to `body`, which must consume the value.
    /// Returns false if the object was malformed.
    mutating func forEachMember(_ body: (inout JSONScanner, UnsafeRawBufferPointer) -> Void) -> Bool {
        var isFirst = true
        while let key = nextKey(isFirst: &isFirst) {
            body(&self, key)
            if failed { return false }
        }
        return !failed
    }

    /// Reads the elements of an array until its end, handing the scanner at each to `body`, which must
    /// consume the element. Returns false if no array follows (consumed) or it was malformed.
    mutating func forEachElement(_ body: (inout JSONScanner) -> Void) -> Bool {
        guard peekKind() == .array else {
            skipValue()
            return false
        }
        position += 1
        var isFirst = true
        while enterNextItem(isFirst: &isFirst, closing: UInt8(ascii: "]")) {
            body(&self)
            if failed { return false }
        }
        return !failed
    }

    /// Moves past the separator before the next member or element of a container. Returns false after
    /// consuming the container's `closing` bracket, or on malformed input (then `failed` is set).
    private mutating func enterNextItem(isFirst: inout Bool, closing: UInt8) -> Bool {
        skipWhitespace()
        guard !failed, position < bytes.count else {
            fail()
            return false
        }
        if bytes[position] == closing {
            position += 1
            return false
        }
        if !isFirst {
            guard bytes[position] == UInt8(ascii: ",") else {
                fail()
                return false
            }
            position += 1
        }
        isFirst = false
        return true
    }

    // MARK: Values

    /// Skips one value of any kind, however deeply nested, without recursion.
    /// Brackets must balance and match (up to 64 levels; deeper ones only balance); separators inside
    /// skipped containers are not checked.
    @discardableResult
    mutating func skipValue() -> Bool {
        switch peekKind() {
        case .object, .array:
            return skipContainer()
        case .string:
            if scanString() == nil { fail() }
        case .number:
            if !skipNumber() { fail() }
        case .true:
            skipLiteral("true")
        case .false:
            skipLiteral("false")
        case .null:
            skipLiteral("null")
        case .invalid:
            fail()
        }
        return !failed
    }

    /// Reads a count or a duration: a non-negative JSON integer that fits in 64 bits.
    ///
    /// Anything else is treated as absent (nil) but consumed: strings like `"12"`, negative numbers,
    /// and numbers with a fraction or exponent even when integral (`12.0`, `1e3`), since Ollama only
    /// ever writes plain integers there and a different spelling means the field is not what we think.
    mutating func readCount() -> Int64? {
        guard peekKind() == .number else {
            skipValue()
            return nil
        }
        let end = bytes.count
        var isNegative = false
        if bytes[position] == UInt8(ascii: "-") {
            isNegative = true
            position += 1
        }
        guard position < end, JSONBytes.isDigit(bytes[position]) else {
            fail()
            return nil
        }
        var value: Int64 = 0
        var overflowed = false
        if bytes[position] == UInt8(ascii: "0") {
            position += 1
        } else {
            while position < end, JSONBytes.isDigit(bytes[position]) {
                let (times10, o1) = value.multipliedReportingOverflow(by: 10)
                let (sum, o2) = times10.addingReportingOverflow(Int64(bytes[position] &- UInt8(ascii: "0")))
                overflowed = overflowed || o1 || o2
                value = sum
                position += 1
            }
        }
        var isIntegral = true
        if position < end, bytes[position] == UInt8(ascii: ".") {
            isIntegral = false
            position += 1
            guard skipDigits() else { return nil }
        }
        if position < end, bytes[position] | 0x20 == UInt8(ascii: "e") {
            isIntegral = false
            position += 1
            if position < end, bytes[position] == UInt8(ascii: "+") || bytes[position] == UInt8(ascii: "-") {
                position += 1
            }
            guard skipDigits() else { return nil }
        }
        if position < end, !JSONBytes.endsPrimitive(bytes[position]) {
            fail()
            return nil
        }
        guard isIntegral, !isNegative, !overflowed else { return nil }
        return value
    }

    /// Reads a string value, unescaped; any other kind of value is consumed and gives nil.
    mutating func readString() -> String? {
        guard peekKind() == .string else {
            skipValue()
            return nil
        }
        guard let scanned = scanString() else {
            fail()
            return nil
        }
        guard let decoded = string(RawString(contents: scanned.contents, hasEscapes: scanned.hasEscapes)) else {
            fail()
            return nil
        }
        return decoded
    }

    /// Decodes a string read by `readRawString`; nil if it has an invalid escape.
    func string(_ raw: RawString) -> String? {
        let contents = UnsafeRawBufferPointer(rebasing: bytes[raw.contents])
        return raw.hasEscapes ? JSONBytes.unescape(contents) : String(decoding: contents, as: UTF8.self)
    }

    /// Reads a string value without decoding it (its raw contents between the quotes), so that a caller can
    /// decide later whether the string is worth a `String`; any other kind of value is consumed and gives nil.
    mutating func readRawString() -> RawString? {
        guard peekKind() == .string else {
            skipValue()
            return nil
        }
        guard let scanned = scanString() else {
            fail()
            return nil
        }
        return RawString(contents: scanned.contents, hasEscapes: scanned.hasEscapes)
    }

    /// The string member `name` of the object at the scanner (nil if absent or not a string), consuming the
    /// object; any other value is consumed and gives nil.
    mutating func readStringMember(_ name: StaticString) -> String? {
        guard enterObject() else {
            skipValue()
            return nil
        }
        var value: String?
        _ = forEachMember { scanner, key in
            if key.hasBytes(name) {
                value = scanner.readString()
            } else {
                scanner.skipValue()
            }
        }
        return value
    }

    /// Reads `true` or `false`; any other kind of value (including `null`) is consumed and gives nil.
    mutating func readBool() -> Bool? {
        switch peekKind() {
        case .true:
            skipLiteral("true")
            return failed ? nil : true
        case .false:
            skipLiteral("false")
            return failed ? nil : false
        default:
            skipValue()
            return nil
        }
    }

    /// Whether the next value is an empty array (`[]`, whitespace allowed), consuming it either way.
    mutating func readIsEmptyArray() -> Bool {
        guard peekKind() == .array else {
            skipValue()
            return false
        }
        var probe = self
        probe.position += 1
        probe.skipWhitespace()
        if probe.position < bytes.count, bytes[probe.position] == UInt8(ascii: "]") {
            position = probe.position + 1
            return true
        }
        skipValue()
        return false
    }

    // MARK: Primitives

    /// Scans a string starting at its opening quote; leaves the scanner after the closing quote.
    mutating func scanString() -> (contents: Range<Int>, hasEscapes: Bool)? {
        let end = bytes.count
        guard position < end, bytes[position] == UInt8(ascii: "\"") else { return nil }
        let start = position + 1
        var index = start
        var hasEscapes = false
        while index < end {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                position = index + 1
                return (start..<index, hasEscapes)
            }
            if byte == UInt8(ascii: "\\") {
                hasEscapes = true
                index += 2
            } else {
                index += 1
            }
        }
        return nil
    }

    private mutating func skipDigits() -> Bool {
        let start = position
        while position < bytes.count, JSONBytes.isDigit(bytes[position]) {
            position += 1
        }
        if position == start {
            fail()
            return false
        }
        return true
    }

    private mutating func skipNumber() -> Bool {
        let start = position
        while position < bytes.count, JSONBytes.isNumberByte(bytes[position]) {
            position += 1
        }
        return position > start
    }

    private mutating func skipLiteral(_ literal: StaticString) {
        let count = literal.utf8CodeUnitCount
        guard position + count <= bytes.count,
              UnsafeRawBufferPointer(rebasing: bytes[position..<(position + count)]).hasBytes(literal)
        else {
            fail()
            return
        }
        position += count
        if position < bytes.count, !JSONBytes.endsPrimitive(bytes[position]) {
            fail()
        }
    }

    private mutating func skipContainer() -> Bool {
        var skipper = JSONValueSkipper()
        guard case .ended(let end) = skipper.advance(bytes, from: position) else {
            fail()
            return false
        }
        position = end
        return true
    }
}

/// Byte classes and string unescaping shared by the JSON readers.
enum JSONBytes {
    @inline(__always)
    static func isWhitespace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09
    }

    @inline(__always)
    static func isDigit(_ byte: UInt8) -> Bool {
        byte &- UInt8(ascii: "0") < 10
    }

    @inline(__always)
    static func isNumberByte(_ byte: UInt8) -> Bool {
        isDigit(byte) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "+")
            || byte == UInt8(ascii: ".") || byte | 0x20 == UInt8(ascii: "e")
    }

    /// Bytes that may legally follow a number or literal.
    @inline(__always)
    static func endsPrimitive(_ byte: UInt8) -> Bool {
        isWhitespace(byte) || byte == UInt8(ascii: ",") || byte == UInt8(ascii: "}") || byte == UInt8(ascii: "]")
    }

    /// Decodes the contents of a JSON string (without its quotes). Lone surrogates become U+FFFD, as in
    /// Go's decoder; an invalid escape gives nil. Invalid UTF-8 is repaired by `String(decoding:)`.
    static func unescape(_ raw: UnsafeRawBufferPointer) -> String? {
        var out: [UInt8] = []
        out.reserveCapacity(raw.count)
        let end = raw.count
        var index = 0
        while index < end {
            let byte = raw[index]
            guard byte == UInt8(ascii: "\\") else {
                out.append(byte)
                index += 1
                continue
            }
            guard index + 1 < end else { return nil }
            let escape = raw[index + 1]
            index += 2
            switch escape {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"):
                out.append(escape)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                guard let unit = hex4(raw, at: index) else { return nil }
                index += 4
                var scalar = unit
                if (0xD800...0xDBFF).contains(unit) {
                    if index + 6 <= end, raw[index] == UInt8(ascii: "\\"), raw[index + 1] == UInt8(ascii: "u"),
                       let low = hex4(raw, at: index + 2), (0xDC00...0xDFFF).contains(low) {
                        scalar = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
                        index += 6
                    } else {
                        scalar = 0xFFFD
                    }
                } else if (0xDC00...0xDFFF).contains(unit) {
                    scalar = 0xFFFD
                }
                appendUTF8(of: scalar, to: &out)
            default:
                return nil
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static func hex4(_ raw: UnsafeRawBufferPointer, at index: Int) -> UInt32? {
        guard index + 4 <= raw.count else { return nil }
        var value: UInt32 = 0
        for offset in 0..<4 {
            let byte = raw[index + offset]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: return nil
            }
            value = value << 4 | UInt32(digit)
        }
        return value
    }

    private static func appendUTF8(of scalar: UInt32, to out: inout [UInt8]) {
        switch scalar {
        case 0..<0x80:
            out.append(UInt8(scalar))
        case 0x80..<0x800:
            out.append(UInt8(0xC0 | (scalar >> 6)))
            out.append(UInt8(0x80 | (scalar & 0x3F)))
        case 0x800..<0x10000:
            out.append(UInt8(0xE0 | (scalar >> 12)))
            out.append(UInt8(0x80 | ((scalar >> 6) & 0x3F)))
            out.append(UInt8(0x80 | (scalar & 0x3F)))
        default:
            out.append(UInt8(0xF0 | (scalar >> 18)))
            out.append(UInt8(0x80 | ((scalar >> 12) & 0x3F)))
            out.append(UInt8(0x80 | ((scalar >> 6) & 0x3F)))
            out.append(UInt8(0x80 | (scalar & 0x3F)))
        }
    }
}

extension UnsafeRawBufferPointer {
    /// Byte-wise equality with an ASCII literal, without creating a `String`.
    @inline(__always)
    func hasBytes(_ literal: StaticString) -> Bool {
        let count = literal.utf8CodeUnitCount
        guard self.count == count else { return false }
        let expected = literal.utf8Start
        for index in 0..<count where self[index] != expected[index] {
            return false
        }
        return true
    }
}
