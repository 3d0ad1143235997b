import NIOHTTP1
import Testing

@testable import OllamaMetricsProxy

/// The proxy meters a request exactly when Ollama (Go's net/http + gin, default settings) runs it as
/// inference: each row is a request target and the endpoint gin routes `POST` of it to (nil: none).
@Suite struct RequestPathClassification {
    static let rows: [(target: String, endpoint: InferenceEndpoint?)] = [
        ("/api/generate", .generate),
        ("/api/generate?stream=false", .generate),
        // net/http decodes every escape into URL.Path, and gin routes on it.
        ("/api/%67enerate", .generate),
        ("/api/%67%65%6E%65%72%61%74%65", .generate),
        ("/api/%67%65%6e%65%72%61%74%65", .generate),
        ("/%61pi/chat", .chat),
        ("/api%2Fchat", .chat),
        ("/api%2fchat", .chat),
        ("/v1%2Fchat%2Fcompletions", .chatCompletions),
        ("/v1/messages?beta=true", .messages),
        ("/v1/%6Dessages", .messages),
        // The query starts at the first `?` of the raw target; an encoded one is part of the path.
        ("/api/chat%3F", nil),
        ("/api/chat%3Fx=1", nil),
        ("/api/chat?%zz", .chat),
        // A request line has no fragment: `#` is part of the path for Go.
        ("/api/chat#x", nil),
        ("/api/chat%23", nil),
        // Exact match: case, double slashes, dot segments, trailing slash (gin redirects; the follow-up runs).
        ("/API/chat", nil),
        ("/api/Chat", nil),
        ("/api/%43hat", nil),
        ("//api/chat", nil),
        ("/api//chat", nil),
        ("/%2Fapi/chat", nil),
        ("/api/./chat", nil),
        ("/api/%2E/chat", nil),
        ("/api/x/../chat", nil),
        ("/api/chat/", nil),
        ("/api/chat%2F", nil),
        ("/api/chat%00", nil),
        ("/api/chat+", nil),
        ("/api/chat%20", nil),
        ("/api/cha", nil),
        ("/api/chatt", nil),
        ("", nil),
        ("/", nil),
        ("%2Fapi%2Fchat", nil),
        // Absolute form: routed on its path, as the proxy forwards it.
        ("http://proxy:11435/api/chat", .chat),
        ("HTTP://proxy:11435/api/%63hat?x", .chat),
        ("https://proxy/v1/responses", .responses),
        ("http://proxy:11435", nil),
    ]

    @Test func everyTargetIsClassifiedAsGinRoutesIt() {
        for (target, endpoint) in Self.rows {
            #expect(InferenceEndpoint(path: UpstreamRequestHead.routedPath(of: target)) == endpoint, "\(target)")
        }
    }

    @Test func everyEndpointIsRecognisedBothPlainAndFullyEscaped() {
        for endpoint in InferenceEndpoint.allCases {
            #expect(InferenceEndpoint(path: endpoint.rawValue) == endpoint)
            let escaped = endpoint.rawValue.utf8.map { "%" + String($0, radix: 16, uppercase: $0 % 2 == 0) }.joined()
            #expect(InferenceEndpoint(path: escaped) == endpoint, "\(escaped)")
        }
    }

    @Test(arguments: ["/api/%", "/api/%6", "/api/%zz", "/api/%g0", "/api/%0g", "/%%61", "/api/chat%", "/a%2", "http://p/%x1"])
    func anInvalidEscapeInThePathIsGosBadRequest(target: String) {
        #expect(RequestPath.decoded(UpstreamRequestHead.routedPath(of: target).utf8) == nil)
        #expect(InferenceEndpoint(path: UpstreamRequestHead.routedPath(of: target)) == nil)
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: target)
        #expect(RequestHeadValidation.refusal(for: head) == .invalidRequestTarget)
    }

    @Test(arguments: ["/api/chat?%", "/api/chat?q=%zz", "/x?%%%"])
    func escapesInTheQueryAreNotCheckedAsGoDoesNot(target: String) {
        let head = HTTPRequestHead(version: .http1_1, method: .POST, uri: target)
        #expect(RequestHeadValidation.refusal(for: head) == nil)
    }

    @Test func decodingGivesGosBytes() {
        func decoded(_ path: String) -> [UInt8]? {
            switch RequestPath.decoded(path.utf8) {
            case .raw(let bytes): Array(bytes)
            case .escaped(let bytes): bytes
            case nil: nil
            }
        }
        #expect(decoded("/a%2Fb%3f%00%ff%C3%A9") == Array("/a/b?".utf8) + [0, 0xFF, 0xC3, 0xA9])
        #expect(decoded("/plain+path") == Array("/plain+path".utf8))
        #expect(decoded("") == [])
        if case .raw = RequestPath.decoded("/api/chat".utf8) {} else { Issue.record("a path without % is not copied") }
    }

    @Test func theLoggedPathIsThatOfTheForwardedTargetStillEncoded() {
        #expect(UpstreamRequestHead.routedPath(of: "/api/%67enerate?x=1") == "/api/%67enerate")
        #expect(UpstreamRequestHead.routedPath(of: "http://h:1/api/chat?x") == "/api/chat")
        #expect(UpstreamRequestHead.routedPath(of: "/a#b?c") == "/a#b")
    }
}
