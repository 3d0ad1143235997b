/// Finds where a JSON string, object or array ends without reading it: strings with their escapes,
/// brackets that must balance and match (matched for the first 64 levels; deeper ones only balance).
/// Separators and primitives inside the value are not checked.
///
/// Resumable, so that one piece of logic serves both a value in memory (`JSONScanner`) and one arriving
/// in pieces (`StreamingObjectReader`, where it runs over every byte of a generate reply's `context`).
struct JSONValueSkipper {
    enum Progress: Equatable {
        /// The value ends just before this index.
        case ended(at: Int)
        /// Every byte was consumed and the value goes on.
        case needsMoreBytes
        /// A closing bracket does not match its opening one.
        case mismatched
    }

    private var depth = 0
    /// Bit n tells whether nesting level n (0-based, first 64 levels) is an object.
    private var levelIsObject: UInt64 = 0
    private var inString = false
    private var escapePending = false

    /// Advances through `bytes` from `start`, which must be the value's opening byte (`{`, `[` or `"`) on
    /// the first call and the start of the next piece on later ones.
    mutating func advance(_ bytes: UnsafeRawBufferPointer, from start: Int) -> Progress {
        let end = bytes.count
        var position = start
        var depth = self.depth
        var levelIsObject = self.levelIsObject
        var inString = self.inString
        var escapePending = self.escapePending
        defer {
            self.depth = depth
            self.levelIsObject = levelIsObject
            self.inString = inString
            self.escapePending = escapePending
        }
        while position < end {
            let byte = bytes[position]
            position += 1
            if inString {
                if escapePending {
                    escapePending = false
                } else if byte == UInt8(ascii: "\\") {
                    escapePending = true
                } else if byte == UInt8(ascii: "\"") {
                    inString = false
                    if depth == 0 { return .ended(at: position) }
                }
                continue
            }
            switch byte {
            case UInt8(ascii: "\""):
                inString = true
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                if depth < 64 {
                    let bit: UInt64 = 1 << UInt64(depth)
                    levelIsObject = byte == UInt8(ascii: "{") ? levelIsObject | bit : levelIsObject & ~bit
                }
                depth += 1
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                depth -= 1
                if depth < 0 { return .mismatched }
                if depth < 64 {
                    let isObject = levelIsObject & (1 << UInt64(depth)) != 0
                    guard isObject == (byte == UInt8(ascii: "}")) else { return .mismatched }
                }
                if depth == 0 { return .ended(at: position) }
            default:
                break
            }
        }
        return .needsMoreBytes
    }
}
