import NIOHTTP1

/// The life of one inference request as the proxy sees it, told to observers (the metrics recorder, the
/// serving-insight recorder, client attribution; several behind a `CompositeLifecycleObserver`) so that
/// forwarding never knows what is done with it.
///
/// For every inference request (a `POST` to an `InferenceEndpoint`), in this order:
/// 1. `InferenceLifecycleObserver.requestBegan`: the body was read (model, endpoint, streaming or not). Also
///    emitted, without a model, when Ollama proved unreachable while the body was still arriving, and when a
///    body too large to inspect starts streaming through.
/// 2. `upstreamConnected`: the request was given a connection to Ollama (at most once per attempt; a
///    request replayed on a fresh connection reports it again).
/// 3. `responseHeadReceived`: Ollama's status code.
/// 4. `firstContentForwarded`: the first chunk that carries generated content went to the client (not the
///    response head, not a role-only chunk or `message_start`).
/// 5. `usageSeen`: the final usage went by; the request is complete from here on, whatever follows.
/// 6. `ended`: exactly once, with the outcome and the bytes each way.
///
/// Steps 2 to 5 may be missing (Ollama unreachable, an error status, a client that hung up…); `ended` never
/// is. Every call comes on the client connection's event loop; listeners read the clock themselves.
protocol InferenceLifecycleObserver: Sendable {
    /// Returns the listener for the rest of this request's life.
    func requestBegan(_ request: InferenceRequestStart) -> InferenceLifecycleListener
}

/// The events of one request after it began; see `InferenceLifecycleObserver`.
protocol InferenceLifecycleListener: AnyObject {
    func upstreamConnected(reused: Bool)
    func responseHeadReceived(status: Int)
    func firstContentForwarded()
    func usageSeen(_ usage: Usage)
    func ended(_ ending: InferenceEnding)
}

/// What is known of an inference request when its life begins.
struct InferenceRequestStart: Sendable, Equatable {
    var endpoint: InferenceEndpoint
    /// The model the body names; nil when it names none, is not JSON, or was too large to read.
    var model: String?
    var isStreaming: Bool
    /// The client's request headers, for observers that label by one of them (`--client-header`).
    var clientHeaders = HTTPHeaders()
}

/// How an inference request ended.
struct InferenceEnding: Sendable, Equatable {
    enum Outcome: Sendable, Equatable {
        /// The usage went by (`usageSeen` was called).
        case completed
        case failed(FailureReason)
    }

    var outcome: Outcome
    /// Body bytes sent to Ollama (after the proxy's edit, if any).
    var requestBodyBytes: Int
    /// Body bytes forwarded to the client.
    var responseBodyBytes: Int
}

/// Which lifecycle events one step of an exchange produced; the data they carry is read from the exchange.
/// All but `requestEnded` are an inference request's (`InferenceLifecycleListener`); `requestEnded` ends
/// every request, inference or not (`RequestLifecycleListener`), after `ended` when both come.
struct InferenceLifecycleEvents: OptionSet, Sendable {
    let rawValue: UInt8

    static let began = Self(rawValue: 1 << 0)
    static let upstreamConnected = Self(rawValue: 1 << 1)
    static let responseHead = Self(rawValue: 1 << 2)
    static let firstContent = Self(rawValue: 1 << 3)
    static let usage = Self(rawValue: 1 << 4)
    static let ended = Self(rawValue: 1 << 5)
    static let requestEnded = Self(rawValue: 1 << 6)
}
