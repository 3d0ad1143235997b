/// Byte searches for the per-chunk path, eight bytes at a time.
///
/// Finding line ends is the one thing done to every byte of every streamed chunk; a word-at-a-time
/// search makes that a fraction of the cost of a byte loop without depending on the C library.
enum ByteScan {
    private static let ones: UInt64 = 0x0101_0101_0101_0101
    private static let highBits: UInt64 = 0x8080_8080_8080_8080
    private static let lowSevenBits: UInt64 = 0x7F7F_7F7F_7F7F_7F7F

    /// High bit set in exactly the bytes of `word` that are zero.
    @inline(__always)
    private static func zeroBytes(_ word: UInt64) -> UInt64 {
        ~(((word & lowSevenBits) &+ lowSevenBits) | word | lowSevenBits)
    }

    @inline(__always)
    private static func word(_ base: UnsafeRawPointer, at offset: Int) -> UInt64 {
        UInt64(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    /// The index of the first byte at or after `start` that `matches` flags (it returns, for a word, the high
    /// bit of each matching byte, exactly), or `bytes.count`. The last bytes are read as one word overlapping
    /// the previous one, with the bytes already searched masked off.
    @inline(__always)
    private static func firstMatch(
        in bytes: UnsafeRawBufferPointer, from start: Int, _ matches: (UInt64) -> UInt64
    ) -> Int {
        let count = bytes.count
        guard start < count else { return start }
        let base = bytes.baseAddress!
        guard count >= 8 else {
            var index = start
            // One byte at a time, in the lowest byte of a word.
            while index < count, matches(UInt64(base.load(fromByteOffset: index, as: UInt8.self))) & 0x80 == 0 {
                index &+= 1
            }
            return index
        }
        var index = start
        // Two words per round: one test and one branch for sixteen bytes.
        while index &+ 16 <= count {
            let low = matches(word(base, at: index))
            let high = matches(word(base, at: index &+ 8))
            if low | high != 0 {
                return low != 0
                    ? index &+ low.trailingZeroBitCount &>> 3
                    : index &+ 8 &+ high.trailingZeroBitCount &>> 3
            }
            index &+= 16
        }
        if index &+ 8 <= count {
            let found = matches(word(base, at: index))
            if found != 0 {
                return index &+ found.trailingZeroBitCount &>> 3
            }
            index &+= 8
        }
        guard index < count else { return count }
        let last = count &- 8
        let found = matches(word(base, at: last)) & (~0 &<< UInt64((index &- last) &* 8))
        return found != 0 ? last &+ found.trailingZeroBitCount &>> 3 : count
    }

    /// The index of the first `target` at or after `start`, or `bytes.count`.
    @inline(__always)
    static func firstIndex(of target: UInt8, in bytes: UnsafeRawBufferPointer, from start: Int) -> Int {
        let pattern = ones &* UInt64(target)
        return firstMatch(in: bytes, from: start) { zeroBytes($0 ^ pattern) }
    }

    /// The index of the first `\n` at or after `start`, or `bytes.count`: the end of an NDJSON line.
    @inline(__always)
    static func firstLineFeed(in bytes: UnsafeRawBufferPointer, from start: Int) -> Int {
        firstControlByte(in: bytes, from: start, below: 0x0B) { $0 == 0x0A }
    }

    /// The index of the first `\n` or `\r` at or after `start`, or `bytes.count`.
    @inline(__always)
    static func firstLineEnd(in bytes: UnsafeRawBufferPointer, from start: Int) -> Int {
        firstControlByte(in: bytes, from: start, below: 0x0E) { $0 == 0x0A || $0 == 0x0D }
    }

    /// The index of the first byte at or after `start` that is below `bound` and `isWanted`, or `bytes.count`.
    /// Text and JSON have almost no bytes below 0x20 besides line ends, and flagging bytes below a bound
    /// takes fewer operations per word than matching exact values. The flag is exact for a word's lowest
    /// byte below the bound but a borrow may flag a byte above one; every flagged byte is checked.
    @inline(__always)
    private static func firstControlByte(
        in bytes: UnsafeRawBufferPointer, from start: Int, below bound: UInt8, where isWanted: (UInt8) -> Bool
    ) -> Int {
        let bounds = ones &* UInt64(bound)
        var index = start
        while true {
            index = firstMatch(in: bytes, from: index) { word in (word &- bounds) & ~word & highBits }
            guard index < bytes.count, !isWanted(bytes[index]) else { return index }
            index &+= 1
        }
    }

    /// Calls `visit(index, distance)` for every `"` at `index` whose next `"` is exactly `near` or `far` bytes
    /// after it, in order, until it returns false. A quoted key of n bytes is such a pair, n + 1 apart, so a
    /// visitor compares bytes only where a key of a length it looks for can be. Each word of eight bytes is
    /// loaded once and its quotes are taken from the match mask (measured cheaper than pairing whole masks).
    @inline(__always)
    static func forEachQuotePair(
        in bytes: UnsafeRawBufferPointer, near: Int, far: Int, _ visit: (_ index: Int, _ distance: Int) -> Bool
    ) {
        let count = bytes.count
        guard let base = bytes.baseAddress else { return }
        let quotes = ones &* UInt64(UInt8(ascii: "\""))
        /// Before the first quote: no distance from it is one looked for.
        var previous = Int.min / 2
        @inline(__always)
        func pair(_ quote: Int) -> Bool {
            defer { previous = quote }
            let distance = quote &- previous
            return distance != near && distance != far || visit(previous, distance)
        }
        var index = 0
        while index &+ 8 <= count {
            // Exact per byte (no carry crosses bytes), so every set bit is a quote.
            var matches = zeroBytes(word(base, at: index) ^ quotes)
            while matches != 0 {
                guard pair(index &+ matches.trailingZeroBitCount &>> 3) else { return }
                matches &= matches &- 1
            }
            index &+= 8
        }
        if index < count {
            var matches = zeroBytes(partialWord(base, from: index, to: count) ^ quotes)
            while matches != 0 {
                guard pair(index &+ matches.trailingZeroBitCount &>> 3) else { return }
                matches &= matches &- 1
            }
        }
    }

    /// The bytes from `start` to `end` (fewer than eight) as a word, zero above them.
    @inline(__always)
    private static func partialWord(_ base: UnsafeRawPointer, from start: Int, to end: Int) -> UInt64 {
        if end >= 8 {
            // The word ending at `end`, shifted so that the bytes before `start` fall off.
            return word(base, at: end &- 8) &>> UInt64((8 &- (end &- start)) &* 8)
        }
        var value: UInt64 = 0
        for offset in 0..<(end &- start) {
            value |= UInt64(base.load(fromByteOffset: start &+ offset, as: UInt8.self)) &<< UInt64(offset &* 8)
        }
        return value
    }

    /// Whether the bytes at `index` are the first `count` (at most 8) bytes of `pattern`, a little-endian
    /// word from `Pattern`: one load and compare where eight bytes are left, a byte loop near the end.
    @inline(__always)
    static func hasPattern(_ pattern: UInt64, count: Int, in bytes: UnsafeRawBufferPointer, at index: Int) -> Bool {
        let mask: UInt64 = count >= 8 ? ~0 : (1 &<< UInt64(count &* 8)) &- 1
        if index &+ 8 <= bytes.count {
            return word(bytes.baseAddress!, at: index) & mask == pattern
        }
        guard index + count <= bytes.count else { return false }
        var value: UInt64 = 0
        for offset in 0..<count {
            value |= UInt64(bytes[index + offset]) << UInt64(offset * 8)
        }
        return value == pattern
    }

    /// Byte strings as little-endian words for `hasPattern` (checked against their text by the tests).
    enum Pattern {
        /// `"usage"`, 7 bytes.
        static let usageKey: UInt64 = 0x0022_6567_6173_7522
        /// `"error"`, 7 bytes.
        static let errorKey: UInt64 = 0x0022_726F_7272_6522
        /// `"finish_`, 8 bytes.
        static let finishReasonStart: UInt64 = 0x5F68_7369_6E69_6622
        /// `reason"`, 7 bytes: the rest of `"finish_reason"`.
        static let finishReasonEnd: UInt64 = 0x0022_6E6F_7361_6572
        /// `"done"`, 6 bytes.
        static let doneKey: UInt64 = 0x0000_2265_6E6F_6422
        /// `"done":f`, 8 bytes.
        static let doneKeyThenF: UInt64 = 0x663A_2265_6E6F_6422
        /// `,"done":`, 8 bytes, and `":false}`, 8 bytes: the end of a native chunk that is not the last.
        static let commaDoneKeyColon: UInt64 = 0x3A22_656E_6F64_222C
        static let quoteColonFalseBrace: UInt64 = 0x7D65_736C_6166_3A22
    }

    /// What the pre-filter of OpenAI chunks found.
    struct ChunkKeys: OptionSet {
        let rawValue: UInt8
        /// `"usage"` or `"error"`.
        static let usageOrError = ChunkKeys(rawValue: 1 << 0)
        /// `"finish_reason"` followed by a string (not the `null` of every chunk before the last).
        static let finishReason = ChunkKeys(rawValue: 1 << 1)
    }

    /// Whether the bytes contain `"usage"` or `"error"`: the pre-filter that lets ordinary OpenAI chunks
    /// through without parsing. (Inside JSON strings quotes are escaped, so outside of a string value
    /// that is exactly "usage" or "error" these can only be keys.)
    static func containsUsageOrErrorKey(_ bytes: UnsafeRawBufferPointer) -> Bool {
        chunkKeys(bytes).contains(.usageOrError)
    }

    /// The pre-filter of OpenAI chunks, in one pass over the quotes: `"usage"` or `"error"`, and a
    /// string-valued `"finish_reason"` (the one chunk per choice that says why generation stopped).
    static func chunkKeys(_ bytes: UnsafeRawBufferPointer) -> ChunkKeys {
        var found: ChunkKeys = []
        forEachQuotePair(in: bytes, near: 6, far: 14) { index, distance in
            if distance == 6 {
                if hasPattern(Pattern.usageKey, count: 7, in: bytes, at: index)
                    || hasPattern(Pattern.errorKey, count: 7, in: bytes, at: index)
                {
                    found.insert(.usageOrError)
                }
            } else if hasPattern(Pattern.finishReasonStart, count: 8, in: bytes, at: index),
                hasPattern(Pattern.finishReasonEnd, count: 7, in: bytes, at: index &+ 8),
                stringValueFollows(bytes, from: index &+ 15)
            {
                found.insert(.finishReason)
            }
            return found != [.usageOrError, .finishReason]
        }
        return found
    }

    /// After a key's closing quote: a colon, then a string value.
    private static func stringValueFollows(_ bytes: UnsafeRawBufferPointer, from start: Int) -> Bool {
        var index = start
        var sawColon = false
        while index < bytes.count {
            switch bytes[index] {
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\r"):
                break
            case UInt8(ascii: ":") where !sawColon:
                sawColon = true
            default:
                return sawColon && bytes[index] == UInt8(ascii: "\"")
            }
            index += 1
        }
        return false
    }
}
