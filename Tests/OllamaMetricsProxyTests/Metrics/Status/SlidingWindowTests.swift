import Testing
@testable import OllamaMetricsProxy

/// The ring of time slots behind "the last minute" and "the last five minutes".
@Suite struct SlidingWindowTests {
    struct Tally: WindowSlot, Equatable {
        var value = 0
        mutating func add(_ other: Tally) { self.value += other.value }
    }

    static let second: Int64 = 1_000_000_000

    /// A window of `count` one-second slots.
    static func window(_ count: Int = 60) -> SlidingWindow<Tally> {
        SlidingWindow(slotCount: count, slotNanos: second)
    }

    static func values(_ window: SlidingWindow<Tally>, at nanos: Int64) -> [Int] {
        window.slots(at: nanos).map(\.value)
    }

    @Test func recordsInTheSlotOfTheirSecondAndAddsUp() {
        var window = Self.window(4)
        window.record(at: 0) { $0.value += 1 }
        window.record(at: Self.second - 1) { $0.value += 2 }  // the same first second
        window.record(at: Self.second) { $0.value += 10 }  // the next one starts exactly on the boundary
        window.record(at: 3 * Self.second + 5) { $0.value += 100 }
        #expect(Self.values(window, at: 3 * Self.second + 5) == [3, 10, 0, 100])
        #expect(window.total(at: 3 * Self.second + 5).value == 113)
    }

    @Test func slotsFallOutOfTheWindowAsTimePassesWithoutAnyRecord() {
        var window = Self.window(4)
        window.record(at: 0) { $0.value += 1 }
        window.record(at: 2 * Self.second) { $0.value += 2 }
        #expect(window.total(at: 3 * Self.second).value == 3, "slots 0 to 3")
        #expect(window.total(at: 4 * Self.second).value == 2, "slot 0 is out: slots 1 to 4")
        #expect(Self.values(window, at: 4 * Self.second) == [0, 2, 0, 0])
        #expect(window.total(at: 6 * Self.second - 1).value == 2, "still slots 2 to 5")
        #expect(window.total(at: 6 * Self.second).value == 0)
        #expect(Self.values(window, at: 100 * Self.second) == [0, 0, 0, 0], "long after, nothing")
    }

    @Test func aPositionReusedAfterWrappingAroundStartsEmpty() {
        var window = Self.window(3)
        for second in 0..<10 {
            window.record(at: Int64(second) * Self.second) { $0.value += second }
        }
        // Positions were reused three times; only seconds 7, 8 and 9 remain.
        #expect(Self.values(window, at: 9 * Self.second) == [7, 8, 9])
        window.record(at: 12 * Self.second) { $0.value += 1 }  // skips 10 and 11: position of 9 reused, not added to
        #expect(Self.values(window, at: 12 * Self.second) == [0, 0, 1])
        #expect(window.total(at: 12 * Self.second).value == 1)
    }

    @Test func aTimeOlderThanTheWindowIsDropped() {
        var window = Self.window(3)
        window.record(at: 5 * Self.second) { $0.value += 1 }
        window.record(at: 2 * Self.second) { $0.value += 50 }  // same position as second 5, older: dropped
        window.record(at: 4 * Self.second) { $0.value += 4 }  // older but still inside: counted
        #expect(Self.values(window, at: 5 * Self.second) == [0, 4, 1])
    }

    @Test func theFirstSlotsOfAFreshClockReadAsEmpty() {
        let window = Self.window(60)
        #expect(Self.values(window, at: 0).count == 60)
        #expect(window.total(at: 0).value == 0)
    }

    @Test func tenSecondSlotsCoverFiveMinutes() {
        var window = SlidingWindow<Tally>(slotCount: 30, slotNanos: 10 * Self.second)
        window.record(at: 0) { $0.value += 1 }
        window.record(at: 295 * Self.second) { $0.value += 1 }
        #expect(window.total(at: 299 * Self.second).value == 2, "slots 0 to 29: 0 s to 300 s")
        #expect(window.total(at: 300 * Self.second).value == 1, "the first ten seconds left at 300 s")
    }
}
