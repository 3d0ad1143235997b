import NIOHTTP1

/// The life of every request the proxy forwards, inference or not, told to one observer (the access log):
/// - `RequestLifecycleObserver.requestReceived`: the request head arrived and its exchange began;
/// - for an inference request, `RequestLifecycleListener.inferenceBegan` and then the events of its
///   inference lifecycle, as any `InferenceLifecycleObserver` hears them;
/// - `requestEnded`: exactly once, with what the client got, after the inference lifecycle's `ended`.
///
/// Every call comes on the client connection's event loop; listeners read the clock themselves. A request
/// whose head never arrived whole (bytes that are not HTTP, a client that left mid-head) is not a request.
protocol RequestLifecycleObserver: Sendable {
    /// Returns the listener for the rest of this request's life.
    func requestReceived(_ request: RequestStart) -> any RequestLifecycleListener
}

/// The events of one request after it was received; see `RequestLifecycleObserver`.
protocol RequestLifecycleListener: InferenceLifecycleListener {
    /// The request is an inference request: its `InferenceLifecycleListener` events follow.
    func inferenceBegan(_ request: InferenceRequestStart)
    func requestEnded(_ ending: RequestEnding)
}

/// What is known of a request when it arrives. Nothing in it can carry a secret: no query string, no header.
struct RequestStart: Sendable, Equatable {
    var method: HTTPMethod
    /// The path Ollama routes on, without its query string, still percent-encoded as the client sent it
    /// (`InferenceEndpoint(path:)` decodes it as Ollama does).
    var path: String
    /// The client's IP address, when the connection has one.
    var clientAddress: String?
}

/// How a request ended, inference or not.
struct RequestEnding: Sendable, Equatable {
    /// The status the client got (Ollama's, or the proxy's own 502); nil when it got none (it hung up first).
    var status: Int?
    /// An inference request's outcome; for any other request `completed` once the response ended, else the
    /// reason it did not (`upstream_unreachable`, `upstream_disconnected`, `client_disconnected`).
    var outcome: InferenceEnding.Outcome
    /// Body bytes sent to Ollama (after the proxy's edit, if any).
    var requestBodyBytes: Int
    /// Body bytes of Ollama's response forwarded to the client (not those of the proxy's own 502).
    var responseBodyBytes: Int
}
