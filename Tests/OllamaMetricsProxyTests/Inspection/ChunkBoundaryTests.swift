import NIOCore
import Testing
@testable import OllamaMetricsProxy

/// Bodies arrive in pieces cut anywhere (TCP, HTTP chunks, mid UTF-8, mid `\r\n`): however a body is cut,
/// the usage, the error and the forwarded bytes must be those of the whole body.
@Suite("Every fixture, however it is cut")
struct ChunkBoundaryTests {
    @Test("whole body gives the expected usage, error and forwarded bytes", arguments: WireFixtures.allWithLineEndVariants)
    func wholeBodyGivesExpectedResult(_ fixture: ResponseFixture) {
        let observed = InspectionHarness.observe(fixture)
        #expect(observed.usages == (fixture.expectedUsage.map { [$0] } ?? []))
        #expect(observed.error == fixture.expectedError)
        #expect(observed.forwarded == fixture.expectedForwarded)
    }

    @Test("a completed usage is available before finish()", arguments: WireFixtures.allWithLineEndVariants.filter {
        $0.expectedUsage != nil
    })
    func usageIsAvailableBeforeFinish(_ fixture: ResponseFixture) {
        #expect(InspectionHarness.observe(fixture).usageBeforeFinish)
    }

    @Test("split into two pieces at every offset", arguments: WireFixtures.allWithLineEndVariants)
    func everyTwoPieceSplitMatchesWhole(_ fixture: ResponseFixture) {
        let whole = InspectionHarness.observe(fixture)
        for (offset, pieces) in InspectionHarness.twoPieceSplits(fixture.body).enumerated() {
            let observed = InspectionHarness.observe(fixture, pieces: pieces)
            #expect(Self.sameOutcome(observed, whole), "split at \(offset): \(observed) vs \(whole)")
            if !Self.sameOutcome(observed, whole) { return }
        }
    }

    @Test("fed byte by byte", arguments: WireFixtures.allWithLineEndVariants)
    func byteByByteMatchesWhole(_ fixture: ResponseFixture) {
        let whole = InspectionHarness.observe(fixture)
        let observed = InspectionHarness.observe(fixture, pieces: InspectionHarness.byteByByte(fixture.body))
        #expect(Self.sameOutcome(observed, whole), "\(observed) vs \(whole)")
    }

    @Test("fed in random pieces, empty ones included", arguments: WireFixtures.allWithLineEndVariants)
    func randomSplitsMatchWhole(_ fixture: ResponseFixture) {
        let whole = InspectionHarness.observe(fixture)
        for (index, pieces) in InspectionHarness.randomSplits(fixture.body, count: 40, seed: 42).enumerated() {
            let observed = InspectionHarness.observe(fixture, pieces: pieces)
            #expect(Self.sameOutcome(observed, whole), "random split #\(index) (\(pieces.map(\.count))): \(observed)")
            if !Self.sameOutcome(observed, whole) { return }
        }
    }

    /// Cutting may delay when the usage becomes available (a piece may end just before the final `\n`),
    /// but never what it is, nor the bytes.
    static func sameOutcome(_ lhs: InspectionObservation, _ rhs: InspectionObservation) -> Bool {
        lhs.forwarded == rhs.forwarded && lhs.usages == rhs.usages && lhs.error == rhs.error
    }
}
