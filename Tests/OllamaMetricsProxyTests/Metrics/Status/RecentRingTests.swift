import Testing
@testable import OllamaMetricsProxy

@Suite struct RecentRingTests {
    @Test func keepsTheLastElementsNewestFirst() {
        var ring = RecentRing<Int>(capacity: 3)
        #expect(ring.newestFirst.isEmpty)
        ring.append(1)
        ring.append(2)
        #expect(ring.newestFirst == [2, 1])
        ring.append(3)
        #expect(ring.newestFirst == [3, 2, 1])
        for value in 4...8 { ring.append(value) }
        #expect(ring.newestFirst == [8, 7, 6], "wrapped around more than once")
        ring.append(9)
        #expect(ring.newestFirst == [9, 8, 7])
    }

    @Test func aRingOfOneHoldsTheLast() {
        var ring = RecentRing<String>(capacity: 1)
        ring.append("a")
        ring.append("b")
        #expect(ring.newestFirst == ["b"])
    }
}
