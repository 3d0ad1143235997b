import NIOConcurrencyHelpers
import NIOCore

/// Knows every open client connection, so that shutdown can ask each to finish its current response and
/// close (`ProxyConnectionHandler` does that on `ChannelShouldQuiesceEvent`), then wait for them.
final class ClientConnectionTracker: Sendable {
    private struct State {
        var channels: [ObjectIdentifier: Channel] = [:]
        var drained: [CheckedContinuation<Void, Never>] = []
    }
    private let state = NIOLockedValueBox(State())

    func track(_ channel: Channel) {
        let id = ObjectIdentifier(channel)
        self.state.withLockedValue { $0.channels[id] = channel }
        channel.closeFuture.whenComplete { _ in
            let waiters = self.state.withLockedValue { state -> [CheckedContinuation<Void, Never>] in
                state.channels[id] = nil
                guard state.channels.isEmpty else { return [] }
                defer { state.drained.removeAll() }
                return state.drained
            }
            for waiter in waiters { waiter.resume() }
        }
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
