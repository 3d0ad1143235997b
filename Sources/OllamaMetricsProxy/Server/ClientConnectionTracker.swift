import NIOConcurrencyHelpers
import NIOCore
import Prometheus

/// Knows every open client connection: it admits new ones up to `--max-connections`, keeps the gauge of
/// open connections, and lets shutdown ask each to finish its current response and close
/// (`ProxyConnectionHandler` does that on `ChannelShouldQuiesceEvent`), then wait for them.
final class ClientConnectionTracker: Sendable {
    private struct State {
        var channels: [ObjectIdentifier: Channel] = [:]
        var drained: [CheckedContinuation<Void, Never>] = []
    }
    private let state = NIOLockedValueBox(State())
    private let limit: Int
    private let gauge: Gauge?

    /// - Parameter gauge: Set to the number of open connections on every change.
    init(limit: Int = .max, gauge: Gauge? = nil) {
        self.limit = limit
        self.gauge = gauge
    }

    /// Tracks `channel` until it closes, unless `limit` connections are open already: then false, and the
    /// caller refuses it.
    func admit(_ channel: Channel) -> Bool {
        let id = ObjectIdentifier(channel)
        // The gauge is set under the lock: set after it, two threads could leave an older count in it.
        let admitted = self.state.withLockedValue { state -> Bool in
            guard state.channels.count < self.limit else { return false }
            state.channels[id] = channel
            self.gauge?.set(Int64(state.channels.count))
            return true
        }
        guard admitted else { return false }
        channel.closeFuture.whenComplete { _ in
            let waiters = self.state.withLockedValue { state -> [CheckedContinuation<Void, Never>] in
                state.channels[id] = nil
                self.gauge?.set(Int64(state.channels.count))
                guard state.channels.isEmpty else { return [] }
                defer { state.drained.removeAll() }
                return state.drained
            }
            for waiter in waiters { waiter.resume() }
        }
        return true
    }

    /// Asks every connection to close after its in-flight response and waits up to `timeout` for all of
    /// them; whatever is still open then is closed.
    func drain(timeout: Duration) async {
        let channels = self.state.withLockedValue { Array($0.channels.values) }
        for channel in channels {
            channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await withCheckedContinuation { continuation in
                    let done = self.state.withLockedValue { state -> Bool in
                        if state.channels.isEmpty { return true }
                        state.drained.append(continuation)
                        return false
                    }
                    if done { continuation.resume() }
                }
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
            }
            await group.next()
            group.cancelAll()
        }
        let remaining = self.state.withLockedValue { Array($0.channels.values) }
        for channel in remaining {
            channel.close(promise: nil)
        }
    }
}
