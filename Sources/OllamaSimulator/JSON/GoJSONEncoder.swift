/// Writes JSON byte-for-byte as Go's `encoding/json` does: compact, `<` `>` `&` and U+2028/U+2029 escaped,
/// `\b` `\f` `\n` `\r` `\t` short escapes, other control characters as lowercase `\u00xx`, other non-ASCII raw UTF-8.
enum GoJSON {
    static func encode(_ value: JSONValue) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        append(value, to: &out)
        return out
    }

    static func encodeString(_ value: JSONValue) -> String {
        String(decoding: encode(value), as: UTF8.self)
    }

    static func append(_ value: JSONValue, to out: inout [UInt8]) {
        switch value {
        case .null:
            out.append(contentsOf: "null".utf8)
        case .bool(let flag):
            out.append(contentsOf: (flag ? "true" : "false").utf8)
        case .number(let literal):
            out.append(contentsOf: literal.utf8)
        case .string(let text):
            appendString(text, to: &out)
        case .array(let elements):
            out.append(UInt8(ascii: "["))
            for (index, element) in elements.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                append(element, to: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let members):
            out.append(UInt8(ascii: "{"))
            for (index, member) in members.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                appendString(member.key, to: &out)
                out.append(UInt8(ascii: ":"))
                append(member.value, to: &out)
            }
            out.append(UInt8(ascii: "}"))
        case .raw(let bytes):
            out.append(contentsOf: bytes)
        }
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    /// Bytes that are not copied as they are: `"`, `\\`, controls, `<`, `>`, `&`, and 0xE2 (may start U+2028/9).
    private static let specialBytes: [Bool] = (0..<256).map { byte in
        byte < 0x20 || byte == 0x22 || byte == 0x5C || byte == 0x3C || byte == 0x3E || byte == 0x26 || byte == 0xE2
    }

    static func appendString(_ text: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        var text = text
        text.withUTF8 { bytes in
            out.reserveCapacity(out.count + bytes.count + 1)
            specialBytes.withUnsafeBufferPointer { special in
                var index = 0
                var runStart = 0
                while index < bytes.count {
                    let byte = bytes[index]
                    guard special[Int(byte)] else {
                        index += 1
                        continue
                    }
                    var width = 1
                    let escape: [UInt8]
                    switch byte {
                    case UInt8(ascii: "\""): escape = Array(#"\""#.utf8)
                    case UInt8(ascii: "\\"): escape = Array(#"\\"#.utf8)
                    case 0x08: escape = Array(#"\b"#.utf8)
                    case 0x0C: escape = Array(#"\f"#.utf8)
                    case UInt8(ascii: "\n"): escape = Array(#"\n"#.utf8)
                    case UInt8(ascii: "\r"): escape = Array(#"\r"#.utf8)
                    case UInt8(ascii: "\t"): escape = Array(#"\t"#.utf8)
                    case 0xE2:
                        guard index + 2 < bytes.count, bytes[index + 1] == 0x80,
                            bytes[index + 2] == 0xA8 || bytes[index + 2] == 0xA9
                        else {
                            index += 1
                            continue
                        }
                        escape = unicodeEscape(bytes[index + 2] == 0xA8 ? 0x2028 : 0x2029)
                        width = 3
                    default:
                        escape = unicodeEscape(UInt16(byte))  // other controls, <, >, &
                    }
                    out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<index]))
                    out.append(contentsOf: escape)
                    index += width
                    runStart = index
                }
                out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<bytes.count]))
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    private static func unicodeEscape(_ scalar: UInt16) -> [UInt8] {
        [
            UInt8(ascii: "\\"), UInt8(ascii: "u"),
            hexDigits[Int(scalar >> 12) & 0xF], hexDigits[Int(scalar >> 8) & 0xF],
            hexDigits[Int(scalar >> 4) & 0xF], hexDigits[Int(scalar) & 0xF],
        ]
    }

    /// Formats a `float64` like Go's `encoding/json`: shortest round-trip digits, plain notation for magnitudes in
    /// [1e-6, 1e21), otherwise exponent notation with Go's `e-7` (not `e-07`) clean-up.
    static func formatFloat64(_ value: Double) -> String {
        guard value.isFinite else { return "null" }
        if value == 0 { return value.sign == .minus ? "-0" : "0" }
        let (negative, digits, pointPosition) = shortestDecimal(value)
        let sign = negative ? "-" : ""
        let magnitude = Swift.abs(value)
        if magnitude < 1e-6 || magnitude >= 1e21 {
            var mantissa = String(digits.first!)
            if digits.count > 1 { mantissa += "." + digits.dropFirst() }
            let exponent = pointPosition - 1
            var exponentText = String(Swift.abs(exponent))
            if exponentText.count < 2 { exponentText = "0" + exponentText }
            if exponent < 0 && exponentText.count == 2 && exponentText.first == "0" {
                exponentText.removeFirst()
            }
            return sign + mantissa + "e" + (exponent < 0 ? "-" : "+") + exponentText
        }
        if pointPosition <= 0 {
            return sign + "0." + String(repeating: "0", count: -pointPosition) + digits
        }
        if pointPosition >= digits.count {
            return sign + digits + String(repeating: "0", count: pointPosition - digits.count)
        }
        let split = digits.index(digits.startIndex, offsetBy: pointPosition)
        return sign + digits[..<split] + "." + digits[split...]
    }

    /// The shortest round-trip decimal digits of `value` (no leading or trailing zeros) and the position of the
    /// decimal point relative to the first digit (value = 0.DIGITS × 10^pointPosition).
    private static func shortestDecimal(_ value: Double) -> (negative: Bool, digits: String, pointPosition: Int) {
        var text = Swift.abs(value).description  // Swift prints the shortest round-trip representation.
        var exponent = 0
        if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            exponent = Int(text[text.index(after: e)...]) ?? 0
            text = String(text[..<e])
        }
        var digits = ""
        var pointPosition = 0
        var seenPoint = false
        for character in text {
            if character == "." {
                seenPoint = true
            } else {
                digits.append(character)
                if !seenPoint { pointPosition += 1 }
            }
        }
        while digits.first == "0" {
            digits.removeFirst()
            pointPosition -= 1
        }
        while digits.last == "0" { digits.removeLast() }
        if digits.isEmpty { digits = "0" }
        return (value.sign == .minus, digits, pointPosition + exponent)
    }
}
