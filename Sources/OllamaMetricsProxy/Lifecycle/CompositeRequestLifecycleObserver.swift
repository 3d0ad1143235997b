/// Several request observers behind one (the access log and the status page), so that the connection
/// handler keeps reporting each event once. Listeners hear every event in the order the observers are listed.
///
/// An observer that wants nothing of a request answers `IgnoredRequest.shared`, which is left out: a request
/// that only one observer follows costs nothing more than with that observer alone, and one that two follow
/// costs one pair.
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
        var combined: (any RequestLifecycleListener)?
        for observer in self.observers {
            let listener = observer.requestReceived(request)
            guard listener !== IgnoredRequest.shared else { continue }
            combined = combined.map { RequestLifecycleListenerPair(first: $0, second: listener) } ?? listener
        }
        return combined ?? IgnoredRequest.shared
    }
}

/// The listener of an observer that wants nothing of a request: hears nothing, shared by all.
final class IgnoredRequest: RequestLifecycleListener, Sendable {
    static let shared = IgnoredRequest()

    func inferenceBegan(_ request: InferenceRequestStart) {}
    func requestEnded(_ ending: RequestEnding) {}
    func upstreamConnected(reused: Bool) {}
    func responseHeadReceived(status: Int) {}
    func firstContentForwarded() {}
    func usageSeen(_ usage: Usage) {}
    func ended(_ ending: InferenceEnding) {}
}

/// Two listeners of one request, told every event in order: one object, no array.
final class RequestLifecycleListenerPair: RequestLifecycleListener {
    private let first: any RequestLifecycleListener
    private let second: any RequestLifecycleListener

    init(first: any RequestLifecycleListener, second: any RequestLifecycleListener) {
        self.first = first
        self.second = second
    }

    func inferenceBegan(_ request: InferenceRequestStart) {
        self.first.inferenceBegan(request)
        self.second.inferenceBegan(request)
    }

    func requestEnded(_ ending: RequestEnding) {
        self.first.requestEnded(ending)
        self.second.requestEnded(ending)
    }

    func upstreamConnected(reused: Bool) {
        self.first.upstreamConnected(reused: reused)
        self.second.upstreamConnected(reused: reused)
    }

    func responseHeadReceived(status: Int) {
        self.first.responseHeadReceived(status: status)
        self.second.responseHeadReceived(status: status)
    }

    func firstContentForwarded() {
        self.first.firstContentForwarded()
        self.second.firstContentForwarded()
    }

    func usageSeen(_ usage: Usage) {
        self.first.usageSeen(usage)
        self.second.usageSeen(usage)
    }

    func ended(_ ending: InferenceEnding) {
        self.first.ended(ending)
        self.second.ended(ending)
    }
}
