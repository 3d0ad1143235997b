import NIOCore
import NIOHTTP1

@testable import OllamaMetricsProxy

/// One request a random client sends and the answer a random Ollama gives it: the input of the property
/// tests of `ExchangeStateMachine` and `ProxyConnectionHandler`. Inference requests answer with the real
/// response bodies of `WireFixtures`, so the inspectors see usage, errors and truncations as Ollama writes
/// them; other requests carry arbitrary bytes.
struct RandomExchangePlan {
    /// The request's place on its connection.
    let index: Int
    /// `client.index`, sent as `X-Req` and echoed in Ollama's response, so that each side can tell which
    /// request it sees.
    let id: String
    let head: HTTPRequestHead
    let bodyParts: [ByteBuffer]
    let endpoint: InferenceEndpoint?
    /// The largest inference body the proxy holds to read it.
    let maxInspectedRequestBody: Int
    /// Ollama's answer: an informational head first, maybe, then the final head and the body in pieces.
    let informational: HTTPResponseHead?
    let responseHead: HTTPResponseHead
    let responseParts: [ByteBuffer]
    /// The response bytes the client must get when the whole answer went through (a usage chunk the proxy
    /// asked for on the client's behalf is withheld).
    let expectedForwarded: [UInt8]

    var body: [UInt8] { self.bodyParts.flatMap { Array($0.readableBytesView) } }
    var responseBody: [UInt8] { self.responseParts.flatMap { Array($0.readableBytesView) } }
    var isInference: Bool { self.endpoint != nil }

    /// The body Ollama must receive: the client's, or for an inspected inference body its edited form.
    var expectedUpstreamBody: [UInt8] {
        let body = self.body
        guard let endpoint, body.count <= self.maxInspectedRequestBody else { return body }
        let (_, rewritten) = RequestInspector.inspect(endpoint: endpoint, body: ByteBuffer(bytes: body))
        return rewritten.map { Array($0.readableBytesView) } ?? body
    }

    /// `maxInspectedRequestBody`: the proxy's limit, when it is the same for several plans.
    static func make(
        index: Int, client: Int = 0, maxInspectedRequestBody: Int? = nil, random: inout SeededRandom
    ) -> RandomExchangePlan {
        let id = "\(client).\(index)"
        var headers = HTTPHeaders([("Host", "proxy"), ("X-Req", id)])
        let version: HTTPVersion = random.oneIn(20) ? .http1_0 : .http1_1
        if random.oneIn(12) { headers.add(name: "Connection", value: "close") }
        let maxInspected = maxInspectedRequestBody ?? Self.randomInspectionLimit(&random)

        let method: HTTPMethod
        let uri: String
        var body: [UInt8] = []
        var endpoint: InferenceEndpoint?
        var fixture: ResponseFixture?
        var inferenceStatus = HTTPResponseStatus.ok
        switch random.below(8) {
        case 0, 1:
            (method, uri) = (.GET, "/api/tags?r=\(index)")
        case 2:
            (method, uri) = (.HEAD, "/")
        case 3:
            (method, uri) = (.POST, "/api/pull")
            body = Array("{\"model\":\"m\",\"pad\":\"\(String(repeating: "x", count: random.below(40)))\"}".utf8)
        default:
            let chosen = random.pick(WireFixtures.all)
            fixture = chosen
            endpoint = chosen.endpoint
            (method, uri) = (.POST, chosen.endpoint.rawValue)
            inferenceStatus = random.weighted([(16, .ok), (1, .notFound), (1, .badRequest), (1, .internalServerError)])!
            // A model Ollama does not know (404) has its series evicted: a name of its own keeps that from
            // taking the counts of other requests with it.
            let model = inferenceStatus == .notFound ? "gone-\(id)" : "llama3.2"
            var json = #"{"model":"\#(model)","stream":\#(chosen.isStreaming)"#
            if chosen.endpoint.needsIncludeUsageOnStreams, chosen.isStreaming, !chosen.withholdUsageChunks {
                json += #","stream_options":{"include_usage":true}"#  // asked by the client: no edit, nothing withheld
            }
            body = Array((json + "}").utf8)
        }
        if !body.isEmpty {
            if random.bool() {
                headers.add(name: "Content-Length", value: "\(body.count)")
            } else {
                headers.add(name: "Transfer-Encoding", value: "chunked")
            }
            if random.oneIn(10) { headers.add(name: "Expect", value: "100-continue") }
        }
        let head = HTTPRequestHead(version: version, method: method, uri: uri, headers: headers)

        let status = endpoint != nil ? inferenceStatus : random.weighted([(8, .ok), (1, .notFound)])!
        let inspected = endpoint != nil && status == .ok && body.count <= maxInspected
        var responseBody: [UInt8]
        var expected: [UInt8]
        var responseHeaders = HTTPHeaders([("X-Req", id)])
        if method == .HEAD {
            responseBody = []
            expected = []
        } else if let fixture, status == .ok {
            responseBody = fixture.body
            expected = inspected ? fixture.expectedForwarded : fixture.body
            if let contentType = fixture.contentType { responseHeaders.add(name: "Content-Type", value: contentType) }
        } else {
            responseBody = Array("answer \(index) \(String(repeating: "y", count: random.below(60)))".utf8)
            expected = responseBody
            responseHeaders.add(name: "Content-Type", value: "application/json")
        }
        if random.bool() {
            responseHeaders.add(name: "Content-Length", value: "\(method == .HEAD ? 17 : responseBody.count)")
        } else if method != .HEAD {
            responseHeaders.add(name: "Transfer-Encoding", value: "chunked")
        }
        if random.oneIn(8) { responseHeaders.add(name: "Connection", value: "close") }

        return RandomExchangePlan(
            index: index, id: id, head: head,
            bodyParts: random.split(body, maxParts: 4).filter { !$0.isEmpty }.map { ByteBuffer(bytes: $0) },
            endpoint: endpoint, maxInspectedRequestBody: maxInspected,
            informational: random.oneIn(10) ? HTTPResponseHead(version: .http1_1, status: .init(statusCode: 103)) : nil,
            responseHead: HTTPResponseHead(version: .http1_1, status: status, headers: responseHeaders),
            responseParts: random.split(responseBody, maxParts: 6).filter { !$0.isEmpty }.map { ByteBuffer(bytes: $0) },
            expectedForwarded: expected
        )
    }

    /// Mostly a limit no body reaches; sometimes one small enough that inference bodies stream through unread.
    static func randomInspectionLimit(_ random: inout SeededRandom) -> Int {
        random.oneIn(6) ? random.int(in: 1...40) : 1024 * 1024
    }
}
