/// Several observers of the inference lifecycle behind one, so that the connection handler reports each
/// event once. Observers hear every event in the order they are listed: an observer that relies on another
/// one's work at `requestBegan` (a model label admitted by the metrics recorder) comes after it.
struct CompositeLifecycleObserver: InferenceLifecycleObserver {
    let observers: [any InferenceLifecycleObserver]

    init(_ observers: [any InferenceLifecycleObserver]) {
        self.observers = observers
    }

    func requestBegan(_ request: InferenceRequestStart) -> InferenceLifecycleListener {
        if self.observers.count == 1 { return self.observers[0].requestBegan(request) }
        return CompositeLifecycleListener(listeners: self.observers.map { $0.requestBegan(request) })
    }
}

/// One request's listeners, told every event in order.
final class CompositeLifecycleListener: InferenceLifecycleListener {
    private let listeners: [InferenceLifecycleListener]

    init(listeners: [InferenceLifecycleListener]) {
        self.listeners = listeners
    }

    func upstreamConnected(reused: Bool) {
        for listener in self.listeners { listener.upstreamConnected(reused: reused) }
    }

    func responseHeadReceived(status: Int) {
        for listener in self.listeners { listener.responseHeadReceived(status: status) }
    }

    func firstContentForwarded() {
        for listener in self.listeners { listener.firstContentForwarded() }
    }

    func usageSeen(_ usage: Usage) {
        for listener in self.listeners { listener.usageSeen(usage) }
    }

    func ended(_ ending: InferenceEnding) {
        for listener in self.listeners { listener.ended(ending) }
    }
}
