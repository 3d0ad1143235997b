import NIOCore
import NIOHTTP1

/// Ollama's route table (`server/routes.go` `GenerateRoutes`) and gin's routing behaviour: trailing-slash
/// redirects, 405 with `Allow` for a known path with another method, 404 otherwise; the host check runs for
/// matched routes, 405 and 404 alike.
enum Router {
    typealias Handler = @Sendable (SimulatorRequest) -> any ResponseProducer

    private struct Route {
        let method: String
        let segments: [Substring]
        let handler: Handler

        func match(_ pathSegments: [Substring]) -> [String: String]? {
            guard pathSegments.count == segments.count else { return nil }
            var parameters: [String: String] = [:]
            for (pattern, actual) in zip(segments, pathSegments) {
                if pattern.hasPrefix(":") {
                    guard !actual.isEmpty else { return nil }
                    parameters[String(pattern.dropFirst())] = String(actual)
                } else if pattern != actual {
                    return nil
                }
            }
            return parameters
        }
    }

    /// gin keeps one tree per method, in the order each method was first registered: HEAD, GET, POST, DELETE.
    private static let methodOrder = ["HEAD", "GET", "POST", "DELETE"]

    private static let routes: [Route] = {
        func route(_ method: String, _ path: String, _ handler: @escaping Handler) -> Route {
            let segments = path.split(separator: "/", omittingEmptySubsequences: false)
            return Route(method: method, segments: segments, handler: handler)
        }
        return [
            route("HEAD", "/", ModelManagement.root),
            route("GET", "/", ModelManagement.root),
            route("HEAD", "/api/version", ModelManagement.version),
            route("GET", "/api/version", ModelManagement.version),
            route("GET", "/api/status", ModelManagement.status),
            route("POST", "/api/pull", ModelManagement.pull),
            route("POST", "/api/push", ModelManagement.push),
            route("HEAD", "/api/tags", ModelManagement.tags),
            route("GET", "/api/tags", ModelManagement.tags),
            route("POST", "/api/show", ModelManagement.show),
            route("DELETE", "/api/delete", ModelManagement.delete),
            route("POST", "/api/me", ModelManagement.unsupported),
            route("POST", "/api/signout", ModelManagement.unsupported),
            route("DELETE", "/api/user/keys/:encodedKey", ModelManagement.unsupported),
            route("POST", "/api/create", ModelManagement.create),
            route("POST", "/api/blobs/:digest", ModelManagement.createBlob),
            route("HEAD", "/api/blobs/:digest", ModelManagement.headBlob),
            route("POST", "/api/copy", ModelManagement.copy),
            route("POST", "/api/experimental/web_search", ModelManagement.unsupported),
            route("POST", "/api/experimental/web_fetch", ModelManagement.unsupported),
            route("GET", "/api/experimental/model-recommendations", ModelManagement.unsupported),
            route("GET", "/api/ps", ModelManagement.ps),
            route("POST", "/api/generate", NativeGeneration.generate),
            route("POST", "/api/chat", NativeGeneration.chat),
            route("POST", "/api/embed", NativeEmbeddings.embed),
            route("POST", "/api/embeddings", NativeEmbeddings.embeddings),
            route("POST", "/v1/chat/completions", OpenAIChat.chatCompletions),
            route("POST", "/v1/completions", OpenAICompletions.completions),
            route("POST", "/v1/embeddings", OpenAIModels.embeddings),
            route("GET", "/v1/models", OpenAIModels.list),
            route("GET", "/v1/models/:model", OpenAIModels.retrieve),
            route("POST", "/v1/responses", OpenAIResponses.responses),
            route("POST", "/v1/audio/transcriptions", ModelManagement.unsupported),
            route("POST", "/v1/messages", Anthropic.messages),
        ]
    }()

    struct Incoming {
        var sequence: Int
        var method: String
        var uri: String
        var headers: HTTPHeaders
        var body: [UInt8]
        var bodyByteCount: Int
    }

    /// The response to a fully received request.
    static func respond(to incoming: Incoming, state: SimulatorState, checksHost: Bool) -> any ResponseProducer {
        let rawPath = incoming.uri.firstIndex(of: "?").map { String(incoming.uri[..<$0]) } ?? incoming.uri
        // net/http decodes the path into `URL.Path` before gin sees it (an invalid escape is a 400 from the
        // server, before any handler), and gin routes on it (`UseRawPath` off).
        guard let path = unescapedPath(rawPath) else {
            return FixedSteps(GoResponse.complete(
                status: 400, headers: [("Content-Type", "text/plain; charset=utf-8"), ("Connection", "close")],
                body: Array("400 Bad Request".utf8)
            ))
        }
        let segments = path.split(separator: "/", omittingEmptySubsequences: false)

        let forMethod = routes.filter { $0.method == incoming.method }
        if let (route, parameters) = firstMatch(forMethod, segments) {
            if let refusal = hostRefusal(incoming, checksHost: checksHost) { return FixedSteps(refusal) }
            return run(route, parameters: parameters, incoming: incoming, state: state)
        }
        if let redirect = trailingSlashRedirect(incoming, path: path, candidates: forMethod) {
            return FixedSteps(redirect)
        }
        if let refusal = hostRefusal(incoming, checksHost: checksHost) { return FixedSteps(refusal) }
        let allowed = methodOrder.filter { method in
            method != incoming.method && routes.contains { $0.method == method && $0.match(segments) != nil }
        }
        if !allowed.isEmpty {
            return FixedSteps(
                GoResponse.complete(
                    status: 405,
                    headers: [("Allow", allowed.joined(separator: ", ")), ("Content-Type", "text/plain")],
                    body: Array("405 method not allowed".utf8)
                )
            )
        }
        return FixedSteps(
            GoResponse.complete(
                status: 404,
                headers: [("Content-Type", "text/plain")],
                body: Array("404 page not found".utf8)
            )
        )
    }

