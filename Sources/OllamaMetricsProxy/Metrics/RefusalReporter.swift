import Logging
import NIOConcurrencyHelpers
import NIOCore
import Prometheus

/// Counts every refusal (`ollama_metrics_proxy_refusals_total{reason}`) and logs them once per burst: the
/// first refusal of a reason is logged as it happens, the rest are only counted until none came for
/// `quietPeriod`, when one line sums the burst up. A flood of bad requests or connections thus costs one
/// counter increment each, never a log line each.
///
/// It also keeps `ollama_metrics_proxy_client_connections`, the open client connections.
final class RefusalReporter: Sendable {
    static let refusalsName = "ollama_metrics_proxy_refusals_total"
    static let connectionsName = "ollama_metrics_proxy_client_connections"

    private let counters: [ClientRefusal.Reason: Counter]
    let openConnections: Gauge
    private let logger: Logger
    private let quietPeriod: TimeAmount
    private let bursts = NIOLockedValueBox([ClientRefusal.Reason: Burst]())

    private struct Burst {
        var first: NIODeadline
        var last: NIODeadline
        var count: Int
    }

    init(registry: PrometheusCollectorRegistry, logger: Logger, quietPeriod: TimeAmount = .seconds(10)) {
        let descriptor = MetricNameDescriptor(
            metricName: Self.refusalsName, unitName: "",
            helpText: "Requests and connections the proxy answered itself and closed, by reason."
        )
        var counters: [ClientRefusal.Reason: Counter] = [:]
        for reason in ClientRefusal.Reason.allCases {
            counters[reason] = registry.makeCounter(descriptor: descriptor, labels: [("reason", reason.rawValue)])
        }
        self.counters = counters
        self.openConnections = registry.makeGauge(
            descriptor: MetricNameDescriptor(
                metricName: Self.connectionsName, unitName: "", helpText: "Open client connections to the proxy port."
            )
        )
        self.logger = logger
        self.quietPeriod = quietPeriod
    }

    /// Counts `refusal`; logs it if it starts a burst. `eventLoop` runs the check for the burst's end.
    func refused(_ refusal: ClientRefusal, clientAddress: String?, on eventLoop: EventLoop) {
        self.counters[refusal.reason]?.increment()
        let now = NIODeadline.now()
        let startsBurst = self.bursts.withLockedValue { bursts -> Bool in
            if bursts[refusal.reason] != nil {
                bursts[refusal.reason]!.last = now
                bursts[refusal.reason]!.count += 1
                return false
            }
            bursts[refusal.reason] = Burst(first: now, last: now, count: 1)
            return true
        }
        guard startsBurst else { return }
        self.logger.warning(
            "refused: \(refusal.message); more refusals for this reason are only counted (\(Self.refusalsName){reason=\"\(refusal.reason.rawValue)\"}) until they stop",
            metadata: ["reason": "\(refusal.reason.rawValue)", "status": "\(refusal.status.code)", "client": "\(clientAddress ?? "-")"]
        )
        self.scheduleEndCheck(reason: refusal.reason, at: now + self.quietPeriod, on: eventLoop)
    }

    private func scheduleEndCheck(reason: ClientRefusal.Reason, at deadline: NIODeadline, on eventLoop: EventLoop) {
        eventLoop.scheduleTask(deadline: deadline) {
            self.checkBurstEnd(reason: reason, on: eventLoop)
        }
    }

    private func checkBurstEnd(reason: ClientRefusal.Reason, on eventLoop: EventLoop) {
        let now = NIODeadline.now()
        enum Next { case ended(Burst), continues(NIODeadline) }
        let next = self.bursts.withLockedValue { bursts -> Next? in
            guard let burst = bursts[reason] else { return nil }
            if now - burst.last >= self.quietPeriod {
                bursts[reason] = nil
                return .ended(burst)
            }
            return .continues(burst.last + self.quietPeriod)
        }
        switch next {
        case .none:
            break
        case .continues(let deadline):
            self.scheduleEndCheck(reason: reason, at: deadline, on: eventLoop)
        case .ended(let burst):
            // A lone refusal was said in full when it happened.
            guard burst.count > 1 else { return }
            let tenths = (burst.last - burst.first).nanoseconds / 100_000_000
            self.logger.warning(
                "refusals stopped: \(burst.count) refused over \(tenths / 10).\(tenths % 10) s",
                metadata: ["reason": "\(reason.rawValue)", "count": "\(burst.count)"]
            )
        }
    }
}
