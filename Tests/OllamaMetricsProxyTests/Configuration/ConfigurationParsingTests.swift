import Testing

@testable import OllamaMetricsProxy

@Suite struct ListenAddressParsing {
    @Test(arguments: [
        (":11435", nil as String?, 11435),
        ("0.0.0.0:9836", "0.0.0.0", 9836),
        ("127.0.0.1:0", "127.0.0.1", 0),
        ("localhost:8080", "localhost", 8080),
        ("[::1]:11435", "::1", 11435),
        ("[::]:1", "::", 1),
    ])
    func acceptsEveryFormTheGoToolAccepted(text: String, host: String?, port: Int) throws {
        let address = try ListenAddress(parsing: text)
        #expect(address.host == host)
        #expect(address.port == port)
    }

    @Test(arguments: ["11435", ":", ":http", ":70000", "::1:80", "[::1:80", "[]:80", "host:-1"])
    func rejectsMalformedAddressesWithAMessageNamingThem(text: String) {
        #expect {
            try ListenAddress(parsing: text)
        } throws: { error in
            "\(error)".contains(text)
        }
    }

    @Test func describesItselfTheWayItWasWritten() throws {
        #expect(try ListenAddress(parsing: ":11435").description == ":11435")
        #expect(try ListenAddress(parsing: "[::1]:80").description == "[::1]:80")
        #expect(try ListenAddress(parsing: "127.0.0.1:80").description == "127.0.0.1:80")
    }
}

@Suite struct UpstreamURLParsing {
    @Test func defaultOllamaURL() throws {
        let url = try UpstreamURL(parsing: "http://localhost:11434")
        #expect(url.host == "localhost")
        #expect(url.port == 11434)
        #expect(url.basePath == "")
        #expect(url.hostHeader == "localhost:11434")
    }

    @Test func keepsABasePathWithoutItsTrailingSlash() throws {
        let url = try UpstreamURL(parsing: "http://gpu-box:8080/ollama/")
        #expect(url.host == "gpu-box")
        #expect(url.port == 8080)
        #expect(url.basePath == "/ollama")
    }

    @Test func portDefaultsToEighty() throws {
        let url = try UpstreamURL(parsing: "http://ollama.internal")
        #expect(url.port == 80)
        #expect(url.hostHeader == "ollama.internal")
    }

    @Test func acceptsBracketedIPv6() throws {
        let url = try UpstreamURL(parsing: "http://[::1]:11434")
        #expect(url.host == "::1")
        #expect(url.port == 11434)
        #expect(url.hostHeader == "[::1]:11434")
    }

    @Test(arguments: [
        ("https://localhost:11434", "only http://"),
        ("localhost:11434", "expected http://"),
        ("http://", "missing host"),
        ("http://:11434", "missing host"),
        ("http://localhost:abc", "invalid port"),
        ("http://localhost:0", "invalid port"),
        ("http://localhost:11434/?x=1", "query string"),
    ])
    func rejectsWhatItCannotForwardTo(text: String, reason: String) {
        #expect {
            try UpstreamURL(parsing: text)
        } throws: { error in
            "\(error)".contains(reason)
        }
    }
}
