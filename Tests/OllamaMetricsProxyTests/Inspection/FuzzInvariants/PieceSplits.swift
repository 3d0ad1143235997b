/// Ways of cutting a body into pieces, as TCP segments and HTTP chunks cut it: as ranges of the body, so
/// that one set of cuts serves bodies of any length.
enum PieceSplits {
    /// How hard to try: a fuzz target runs every input once and needs speed; the corpus replay runs few
    /// inputs and can afford every kind of cut.
    enum Thoroughness {
        case fuzzing, replay
    }

    /// The cuts to compare with the whole body: two pieces at a seed-chosen offset, pseudo-random pieces
    /// (empty ones included), and one byte at a time (for short bodies only while fuzzing).
    static func cuts(of count: Int, seed: UInt8, _ thoroughness: Thoroughness) -> [[Range<Int>]] {
        var cuts: [[Range<Int>]] = []
        let offsets = thoroughness == .fuzzing ? [Int(seed)] : (0..<8).map { Int(seed) &+ $0 &* 97 }
        for offset in offsets {
            let cut = count == 0 ? 0 : offset % (count + 1)
            cuts.append([0..<cut, cut..<count])
        }
        let randomCount = thoroughness == .fuzzing ? 1 : 8
        for round in 0..<randomCount {
            cuts.append(random(of: count, seed: UInt64(seed) &* 31 &+ UInt64(round)))
        }
        if thoroughness == .replay || count <= 512 {
            cuts.append((0..<count).map { $0..<($0 + 1) })
        }
        return cuts
    }

    /// Pieces of 0 to 31 bytes from a linear congruential sequence; short ones dominate, where cuts fall
    /// inside line ends, UTF-8 sequences and keys.
    static func random(of count: Int, seed: UInt64) -> [Range<Int>] {
        var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        var pieces: [Range<Int>] = []
        var start = 0
        while start < count {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            let length = Int(state >> 59) >> Int((state >> 40) & 3)
            let end = Swift.min(count, start + length)
            pieces.append(start..<end)
            start = end
        }
        return pieces
    }
}
