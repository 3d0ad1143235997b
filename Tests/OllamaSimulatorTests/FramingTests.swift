import Testing

@testable import OllamaSimulator

/// Go `net/http` + gin framing: header order, `Content-Length` vs chunked, 404/405, HEAD, keep-alive, pipelining.
@Suite struct FramingTests {
    @Test func rootAnswersOllamaIsRunningWithGoHeaders() async throws {
        try await withSimulator { ollama in
            let response = try await ollama.exchange("GET", "/")
            #expect(
                response.head
                    == expectedHead(
                        "HTTP/1.1 200 OK",
                        [
                            ("Content-Type", "text/plain; charset=utf-8"), ("Date", fixtureDate),
                            ("Content-Length", "17"),
                        ]
                    )
            )
            #expect(response.bodyText == "Ollama is running")
        }
    }

    @Test func headRootSendsTheGetHeadersWithoutABody() async throws {
        try await withSimulator { ollama in
            let connection = try await RawConnection.connect(port: ollama.port)
            try await connection.send(httpRequest("HEAD", "/", port: ollama.port))
            let head = try await connection.readResponse(isHeadRequest: true)
            #expect(head.status == 200)
            #expect(head.header("Content-Length") == "17")
            #expect(head.header("Content-Type") == "text/plain; charset=utf-8")
            // Nothing after the head: the next response on the connection starts right away.
            try await connection.send(httpRequest("GET", "/api/version", port: ollama.port))
            let next = try await connection.readResponse()
            #expect(next.bodyText == #"{"version":"0.33.0"}"#)
            await connection.close()
        }
    }

    @Test func unknownRouteIs404PlainText() async throws {
        try await withSimulator { ollama in
            let response = try await ollama.exchange("GET", "/api/nothing-here")
            #expect(
                response.head
                    == expectedHead(
                        "HTTP/1.1 404 Not Found",
                        [("Content-Type", "text/plain"), ("Date", fixtureDate), ("Content-Length", "18")]
                    )
            )
            #expect(response.bodyText == "404 page not found")
        }
    }

    @Test func knownRouteWithWrongMethodIs405WithAllow() async throws {
        try await withSimulator { ollama in
            let response = try await ollama.exchange("GET", "/api/chat")
            #expect(
                response.head
                    == expectedHead(
                        "HTTP/1.1 405 Method Not Allowed",
                        [
                            ("Allow", "POST"), ("Content-Type", "text/plain"), ("Date", fixtureDate),
                            ("Content-Length", "22"),
                        ]
                    )
            )
            #expect(response.bodyText == "405 method not allowed")
            let tags = try await ollama.exchange("POST", "/api/tags", body: "{}")
            #expect(tags.header("Allow") == "HEAD, GET")
        }
    }

    @Test func trailingSlashRedirectsLikeGin() async throws {
        try await withSimulator { ollama in
            let get = try await ollama.exchange("GET", "/api/tags/?x=1")
            #expect(get.status == 301)
            #expect(get.header("Location") == "/api/tags?x=1")
            #expect(get.bodyText == "<a href=\"/api/tags?x=1\">Moved Permanently</a>.\n\n")
            let post = try await ollama.post("/api/chat/", "{}")
            #expect(post.status == 307)
            #expect(post.header("Location") == "/api/chat")
            #expect(post.header("Content-Length") == "0")
        }
    }

    @Test func routesOnThePathAsNetHTTPDecodesIt() async throws {
        try await withSimulator { ollama in
            #expect(try await ollama.exchange("GET", "/api/%76ersion").bodyText == #"{"version":"0.33.0"}"#)
            #expect(try await ollama.exchange("GET", "/api%2Fversion").status == 200, "%2F is a slash in URL.Path")
            #expect(try await ollama.exchange("GET", "/api/%56ersion").status == 404, "case-sensitive")
            #expect(try await ollama.exchange("GET", "/api/./version").status == 404, "no cleaning")
            let bad = try await ollama.exchange("GET", "/api/%zzersion")
            #expect(bad.status == 400)
            #expect(bad.bodyText == "400 Bad Request")
        }
        #expect(Router.unescapedPath("/a%2B+%2b") == "/a+++", "a + stays a +")
        #expect(Router.unescapedPath("/a%+f") == nil)
        #expect(Router.unescapedPath("/a%4") == nil)
    }

    @Test func smallBodiesHaveContentLengthAndLargeOnesAreChunked() async throws {
        try await withSimulator { ollama in
            let version = try await ollama.exchange("GET", "/api/version")
            #expect(version.header("Content-Length") == "20")
            #expect(version.header("Transfer-Encoding") == nil)

            let show = try await ollama.post("/api/show", #"{"model":"llama3.2"}"#)
            #expect(show.body.count > 2048)
            #expect(show.header("Content-Length") == nil)
            #expect(show.header("Transfer-Encoding") == "chunked")
            #expect(show.headerNames == ["Content-Type", "Date", "Transfer-Encoding"])
            #expect(show.chunks?.count == 1)
            #expect(show.isComplete)
        }
    }

    @Test func bodyOfExactly2048BytesStillHasContentLength() async throws {
        var options = SimulatorOptions.fixture
        // Pad the catalogue so that /api/tags is exactly 2048 bytes, then one byte more.
        let base = try await withSimulator(options: options) { try await $0.exchange("GET", "/api/tags").body.count }
        var padded = options.models[0]
        padded.family += String(repeating: "x", count: (2048 - base) / 2)
        options.models[0] = padded
        let (size, framing) = try await withSimulator(options: options) { ollama in
            let response = try await ollama.exchange("GET", "/api/tags")
            return (response.body.count, response.header("Content-Length"))
        }
        #expect(size <= 2048 && size >= 2047)
        #expect(framing == String(size))

        padded.family += "yy"
        options.models[0] = padded
        let (large, largeHead) = try await withSimulator(options: options) { ollama in
            (try await ollama.exchange("GET", "/api/tags"), try await ollama.exchange("HEAD", "/api/tags"))
        }
        #expect(large.body.count > 2048)
        #expect(large.header("Transfer-Encoding") == "chunked")
        // Go sends neither length nor chunking for a HEAD whose body would not have fitted its buffer.
        #expect(largeHead.headerNames == ["Content-Type", "Date"])
    }

    @Test func keepAliveServesSeveralRequestsOnOneConnection() async throws {
        try await withSimulator { ollama in
            let connection = try await RawConnection.connect(port: ollama.port)
            for round in 0..<3 {
                try await connection.send(
                    httpRequest("POST", "/api/chat", port: ollama.port, body: #"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#)
                )
                let response = try await connection.readResponse()
                #expect(response.status == 200, "round \(round)")
                #expect(response.isComplete)
                #expect(ndjsonLines(response.bodyText).count == 4)
            }
            #expect(!connection.isClosedByPeer)
            await connection.close()
            #expect(ollama.requestCount == 3)
        }
    }

    @Test func pipelinedRequestsAreAnsweredInOrder() async throws {
        try await withSimulator { ollama in
            let connection = try await RawConnection.connect(port: ollama.port)
            let requests =
                httpRequest("GET", "/api/version", port: ollama.port)
                + httpRequest("POST", "/api/generate", port: ollama.port, body: #"{"model":"m","prompt":"p"}"#)
                + httpRequest("GET", "/", port: ollama.port)
            try await connection.send(requests)
            let first = try await connection.readResponse()
            let second = try await connection.readResponse()
            let third = try await connection.readResponse()
            #expect(first.bodyText == #"{"version":"0.33.0"}"#)
            #expect(second.header("Content-Type") == "application/x-ndjson")
            #expect(second.chunks?.count == 4)
            #expect(third.bodyText == "Ollama is running")
            await connection.close()
        }
    }

    @Test func connectionCloseIsHonouredAndAnnounced() async throws {
        try await withSimulator { ollama in
            let connection = try await RawConnection.connect(port: ollama.port)
            try await connection.send(httpRequest("GET", "/", port: ollama.port, headers: [("Connection", "close")]))
            let response = try await connection.readResponse()
            #expect(
                response.headerNames == ["Content-Type", "Date", "Content-Length", "Connection"]
            )
            #expect(response.header("Connection") == "close")
            #expect(await connection.waitForClose())
            await connection.close()
        }
    }

    @Test func http10RequestsGetAnHttp10AnswerAndAClose() async throws {
        try await withSimulator { ollama in
            let connection = try await RawConnection.connect(port: ollama.port)
            let body = #"{"model":"m","prompt":"p"}"#
            try await connection.send(
                "POST /api/generate HTTP/1.0\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
            )
            let response = try await connection.readResponse()
            #expect(response.statusLine == "HTTP/1.0 200 OK")
            #expect(response.header("Transfer-Encoding") == nil)
            #expect(ndjsonLines(response.bodyText).count == 4)
            #expect(connection.isClosedByPeer)
            await connection.close()
        }
    }

    @Test func foreignHostNamesAreRefusedLikeOllamaOnLoopback() async throws {
        try await withSimulator { ollama in
            let refused = try await ollama.exchange("GET", "/api/tags", host: "evil.example.com")
            #expect(
                refused.head
                    == expectedHead("HTTP/1.1 403 Forbidden", [("Date", fixtureDate), ("Content-Length", "0")])
            )
            for allowed in ["localhost:11434", "ollama.internal", "127.0.0.1", "[::1]:11434", "10.1.2.3", "box.local"] {
                let response = try await ollama.exchange("GET", "/api/tags", host: allowed)
                #expect(response.status == 200, "\(allowed)")
            }
            let preflight = try await ollama.exchange("OPTIONS", "/api/chat", host: "localhost")
            #expect(preflight.status == 204)
            #expect(preflight.headerNames == ["Date"])
        }
        var options = SimulatorOptions.fixture
        options.checksHost = false
        try await withSimulator(options: options) { ollama in
            let response = try await ollama.exchange("GET", "/api/tags", host: "evil.example.com")
            #expect(response.status == 200)
        }
    }

    @Test func expectContinueGetsAnInterimResponse() async throws {
        try await withSimulator { ollama in
            let connection = try await RawConnection.connect(port: ollama.port)
            let body = #"{"model":"m","prompt":"p","stream":false}"#
            try await connection.send(
                "POST /api/generate HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\n"
                    + "Content-Length: \(body.utf8.count)\r\n\r\n"
            )
            let interim = try await connection.readUntil("\r\n\r\n", timeout: .seconds(10))
            #expect(interim == "HTTP/1.1 100 Continue\r\n\r\n")
            try await connection.send(body)
            let response = try await connection.readResponse()
            #expect(response.status == 200)
            await connection.close()
        }
    }
}
