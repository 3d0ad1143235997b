/// Where a client connection gets its connections to Ollama: the event loop's pool in the proxy, a stand-in
/// in tests of the connection handler.
protocol UpstreamConnectionSource: AnyObject {
    /// Hands a connection to `body`, on the caller's event loop: `reused` when it served earlier requests.
    func acquire(_ body: @escaping (Result<(connection: UpstreamConnection, reused: Bool), Error>) -> Void)
    /// Takes back a connection whose exchange ended cleanly, for the next request.
    func release(_ connection: UpstreamConnection)
}

extension UpstreamConnectionPool: UpstreamConnectionSource {}
