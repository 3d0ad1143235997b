import NIOHTTP1
import Testing

@testable import OllamaMetricsProxy

@Suite struct UpstreamRequestHeadRewriting {
    let upstream = try! UpstreamURL(parsing: "http://localhost:11434")

    func clientHead(_ headers: [(String, String)], uri: String = "/api/tags") -> HTTPRequestHead {
        HTTPRequestHead(version: .http1_1, method: .GET, uri: uri, headers: HTTPHeaders(headers))
    }

    @Test func setsHostToTheUpstreamBecauseOllamaRejectsUnknownHosts() {
        let head = UpstreamRequestHead.make(
            from: self.clientHead([("Host", "proxy.example:11435")]), upstream: self.upstream, clientAddress: nil
        )
        #expect(head.headers["host"] == ["localhost:11434"])
        #expect(head.headers["x-forwarded-host"] == ["proxy.example:11435"])
    }

    @Test func removesHopByHopHeadersAndThoseTheConnectionHeaderNames() {
        let head = UpstreamRequestHead.make(
            from: self.clientHead([
                ("Host", "x"), ("Connection", "keep-alive, X-Secret"), ("X-Secret", "1"), ("Keep-Alive", "timeout=5"),
                ("Upgrade", "websocket"), ("TE", "trailers"), ("Proxy-Authorization", "Basic abc"),
                ("Expect", "100-continue"), ("Authorization", "Bearer kept"),
            ]),
            upstream: self.upstream, clientAddress: nil
        )
        for removed in ["connection", "x-secret", "keep-alive", "upgrade", "te", "proxy-authorization", "expect"] {
            #expect(!head.headers.contains(name: removed), "\(removed) should not be forwarded")
        }
        #expect(head.headers["authorization"] == ["Bearer kept"])
    }

    @Test func findsHopByHopNamesInAnyLetterCaseAndNothingElse() {
        for name in ["TE", "te", "Te", "KEEP-ALIVE", "Proxy-Connection", "trailer", "UpGrade", "connection"] {
            #expect(HopByHopHeaders.isFixed(name), "\(name)")
        }
        for name in ["tea", "t", "", "Keep_Alive", "keep-alivex", "Content-Length", "Transfer-Encoding", "Host"] {
            #expect(!HopByHopHeaders.isFixed(name), "\(name)")
        }
    }

    @Test func aHeadWithoutHopByHopHeadersIsForwardedAsIs() {
        let client = self.clientHead([("Host", "x"), ("Content-Type", "application/json"), ("Authorization", "Bearer k")])
        let head = UpstreamRequestHead.make(from: client, upstream: self.upstream, clientAddress: "10.0.0.7")
        #expect(head.headers.count == 6)
        #expect(head.headers["content-type"] == ["application/json"])
        #expect(head.headers["authorization"] == ["Bearer k"])
        #expect(head.headers["host"] == ["localhost:11434"])
        #expect(head.headers["x-forwarded-for"] == ["10.0.0.7"])
    }

    @Test func appendsTheClientToXForwardedFor() {
        let fresh = UpstreamRequestHead.make(
            from: self.clientHead([("Host", "x")]), upstream: self.upstream, clientAddress: "10.0.0.7"
        )
        #expect(fresh.headers["x-forwarded-for"] == ["10.0.0.7"])
        #expect(fresh.headers["x-forwarded-proto"] == ["http"])
        let chained = UpstreamRequestHead.make(
            from: self.clientHead([("Host", "x"), ("X-Forwarded-For", "1.2.3.4")]), upstream: self.upstream,
            clientAddress: "10.0.0.7"
        )
        #expect(chained.headers["x-forwarded-for"] == ["1.2.3.4, 10.0.0.7"])
    }

    @Test func keepsQueryStringAndPrefixesTheBasePath() throws {
        let based = try UpstreamURL(parsing: "http://gpu:8080/ollama")
        let head = UpstreamRequestHead.make(
            from: self.clientHead([("Host", "x")], uri: "/api/tags?verbose=1&x=%20"), upstream: based, clientAddress: nil
        )
        #expect(head.uri == "/ollama/api/tags?verbose=1&x=%20")
        #expect(head.headers["host"] == ["gpu:8080"])
    }

