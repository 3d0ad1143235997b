import NIOCore
import Testing
@testable import OllamaMetricsProxy

/// Real bodies with random damage (bytes replaced, inserted, deleted): whatever Ollama, a broken network
/// or a misbehaving upstream sends, inspection never crashes, never loses or reorders a forwarded byte,
/// counts at most once, and does not depend on where the body was cut.
@Suite("Damaged bodies")
struct MutatedBodyTests {
    private static let alphabet = Array(#"{}[]":,\ /ntrufalsedoneusagechoiceserror0123456789-.eE"#.utf8) + [0x0A, 0x0D, 0x00, 0xC3, 0xFF]

    private static func mutate(_ body: [UInt8], using generator: inout InspectionRandom) -> [UInt8] {
        var bytes = body
        for _ in 0..<Int(generator.next() % 4 + 1) where !bytes.isEmpty {
            let position = Int(generator.next() % UInt64(bytes.count))
            let replacement = alphabet[Int(generator.next() % UInt64(alphabet.count))]
            switch generator.next() % 3 {
            case 0: bytes[position] = replacement
            case 1: bytes.insert(replacement, at: position)
            default: bytes.remove(at: position)
            }
        }
        return bytes
    }

    @Test("mutated fixtures", arguments: WireFixtures.allWithLineEndVariants)
    func mutatedBodiesBehave(_ fixture: ResponseFixture) {
        var generator = InspectionRandom(seed: UInt64(fixture.name.utf8.count) &* 31 &+ 1)
        for round in 0..<24 {
            let body = Self.mutate(fixture.body, using: &generator)
            let whole = InspectionHarness.observe(fixture, pieces: [body])
            #expect(whole.usages.count <= 1)
            if !fixture.withholdUsageChunks {
                #expect(whole.forwarded == body, "round \(round)")
            } else {
                #expect(Self.isSubsequence(whole.forwarded, of: body), "round \(round)")
            }
            let byteByByte = round % 8 == 0 ? [InspectionHarness.byteByByte(body)] : []
            for pieces in InspectionHarness.randomSplits(body, count: 4, seed: UInt64(round)) + byteByByte {
                let observed = InspectionHarness.observe(fixture, pieces: pieces)
                #expect(ChunkBoundaryTests.sameOutcome(observed, whole), "round \(round), pieces \(pieces.map(\.count))")
                if !ChunkBoundaryTests.sameOutcome(observed, whole) { return }
            }
        }
    }

    private static func isSubsequence(_ candidate: [UInt8], of body: [UInt8]) -> Bool {
        var index = body.startIndex
        for byte in candidate {
            guard let found = body[index...].firstIndex(of: byte) else { return false }
            index = found + 1
        }
        return true
    }
}
