/// ASCII letter-case folding for protocol text: header names and values, media types, and JSON keys
/// matched the way Go's `encoding/json` matches them. The one comparison every caller uses; it compares
/// bytes in place and never allocates.
enum ASCII {
    /// `byte` with an ASCII capital letter turned into its lowercase letter; every other byte unchanged.
    @inline(__always)
    static func lowercased(_ byte: UInt8) -> UInt8 {
        byte &- UInt8(ascii: "A") < 26 ? byte | 0x20 : byte
    }

    /// Whether `bytes` equal `lowercase`, ignoring the ASCII letter case of `bytes`. `lowercase` must
    /// hold no capital ASCII letter.
    @inline(__always)
    static func equalsIgnoringCase<Bytes: Collection<UInt8>, Lowercase: Collection<UInt8>>(
        _ bytes: Bytes, lowercase: Lowercase
    ) -> Bool {
        bytes.elementsEqual(lowercase) { lowercased($0) == $1 }
    }

    /// The bytes of an ASCII literal, in place.
    @inline(__always)
    static func bytes(_ literal: StaticString) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount)
    }
}

extension StringProtocol {
    /// Compares with `lowercase` (no capital ASCII letters), ignoring the ASCII letter case of `self`.
    func equalsLowercaseASCII(_ lowercase: String) -> Bool {
        ASCII.equalsIgnoringCase(self.utf8, lowercase: lowercase.utf8)
    }
}

extension StringProtocol where SubSequence == Substring {
    /// The value without leading and trailing spaces and tabs (optional whitespace around header values).
    var trimmingSpaces: Substring {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        guard let first = self.firstIndex(where: { !isSpace($0) }) else { return "" }
        let last = self.lastIndex(where: { !isSpace($0) })!
        return self[first...last]
    }
}
