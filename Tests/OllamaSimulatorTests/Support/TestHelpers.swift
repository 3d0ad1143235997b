@testable import OllamaSimulator

/// The `Date` header every response carries under the fixture clock.
let fixtureDate = "Sun, 01 Jun 2025 12:00:00 GMT"
/// `created_at` under the fixture clock.
let fixtureCreatedAt = "2025-06-01T12:00:00Z"
/// `created` (Unix seconds) under the fixture clock.
let fixtureCreated = 1_748_779_200

extension SimulatorOptions {
    /// Fixed clock, so whole responses can be compared byte for byte.
    static var fixture: SimulatorOptions {
        var options = SimulatorOptions()
        options.clock = .fixtureInstant
        return options
    }
}

/// Starts a simulator on a free loopback port, runs `body`, and always shuts it down.
func withSimulator<T>(
    defaults: SimulatorBehaviour = .init(),
    options: SimulatorOptions = .fixture,
    _ body: (OllamaSimulator) async throws -> T
) async throws -> T {
    let simulator = try await OllamaSimulator.start(defaults: defaults, options: options)
    do {
        let result = try await body(simulator)
        try await simulator.shutdown()
        return result
    } catch {
        try? await simulator.shutdown()
        throw error
    }
}

/// The text of an HTTP/1.1 request with a `Host` header (and `Content-Length` when there is a body).
func httpRequest(
    _ method: String,
    _ target: String,
    port: Int,
    body: String? = nil,
    headers: [(String, String)] = [],
    host: String? = nil
) -> String {
    var text = "\(method) \(target) HTTP/1.1\r\nHost: \(host ?? "127.0.0.1:\(port)")\r\n"
    if let body {
        text += "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n"
    }
    for (name, value) in headers { text += "\(name): \(value)\r\n" }
    return text + "\r\n" + (body ?? "")
}

extension OllamaSimulator {
    /// Sends one request on a new connection and reads the response.
    func exchange(
        _ method: String,
        _ target: String,
        body: String? = nil,
        headers: [(String, String)] = [],
        host: String? = nil
    ) async throws -> RawResponse {
        let connection = try await RawConnection.connect(port: port)
        do {
            try await connection.send(httpRequest(method, target, port: port, body: body, headers: headers, host: host))
            let response = try await connection.readResponse(isHeadRequest: method == "HEAD")
            await connection.close()
            return response
        } catch {
            await connection.close()
            throw error
        }
    }

    func post(_ target: String, _ body: String, headers: [(String, String)] = []) async throws -> RawResponse {
        try await exchange("POST", target, body: body, headers: headers)
    }
}

/// The head Go writes: status line, the handler's headers (already sorted), `Date`, then the framing header.
func expectedHead(_ statusLine: String, _ headers: [(String, String)]) -> String {
    var text = statusLine + "\r\n"
    for (name, value) in headers { text += "\(name): \(value)\r\n" }
    return text + "\r\n"
}

/// Splits an NDJSON or SSE body into its events (each including its terminator).
func ndjsonLines(_ text: String) -> [String] {
    text.split(separator: "\n", omittingEmptySubsequences: true).map { $0 + "\n" }
}

/// Parses a JSON text the way the simulator reads request bodies.
func parseJSON(_ text: String) throws -> JSONValue {
    try GoJSONDecoder.decode(Array(text.utf8))
}

/// The `data:` JSON of each SSE event of a body (`[DONE]` excluded).
func sseDataPayloads(_ text: String) throws -> [JSONValue] {
    try text.split(separator: "\n").filter { $0.hasPrefix("data: ") && $0 != "data: [DONE]" }.map {
        try parseJSON(String($0.dropFirst(6)))
    }
}

/// The `event:` names of an SSE body, in order.
func sseEventNames(_ text: String) -> [String] {
    text.split(separator: "\n").filter { $0.hasPrefix("event: ") }.map { String($0.dropFirst(7)) }
}
