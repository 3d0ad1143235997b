import NIOHTTP1

/// A fully received request, with the behaviour it asked for.
struct SimulatorRequest {
    let sequence: Int
    let method: String
    /// The request target, query included.
    let uri: String
    let path: String
    let headers: HTTPHeaders
    let body: [UInt8]
    let bodyByteCount: Int
    /// The defaults with the request's `X-Sim-*` headers applied.
    let behaviour: SimulatorBehaviour
    let state: SimulatorState
    /// Values of the route's `:name` segments.
    var parameters: [String: String] = [:]

    var options: SimulatorOptions { state.options }
    var clock: SimulatorClock { state.options.clock }

    init(
        sequence: Int,
        method: String,
        uri: String,
        headers: HTTPHeaders,
        body: [UInt8],
        bodyByteCount: Int,
        behaviour: SimulatorBehaviour,
        state: SimulatorState
    ) {
        self.sequence = sequence
        self.method = method
        self.uri = uri
        self.path = uri.firstIndex(of: "?").map { String(uri[..<$0]) } ?? uri
        self.headers = headers
        self.body = body
        self.bodyByteCount = bodyByteCount
        self.behaviour = behaviour
        self.state = state
    }
}

extension SimulatorBehaviour {
    func forcedStatusMessage(model: String) -> String? {
        guard let status = forcedStatus else { return nil }
        return errorMessage ?? SimulatedText.errorMessage(status: status, model: model)
    }

    var midStreamErrorMessage: String { errorMessage ?? SimulatedText.midStreamErrorMessage }
}
