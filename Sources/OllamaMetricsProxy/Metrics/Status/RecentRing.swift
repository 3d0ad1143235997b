/// The last `capacity` elements appended, in fixed memory: each append past the capacity overwrites the
/// oldest.
struct RecentRing<Element> {
    let capacity: Int
    private var storage: [Element] = []
    /// Where the next append goes once the storage is full.
    private var next = 0

    init(capacity: Int) {
        precondition(capacity > 0, "a ring holds at least one element")
        self.capacity = capacity
        self.storage.reserveCapacity(capacity)
    }

    mutating func append(_ element: Element) {
        if self.storage.count < self.capacity {
            self.storage.append(element)
        } else {
            self.storage[self.next] = element
        }
        self.next = (self.next + 1) % self.capacity
    }

    /// The elements, newest first.
    var newestFirst: [Element] {
        guard self.storage.count == self.capacity else { return self.storage.reversed() }
        return Array(self.storage[..<self.next].reversed()) + Array(self.storage[self.next...].reversed())
    }
}

extension RecentRing: Sendable where Element: Sendable {}
