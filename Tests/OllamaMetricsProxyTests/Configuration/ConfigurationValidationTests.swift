import NIOCore
import Testing

@testable import OllamaMetricsProxy

@Suite struct ConfigurationValidation {
    /// The configuration with one field changed.
    static func configuration(_ change: (inout ProxyConfiguration) -> Void) -> ProxyConfiguration {
        var configuration = ProxyConfiguration()
        change(&configuration)
        return configuration
    }

    static func message(_ configuration: ProxyConfiguration) -> String? {
        do {
            try configuration.validate()
            return nil
        } catch {
            return error.description
        }
    }

    @Test func defaultsAreValidAndAreTheDocumentedLimits() throws {
        let configuration = ProxyConfiguration()
        try configuration.validate()
        #expect(configuration.threads == System.coreCount)
        #expect(configuration.maxModelLabels == 100)
        #expect(configuration.requestHeadTimeout == .seconds(75))
        #expect(configuration.upstreamIdleTimeout == .seconds(60))
        #expect(configuration.upstreamConnectTimeout == .seconds(10))
        #expect(configuration.maxIdleUpstreamConnectionsPerThread == 128)
        #expect(configuration.maxInspectedRequestBody == 32 * 1024 * 1024)
    }

    /// Each whole-number limit, the message for a rejected value, values outside its range and at its edges.
    static var counts: [(field: WritableKeyPath<ProxyConfiguration, Int>, message: (Int) -> String,
        rejected: [Int], accepted: [Int])] { [
        (\.maxModelLabels, { "invalid --max-models \($0): expected 1 or more" },
            [0, -1, Int.min], [1, 100, Int.max]),
        (\.threads, { "invalid --threads \($0): expected 1 to 1024" },
            [0, -1, 1025], [1, 1024]),
        (\.maxIdleUpstreamConnectionsPerThread, { "invalid maxIdleUpstreamConnectionsPerThread \($0): expected 0 to 65536" },
            [-1, 65_537], [0, 65_536]),  // 0 turns reuse off
        (\.maxInspectedRequestBody,
            { "invalid maxInspectedRequestBody \($0): expected 1024 to 1073741824 bytes (1 KiB to 1 GiB)" },
            [0, -1, 1023, (1 << 30) + 1], [1024, 1 << 30]),
    ] }

    @Test func countsOutsideTheirRangeAreRejectedNamingFlagOrFieldAndRange() {
        for count in Self.counts {
            for value in count.rejected {
                #expect(Self.message(Self.configuration { $0[keyPath: count.field] = value }) == count.message(value))
            }
        }
    }

    @Test func countsInsideTheirRangeAreAccepted() throws {
        for count in Self.counts {
            for value in count.accepted {
                try Self.configuration { $0[keyPath: count.field] = value }.validate()
            }
        }
    }

    /// Each timeout, a value just outside its range on either side, and a value at each edge.
    static var timeouts: [(field: WritableKeyPath<ProxyConfiguration, Duration>, name: String, range: String,
        rejected: [Duration], accepted: [Duration])] { [
        (\.requestHeadTimeout, "requestHeadTimeout", "1 ms to 24 h",
            [.zero, .seconds(-1), .microseconds(999), .seconds(24 * 3600) + .nanoseconds(1)],
            [.milliseconds(1), .seconds(24 * 3600)]),
        (\.upstreamIdleTimeout, "upstreamIdleTimeout", "1 ms to 24 h",
            [.zero, .seconds(-1), .microseconds(999), .seconds(24 * 3600) + .nanoseconds(1)],
            [.milliseconds(1), .seconds(24 * 3600)]),
        (\.upstreamConnectTimeout, "upstreamConnectTimeout", "1 ms to 10 min",
            [.zero, .seconds(-1), .microseconds(999), .seconds(601)],
            [.milliseconds(1), .seconds(600)]),
    ] }

    @Test func timeoutsOutsideTheirRangeAreRejectedNamingFieldAndRange() {
        for timeout in Self.timeouts {
            for value in timeout.rejected {
                let message = Self.message(Self.configuration { $0[keyPath: timeout.field] = value })
                #expect(message == "invalid \(timeout.name) \(value): expected \(timeout.range)")
            }
        }
    }

    @Test func timeoutsAtTheEdgesOfTheirRangeAreAccepted() throws {
        for timeout in Self.timeouts {
            for value in timeout.accepted {
                try Self.configuration { $0[keyPath: timeout.field] = value }.validate()
            }
        }
    }
}
