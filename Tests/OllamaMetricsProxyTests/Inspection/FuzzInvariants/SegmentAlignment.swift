/// Whether forwarded bytes are a body with some of its segments changed in allowed ways: each segment, in
/// order, became one of its alternatives (itself, nothing, itself minus a removed member…).
///
/// Alternatives may be prefixes of one another, so every reachable position in the output is followed,
/// not only the first match.
enum SegmentAlignment {
    static func matches(_ output: [UInt8], alternatives: [[[UInt8]]]) -> Bool {
        var positions: Set<Int> = [0]
        for choices in alternatives {
            var next: Set<Int> = []
            for position in positions {
                for choice in choices where position + choice.count <= output.count
                    && output[position..<(position + choice.count)].elementsEqual(choice)
                {
                    next.insert(position + choice.count)
                }
            }
            guard !next.isEmpty else { return false }
            positions = next
        }
        return positions.contains(output.count)
    }
}
