/// What a slot of a `SlidingWindow` holds: a sum that starts empty and adds up.
protocol WindowSlot {
    init()
    mutating func add(_ other: Self)
}

/// The last `slotCount` time slots of `slotNanos` each, ending with the slot that holds now: a minute second
/// by second, or five minutes in ten-second steps, in memory fixed at creation whatever the traffic.
///
/// Each position of the ring remembers which slot (time / width) it holds. One whose slot fell out of the
/// window reads as empty and is cleared when it is reused, so time passing costs nothing. Times are
/// nanoseconds of a monotonic clock, and must not go backwards by more than the window (older ones are
/// dropped).
struct SlidingWindow<Slot: WindowSlot> {
    let slotCount: Int
    let slotNanos: Int64
    private var slots: [Slot]
    /// The slot number each position holds; `Int64.min` for none yet.
    private var numbers: [Int64]

    init(slotCount: Int, slotNanos: Int64) {
        precondition(slotCount > 0 && slotNanos > 0, "a window needs at least one slot of some length")
        self.slotCount = slotCount
        self.slotNanos = slotNanos
        self.slots = Array(repeating: Slot(), count: slotCount)
        self.numbers = Array(repeating: .min, count: slotCount)
    }

    /// Changes the slot that holds `nanos`.
    mutating func record(at nanos: Int64, _ update: (inout Slot) -> Void) {
        let number = nanos / self.slotNanos
        let position = Int(number % Int64(self.slotCount))
        if self.numbers[position] > number { return }
        if self.numbers[position] < number {
            self.numbers[position] = number
            self.slots[position] = Slot()
        }
        update(&self.slots[position])
    }

    /// The window's slots at `nanos`, oldest first, the last being the one that holds `nanos` (still filling);
    /// empty where nothing was recorded.
    func slots(at nanos: Int64) -> [Slot] {
        let current = nanos / self.slotNanos
        return (0..<Int64(self.slotCount)).map { age in
            let number = current - Int64(self.slotCount - 1) + age
            guard number >= 0 else { return Slot() }
            let position = Int(number % Int64(self.slotCount))
            return self.numbers[position] == number ? self.slots[position] : Slot()
        }
    }

    /// Every slot of the window at `nanos` added up.
    func total(at nanos: Int64) -> Slot {
        let current = nanos / self.slotNanos
        var total = Slot()
        for position in 0..<self.slotCount where self.numbers[position] <= current && self.numbers[position] > current - Int64(self.slotCount) {
            total.add(self.slots[position])
        }
        return total
    }
}

extension SlidingWindow: Sendable where Slot: Sendable {}
