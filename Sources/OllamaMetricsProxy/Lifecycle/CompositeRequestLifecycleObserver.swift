/// Several request observers behind one (the access log and the status page), so that the connection
/// handler keeps reporting each event once. Listeners hear every event in the order the observers are listed.
struct CompositeRequestLifecycleObserver: RequestLifecycleObserver {
    let observers: [any RequestLifecycleObserver]

    /// The observers as one, or nil when there are none; one alone is returned as it is.
    static func combining(_ observers: [any RequestLifecycleObserver]) -> (any RequestLifecycleObserver)? {
        switch observers.count {
        case 0: nil
        case 1: observers[0]
        default: CompositeRequestLifecycleObserver(observers: observers)
        }
    }

    func requestReceived(_ request: RequestStart) -> any RequestLifecycleListener {
        CompositeRequestLifecycleListener(listeners: self.observers.map { $0.requestReceived(request) })
    }
}

/// One request's listeners, told every event in order.
final class CompositeRequestLifecycleListener: CompositeLifecycleListener, RequestLifecycleListener {
    private let requestListeners: [any RequestLifecycleListener]

    init(listeners: [any RequestLifecycleListener]) {
        self.requestListeners = listeners
        super.init(listeners: listeners)
    }

    func inferenceBegan(_ request: InferenceRequestStart) {
        for listener in self.requestListeners { listener.inferenceBegan(request) }
    }

    func requestEnded(_ ending: RequestEnding) {
        for listener in self.requestListeners { listener.requestEnded(ending) }
    }
}