    @Test func acceptsAbsoluteFormTargets() {
        #expect(UpstreamRequestHead.originForm(of: "http://proxy:11435/api/ps?x=1") == "/api/ps?x=1")
        #expect(UpstreamRequestHead.originForm(of: "http://proxy:11435") == "/")
        #expect(UpstreamRequestHead.originForm(of: "/api/chat") == "/api/chat")
    }

    @Test func replacesFramingWhenTheProxySendsAnEditedBody() {
        let head = UpstreamRequestHead.make(
            from: self.clientHead([("Host", "x"), ("Transfer-Encoding", "chunked")]), upstream: self.upstream,
            clientAddress: nil, bodyLength: 42
        )
        #expect(!head.headers.contains(name: "transfer-encoding"))
        #expect(head.headers["content-length"] == ["42"])
    }

    @Test func aConnectionOptionCannotRemoveFramingOrHost() {
        for nominated in ["Content-Length", "content-length, Transfer-Encoding", "Host", "HOST, X-Hop"] {
            let head = UpstreamRequestHead.make(
                from: HTTPRequestHead(
                    version: .http1_1, method: .POST, uri: "/api/show",
                    headers: HTTPHeaders([("Host", "proxy:1"), ("Connection", nominated), ("Content-Length", "40"), ("X-Hop", "1")])
                ),
                upstream: self.upstream, clientAddress: nil
            )
            #expect(head.headers["content-length"] == ["40"], "\(nominated)")
            #expect(head.headers["host"] == ["localhost:11434"], "\(nominated)")
            #expect(head.headers["x-forwarded-host"] == ["proxy:1"], "\(nominated)")
            #expect(!head.headers.contains(name: "connection"), "\(nominated)")
            #expect(head.headers.contains(name: "x-hop") == !nominated.contains("X-Hop"), "\(nominated)")
        }
        let chunked = UpstreamRequestHead.make(
            from: HTTPRequestHead(
                version: .http1_1, method: .POST, uri: "/api/show",
                headers: HTTPHeaders([("Host", "x"), ("Connection", "Transfer-Encoding"), ("Transfer-Encoding", "chunked")])
            ),
            upstream: self.upstream, clientAddress: nil
        )
        #expect(chunked.headers["transfer-encoding"] == ["chunked"])
    }

    @Test func aChunkedRequestGoesUpstreamWithTheOneSpellingNIOsEncoderChunksFor() {
        for codings in [[("Transfer-Encoding", "Chunked")], [("transfer-encoding", " chunked ,")], [("Transfer-Encoding", ""), ("Transfer-Encoding", "chunked")]] {
            let head = UpstreamRequestHead.make(
                from: HTTPRequestHead(version: .http1_1, method: .POST, uri: "/api/show", headers: HTTPHeaders([("Host", "x")] + codings)),
                upstream: self.upstream, clientAddress: nil
            )
            #expect(head.headers["transfer-encoding"] == ["chunked"], "\(codings)")
            #expect(head.headers.filter { $0.name.lowercased() == "transfer-encoding" }.map(\.value) == ["chunked"], "\(codings)")
        }
        // As the client spelt it when it already is that spelling.
        let exact = UpstreamRequestHead.make(
            from: HTTPRequestHead(version: .http1_1, method: .POST, uri: "/x", headers: HTTPHeaders([("transfer-encoding", "chunked")])),
            upstream: self.upstream, clientAddress: nil
        )
        #expect(exact.headers.first { $0.value == "chunked" }?.name == "transfer-encoding")
    }

    @Test func aRequestWithoutFramingGetsNone() {
        let head = UpstreamRequestHead.make(from: self.clientHead([("Host", "x"), ("Connection", "Content-Length")]), upstream: self.upstream, clientAddress: nil)
        #expect(!head.headers.contains(name: "content-length") && !head.headers.contains(name: "transfer-encoding"))
    }

    @Test func routesOnThePathWithoutQuery() {
        #expect(UpstreamRequestHead.path(of: "/api/chat?x=1") == "/api/chat")
        #expect(InferenceEndpoint(path: UpstreamRequestHead.path(of: "/v1/messages?beta=true")) == .messages)
        #expect(InferenceEndpoint(path: "/v1/messages/count_tokens") == nil)
        #expect(InferenceEndpoint(path: "/api/tags") == nil)
    }
}

@Suite struct ClientResponseHeadRewriting {
    static let request = HTTPRequestHead(version: .http1_1, method: .POST, uri: "/v1/messages")

