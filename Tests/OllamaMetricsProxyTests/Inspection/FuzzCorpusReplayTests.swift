import Foundation
import Testing

/// Every seed and past finding in `Fuzz/Corpus/<target>/`, through the same invariant checks as the
/// libFuzzer targets (`FuzzInvariants/`, shared with `Fuzz/` by a symlink), with more cuts per input than
/// a fuzzing run affords: the corpus keeps guarding the parsers in every test run, without sanitizers.
@Suite("Fuzz corpus replay")
struct FuzzCorpusReplayTests {
    struct Seed: CustomTestStringConvertible, Sendable {
        var target: String
        var path: String
        var testDescription: String { "\(target)/\((path as NSString).lastPathComponent)" }
    }

    static let corpus = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fuzz/Corpus").path

    static func seeds(of target: FuzzTarget) -> [Seed] {
        let folder = corpus + "/" + target.rawValue
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        return names.sorted().map { Seed(target: target.rawValue, path: folder + "/" + $0) }
    }

    static let allSeeds = FuzzTarget.allCases.flatMap(seeds(of:))

    @Test("every target has seeds", arguments: FuzzTarget.allCases.map(\.rawValue))
    func everyTargetHasSeeds(_ name: String) throws {
        let target = try #require(FuzzTarget(rawValue: name))
        #expect(Self.seeds(of: target).count >= 2)
    }

    @Test("each seed keeps every invariant", arguments: allSeeds)
    func seedKeepsInvariants(_ seed: Seed) throws {
        let target = try #require(FuzzTarget(rawValue: seed.target))
        let bytes = try #require(FileManager.default.contents(atPath: seed.path), "readable \(seed.path)")
        do {
            try target.check(Array(bytes), .replay)
        } catch {
            Issue.record("\(seed.testDescription): \(error.description)")
        }
    }
}
