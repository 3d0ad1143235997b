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
    private static func word(_ bytes: UnsafeRawBufferPointer, at offset: Int) -> UInt64 {
        UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    /// The index of the first `target` at or after `start`, or `bytes.count`.
    @inline(__always)
    static func firstIndex(of target: UInt8, in bytes: UnsafeRawBufferPointer, from start: Int) -> Int {
        let pattern = ones &* UInt64(target)
        var index = start
        let count = bytes.count
        while index + 8 <= count {
            let matches = zeroBytes(word(bytes, at: index) ^ pattern)
            if matches != 0 {
                return index + matches.trailingZeroBitCount >> 3
            }
            index += 8
        }
        while index < count, bytes[index] != target {
            index += 1
        }
        return index
    }

    /// The index of the first `\n` or `\r` at or after `start`, or `bytes.count`.
    @inline(__always)
    static func firstLineEnd(in bytes: UnsafeRawBufferPointer, from start: Int) -> Int {
        let lineFeeds = ones &* 0x0A
        let carriageReturns = ones &* 0x0D
        var index = start
        let count = bytes.count
        while index + 8 <= count {
            let loaded = word(bytes, at: index)
            let matches = zeroBytes(loaded ^ lineFeeds) | zeroBytes(loaded ^ carriageReturns)
            if matches != 0 {
                return index + matches.trailingZeroBitCount >> 3
            }
            index += 8
        }
        while index < count, bytes[index] != 0x0A, bytes[index] != 0x0D {
            index += 1
        }
        return index
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

    /// The pre-filter of OpenAI chunks, in one pass: `"usage"` or `"error"`, and a string-valued
    /// `"finish_reason"` (the one chunk per choice that says why generation stopped).
    static func chunkKeys(_ bytes: UnsafeRawBufferPointer) -> ChunkKeys {
        let last = bytes.count - 7
        var found: ChunkKeys = []
        var index = 0
        while index <= last {
            index = firstIndex(of: UInt8(ascii: "\""), in: bytes, from: index)
            guard index <= last else { return found }
            switch bytes[index + 1] {
            case UInt8(ascii: "u"):
                if UnsafeRawBufferPointer(rebasing: bytes[(index + 2)..<(index + 7)]).hasBytes("sage\"") {
                    found.insert(.usageOrError)
                }
            case UInt8(ascii: "e"):
                if UnsafeRawBufferPointer(rebasing: bytes[(index + 2)..<(index + 7)]).hasBytes("rror\"") {
                    found.insert(.usageOrError)
                }
            case UInt8(ascii: "f"):
                if index + 15 <= bytes.count,
                    UnsafeRawBufferPointer(rebasing: bytes[(index + 2)..<(index + 15)]).hasBytes("inish_reason\""),
                    Self.stringValueFollows(bytes, from: index + 15)
                {
                    found.insert(.finishReason)
                }
            default:
                break
            }
            if found == [.usageOrError, .finishReason] { return found }
            index += 1
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