    /// Go's `url.PathUnescape` as `url.ParseRequestURI` applies it to the path: every `%XX` decoded (`%2F`
    /// into `/`), `+` kept; nil for a `%` without two hex digits. Bytes that are not UTF-8 become U+FFFD here,
    /// which no route contains either.
    static func unescapedPath(_ raw: String) -> String? {
        guard raw.contains("%") else { return raw }
        var bytes: [UInt8] = []
        var rest = raw.utf8[...]
        while let byte = rest.popFirst() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            let digits = rest.prefix(2)
            guard digits.count == 2, digits.allSatisfy({ Character(Unicode.Scalar($0)).isHexDigit }),
                let value = UInt8(String(decoding: digits, as: UTF8.self), radix: 16)
            else { return nil }
            bytes.append(value)
            rest = rest.dropFirst(2)
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func firstMatch(_ routes: [Route], _ segments: [Substring]) -> (Route, [String: String])? {
        for route in routes {
            if let parameters = route.match(segments) { return (route, parameters) }
        }
        return nil
    }

    private static func run(
        _ route: Route,
        parameters: [String: String],
        incoming: Incoming,
        state: SimulatorState
    ) -> any ResponseProducer {
        let behaviour: SimulatorBehaviour
        do {
            behaviour = try state.defaults.applying(
                headers: incoming.headers.map { ($0.name, $0.value) }
            )
        } catch {
            return FixedSteps(GoResponse.nativeError(400, error.description))
        }
        var request = SimulatorRequest(
            sequence: incoming.sequence,
            method: incoming.method,
            uri: incoming.uri,
            headers: incoming.headers,
            body: incoming.body,
            bodyByteCount: incoming.bodyByteCount,
            behaviour: behaviour,
            state: state
        )
        request.parameters = parameters
        let handled = route.handler(request)
        let response = HeadFaults.wrapping(handled, behaviour: behaviour)

        var prelude: [ResponseStep] = []
        let inferenceGatesLater = behaviour.gateAfterTokens > 0 && handled is any GatedProducer
        if let gate = behaviour.gate, !inferenceGatesLater { prelude.append(.gate(gate)) }
        if behaviour.headerDelay > .zero { prelude.append(.wait(behaviour.headerDelay.timeAmount)) }
        return prelude.isEmpty ? response : Prefixed(prelude: prelude, rest: response)
    }

    private static func hostRefusal(_ incoming: Incoming, checksHost: Bool) -> [ResponseStep]? {
        guard checksHost else { return nil }
        switch HostCheck.verdict(hostHeader: incoming.headers.first(name: "Host"), method: incoming.method) {
        case .allowed: return nil
        case .preflight: return GoResponse.empty(204)
        case .forbidden: return GoResponse.empty(403)
        }
    }

    /// gin's `RedirectTrailingSlash`: 301 for GET, 307 otherwise, to the path with the slash added or removed;
    /// `http.Redirect` writes a small HTML body for GET and HEAD.
    private static func trailingSlashRedirect(
        _ incoming: Incoming,
        path: String,
        candidates: [Route]
    ) -> [ResponseStep]? {
        guard path != "/", incoming.method != "CONNECT" else { return nil }
        let toggled = path.hasSuffix("/") ? String(path.dropLast()) : path + "/"
        let toggledSegments = toggled.split(separator: "/", omittingEmptySubsequences: false)
        guard firstMatch(candidates, toggledSegments) != nil else { return nil }
        let query = incoming.uri.firstIndex(of: "?").map { String(incoming.uri[$0...]) } ?? ""
        let location = toggled + query
        let status = incoming.method == "GET" ? 301 : 307
        if incoming.method == "GET" || incoming.method == "HEAD" {
            let body = "<a href=\"\(htmlEscape(location))\">\(GoHTTP.statusText(status))</a>.\n\n"
            return GoResponse.complete(
                status: status,
                headers: [("Content-Type", "text/html; charset=utf-8"), ("Location", location)],
                body: Array(body.utf8)
            )
        }
        return GoResponse.empty(status, headers: [("Location", location)])
    }

    private static func htmlEscape(_ text: String) -> String {
        var escaped = ""
        for character in text {
            switch character {
            case "&": escaped += "&amp;"
            case "<": escaped += "&lt;"
            case ">": escaped += "&gt;"
            case "\"": escaped += "&#34;"
            case "'": escaped += "&#39;"
            default: escaped.append(character)
            }
        }
        return escaped
    }
}

/// A producer that holds responses at its gate itself (after some tokens), so the router must not hold it first.
protocol GatedProducer: ResponseProducer {}

/// Steps to run before another producer's.
struct Prefixed: ResponseProducer {
    private var prelude: [ResponseStep]
    private var rest: any ResponseProducer

    init(prelude: [ResponseStep], rest: any ResponseProducer) {
        self.prelude = prelude.reversed()
        self.rest = rest
    }

    mutating func nextStep(clock: SimulatorClock) -> ResponseStep? {
        if let step = prelude.popLast() { return step }
        return rest.nextStep(clock: clock)
    }
}

extension Duration {
    var timeAmount: TimeAmount {
        let (seconds, attoseconds) = components
        return .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}
