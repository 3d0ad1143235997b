/// Observations counted in the buckets of a Prometheus histogram (each bucket counts its own, not
/// cumulatively; the last one is `+Inf`), and the quantile estimate Prometheus' `histogram_quantile` makes
/// from them, so that the status page shows the numbers a Grafana panel over the same buckets shows.
struct BucketCounts: WindowSlot, Equatable, Sendable {
    /// Upper bounds of the finite buckets, ascending.
    let bounds: [Double]
    /// One count per finite bucket and one for `+Inf`; empty until the first observation (a window of
    /// slots nobody observed into allocates nothing).
    private(set) var counts: [Int]

    init() {
        self.init(bounds: ServingMetrics.timeToFirstTokenBuckets)
    }

    init(bounds: [Double]) {
        self.bounds = bounds
        self.counts = []
    }

    var count: Int { self.counts.reduce(0, +) }

    /// Counts `value` in the first bucket whose upper bound is at least `value` (`le`, as Prometheus does).
    mutating func observe(_ value: Double) {
        if self.counts.isEmpty { self.counts = Array(repeating: 0, count: self.bounds.count + 1) }
        let index = self.bounds.firstIndex { value <= $0 } ?? self.bounds.count
        self.counts[index] += 1
    }

    mutating func add(_ other: BucketCounts) {
        guard !other.counts.isEmpty else { return }
        precondition(other.bounds == self.bounds, "histograms with different buckets cannot be added")
        if self.counts.isEmpty {
            self.counts = other.counts
            return
        }
        for index in self.counts.indices { self.counts[index] += other.counts[index] }
    }

    /// `histogram_quantile(q, …)` of these counts: nil without observations; linear interpolation inside the
    /// bucket where the rank falls (from 0 in the first bucket); the largest finite bound when it falls in
    /// `+Inf`.
    func quantile(_ q: Double) -> Double? {
        let total = self.count
        guard total > 0, !self.bounds.isEmpty else { return nil }
        let rank = q * Double(total)
        var below = 0
        for (index, bound) in self.bounds.enumerated() {
            let inBucket = self.counts[index]
            if Double(below + inBucket) >= rank {
                if index == 0 && bound <= 0 { return bound }
                let start = index == 0 ? 0 : self.bounds[index - 1]
                return start + (bound - start) * ((rank - Double(below)) / Double(inBucket))
            }
            below += inBucket
        }
        return self.bounds[self.bounds.count - 1]
    }
}
