import Testing
@testable import OllamaMetricsProxy

/// Quantiles as Prometheus' `histogram_quantile` computes them, so the page agrees with Grafana.
@Suite struct BucketCountsTests {
    static func counts(_ bounds: [Double], _ values: [Double]) -> BucketCounts {
        var counts = BucketCounts(bounds: bounds)
        for value in values { counts.observe(value) }
        return counts
    }

    @Test func noObservationsNoQuantile() {
        #expect(BucketCounts().quantile(0.5) == nil)
        #expect(BucketCounts().count == 0)
    }

    @Test func aValueOnABoundCountsInThatBucket() {
        let counts = Self.counts([1, 2], [1, 2, 2.0001])
        #expect(counts.counts == [1, 1, 1])
    }

    @Test func interpolatesInsideTheBucketOfTheRank() {
        // Buckets (0,1] (1,2] (2,4] +Inf with 2, 2, 4, 0 observations; 8 in all.
        let counts = Self.counts([1, 2, 4], [0.5, 0.5, 1.5, 1.5, 3, 3, 3, 3])
        // rank 4 falls at the end of (1,2]: 2.
        #expect(counts.quantile(0.5) == 2)
        // rank 1 in the first bucket, from 0: 0.5.
        #expect(counts.quantile(0.125) == 0.5)
        // rank 7.6: 3.6 of 4 into (2,4]: 2 + 2 × 0.9.
        #expect(abs(counts.quantile(0.95)! - 3.8) < 1e-12)
    }

    @Test func aRankInTheInfiniteBucketIsTheLargestFiniteBound() {
        let counts = Self.counts([1, 2], [0.5, 10, 20, 30])
        #expect(counts.quantile(0.95) == 2)
        #expect(counts.quantile(0.25) == 1)
    }

    @Test func aNonPositiveFirstBoundIsReturnedAsIs() {
        #expect(Self.counts([0, 1], [-1, -1]).quantile(0.5) == 0)
    }

    @Test func addingMergesBucketByBucketAndEmptyAddsNothing() {
        var first = Self.counts([1, 2], [0.5])
        first.add(Self.counts([1, 2], [1.5, 5]))
        first.add(BucketCounts(bounds: [1, 2]))
        #expect(first.counts == [1, 1, 1])
        var empty = BucketCounts(bounds: [1, 2])
        empty.add(first)
        #expect(empty == first)
    }

    @Test func theDefaultBucketsAreTheTimeToFirstTokenHistogramsBuckets() {
        var counts = BucketCounts()
        counts.observe(0.3)
        #expect(counts.bounds == ServingMetrics.timeToFirstTokenBuckets)
        // One observation in (0.25, 0.5]: the median is half way.
        #expect(counts.quantile(0.5) == 0.375)
    }
}