    @Test func passesOllamaHeadersThroughUnchanged() {
        let upstream = HTTPResponseHead(
            version: .http1_1, status: .ok,
            headers: HTTPHeaders([
                ("Content-Type", "text/event-stream"), ("Cache-Control", "no-cache"), ("Connection", "keep-alive"),
                ("Date", "Sun, 01 Jun 2025 12:00:00 GMT"), ("Transfer-Encoding", "chunked"),
            ])
        )
        let forwarded = ClientResponseHead.make(from: upstream, for: Self.request)
        #expect(forwarded.head == upstream)
        #expect(forwarded.upstreamKeepAlive)
        #expect(!forwarded.closeClientAfterResponse)
    }

    @Test func dropsConnectionCloseWhichOnlyConcernsTheUpstreamConnection() {
        let upstream = HTTPResponseHead(
            version: .http1_1, status: .ok, headers: HTTPHeaders([("Content-Length", "2"), ("Connection", "close")])
        )
        let forwarded = ClientResponseHead.make(from: upstream, for: Self.request)
        #expect(!forwarded.head.headers.contains(name: "connection"))
        #expect(forwarded.head.headers["content-length"] == ["2"])
        #expect(!forwarded.upstreamKeepAlive)
        #expect(!forwarded.closeClientAfterResponse)
    }

    @Test func onlyAPlainKeepAliveConnectionHeaderIsKept() {
        for (value, kept) in [
            (" Keep-Alive ", true), ("KEEP-ALIVE", true), ("keep-alive, close", false), ("keep-alive, X-Hop", false),
            ("Upgrade", false),
        ] {
            let upstream = HTTPResponseHead(
                version: .http1_1, status: .ok,
                headers: HTTPHeaders([("Content-Length", "2"), ("Connection", value), ("X-Hop", "1")])
            )
            let forwarded = ClientResponseHead.make(from: upstream, for: Self.request)
            #expect(forwarded.head.headers["connection"] == (kept ? [value] : []), "\(value)")
            #expect(forwarded.head.headers.contains(name: "x-hop") == !value.contains("X-Hop"), "\(value)")
        }
        // Two Connection headers, or another hop-by-hop header beside it: the set is rebuilt.
        let twice = HTTPResponseHead(
            version: .http1_1, status: .ok,
            headers: HTTPHeaders([("Connection", "keep-alive"), ("Connection", "keep-alive"), ("Keep-Alive", "timeout=5")])
        )
        let forwarded = ClientResponseHead.make(from: twice, for: Self.request)
        #expect(forwarded.head.headers["connection"] == [])
        #expect(forwarded.head.headers["keep-alive"] == [])
    }

    @Test func aBodyTheProxyShortensLosesItsDeclaredLengthAndIsChunked() {
        let upstream = HTTPResponseHead(
            version: .http1_1, status: .ok,
            headers: HTTPHeaders([("Content-Type", "text/event-stream"), ("Content-Length", "900")])
        )
        let forwarded = ClientResponseHead.make(from: upstream, for: Self.request, bodyMayShrink: true)
        #expect(forwarded.head.headers["content-length"] == [])
        #expect(forwarded.head.headers["transfer-encoding"] == ["chunked"])
    }

    @Test func http10ClientsGetCloseDelimitedBodiesInsteadOfChunks() {
        let upstream = HTTPResponseHead(
            version: .http1_1, status: .ok,
            headers: HTTPHeaders([("Content-Type", "application/x-ndjson"), ("Transfer-Encoding", "chunked")])
        )
        let request = HTTPRequestHead(version: .http1_0, method: .POST, uri: "/api/generate")
        let forwarded = ClientResponseHead.make(from: upstream, for: request)
        #expect(forwarded.head.version == .http1_0)
        #expect(!forwarded.head.headers.contains(name: "transfer-encoding"))
        #expect(forwarded.closeClientAfterResponse)
    }

    @Test func bothContentLengthAndTransferEncodingLoseTheLengthAndTheConnectionIsNotReused() {
        let upstream = HTTPResponseHead(
            version: .http1_1, status: .ok, headers: HTTPHeaders([("Content-Length", "5"), ("Transfer-Encoding", "chunked")])
        )
        let forwarded = ClientResponseHead.make(from: upstream, for: Self.request)
        #expect(forwarded.head.headers["content-length"] == [])
        #expect(forwarded.head.headers["transfer-encoding"] == ["chunked"])
        #expect(!forwarded.upstreamKeepAlive, "its framing is suspect")
        #expect(!forwarded.closeClientAfterResponse)
        let http10 = ClientResponseHead.make(from: upstream, for: HTTPRequestHead(version: .http1_0, method: .POST, uri: "/api/chat"))
        #expect(http10.head.headers["content-length"] == [] && http10.head.headers["transfer-encoding"] == [])
        #expect(http10.closeClientAfterResponse, "delimited by the close")
    }

    @Test func aCodingWithoutFinalChunkedRunsToTheCloseForTheClientToo() {
        let upstream = HTTPResponseHead(version: .http1_1, status: .ok, headers: HTTPHeaders([("Transfer-Encoding", "gzip")]))
        let forwarded = ClientResponseHead.make(from: upstream, for: Self.request)
        #expect(forwarded.head.headers["transfer-encoding"] == ["gzip"], "the client must undo it")
        #expect(forwarded.closeClientAfterResponse)
        #expect(forwarded.head.headers["connection"] == ["close"])
    }

    @Test func ollamasConnectionOptionCannotRemoveTheResponsesFraming() {
        let upstream = HTTPResponseHead(
            version: .http1_1, status: .ok, headers: HTTPHeaders([("Connection", "Content-Length"), ("Content-Length", "2")])
        )
        let forwarded = ClientResponseHead.make(from: upstream, for: Self.request)
        #expect(forwarded.head.headers["content-length"] == ["2"])
        #expect(!forwarded.head.headers.contains(name: "connection"))
        #expect(!forwarded.head.headers.contains(name: "transfer-encoding"))
    }

    @Test func theProxysOwnResponsesFollowTheClientsConnection() {
        func own(_ version: HTTPVersion, _ headers: [(String, String)], mustClose: Bool = false) -> (HTTPResponseHead, Bool) {
            var head = ProxyErrorResponse.badGateway(message: "down", endpoint: nil).0
            let request = HTTPRequestHead(version: version, method: .POST, uri: "/api/tags", headers: HTTPHeaders(headers))
            let close = ClientResponseHead.ownResponse(&head, for: request, mustClose: mustClose)
            return (head, close)
        }
        let keepAlive = own(.http1_1, [])
        #expect(!keepAlive.1 && !keepAlive.0.headers.contains(name: "connection"))
        let asked = own(.http1_1, [("Connection", "close")])
        #expect(asked.1 && asked.0.headers["connection"] == ["close"])
        let unfinished = own(.http1_1, [], mustClose: true)
        #expect(unfinished.1 && unfinished.0.headers["connection"] == ["close"])
        let http10 = own(.http1_0, [])
        #expect(http10.1 && http10.0.headers["connection"] == ["close"] && http10.0.version == .http1_0)
        let http10KeepAlive = own(.http1_0, [("Connection", "keep-alive")])
        #expect(!http10KeepAlive.1 && http10KeepAlive.0.headers["connection"] == ["keep-alive"])
    }

    @Test func aClientThatAskedToCloseIsToldSo() {
        let upstream = HTTPResponseHead(
            version: .http1_1, status: .ok, headers: HTTPHeaders([("Connection", "keep-alive"), ("Content-Length", "2")])
        )
        var request = Self.request
        request.headers.add(name: "Connection", value: "close")
        let forwarded = ClientResponseHead.make(from: upstream, for: request)
        #expect(forwarded.closeClientAfterResponse)
        #expect(forwarded.head.headers["connection"] == ["close"])
    }
}

@Suite struct BadGatewayBodies {
    @Test(arguments: [
        (InferenceEndpoint?.none, #"{"error":"down \"now\""}"#),
        (.chat, #"{"error":"down \"now\""}"#),
        (.chatCompletions, #"{"error":{"message":"down \"now\"","type":"api_error","param":null,"code":null}}"#),
        (.messages, #"{"type":"error","error":{"type":"api_error","message":"down \"now\""}}"#),
    ])
    func speakTheDialectOfTheEndpoint(endpoint: InferenceEndpoint?, expected: String) {
        let (head, body) = ProxyErrorResponse.badGateway(message: #"down "now""#, endpoint: endpoint)
        #expect(head.status == .badGateway)
        #expect(String(buffer: body) == expected)
        #expect(head.headers["content-length"] == ["\(expected.utf8.count)"])
    }
}
