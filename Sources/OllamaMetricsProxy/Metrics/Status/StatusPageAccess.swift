import NIOHTTP1

/// Who may see the status page and its JSON when `--metrics-token-file` protects the metrics port.
///
/// A browser cannot send `Authorization: Bearer` when it navigates, so the token is given once in the
/// page's address, `GET /?token=<token>`: the answer sets a cookie and redirects to the page without the
/// token (out of the address bar and the history). The cookie is `HttpOnly` (no script reads it),
/// `SameSite=Strict` (no other site's page sends it) and lasts until the browser closes; it holds a value
/// derived from the token, which opens the page and its JSON but not `/metrics`. The JSON takes the cookie
/// or the bearer token, as scripts do; neither takes the token in a query string. Every comparison takes the
/// same time wherever the first wrong byte is.
struct StatusPageAccess: Sendable {
    static let cookieName = "ollama_metrics_proxy_status"

    enum Decision: Equatable {
        case allowed
        /// The right `?token=`: answer `303 See Other` to `./` with this `Set-Cookie` value.
        case redirect(setCookie: String)
        case refused
    }

    /// nil: the metrics port is open, and so is the page.
    let token: MetricsToken?
    private let cookieValue: [UInt8]

    init(token: MetricsToken?) {
        self.token = token
        self.cookieValue = Array((token?.derivedSecret(for: "ollama-metrics-proxy status page cookie") ?? "").utf8)
    }

    /// - Parameter acceptsQueryToken: Whether this path takes `?token=` (the page does, its JSON does not).
    func decide(uri: String, headers: HTTPHeaders, acceptsQueryToken: Bool) -> Decision {
        guard let token = self.token else { return .allowed }
        if acceptsQueryToken, let given = Self.queryParameter("token", in: uri) {
            // A token in the address decides alone, so that a wrong one is never masked by an old cookie.
            return token.matches(given) ? .redirect(setCookie: self.setCookie) : .refused
        }
        if token.authorizes(headers.first(name: "authorization")) { return .allowed }
        for value in Self.cookies(named: Self.cookieName, in: headers) where MetricsToken.constantTimeEqual(value, self.cookieValue) {
            return .allowed
        }
        return .refused
    }

    /// The `Set-Cookie` header of a successful `?token=`: no `Max-Age`, so it ends with the browser session;
    /// no `Secure`, because the metrics port speaks plain HTTP (put TLS in front to keep it off the network).
    var setCookie: String {
        "\(Self.cookieName)=\(String(decoding: self.cookieValue, as: UTF8.self)); Path=/; HttpOnly; SameSite=Strict"
    }

    /// The percent-decoded value of the first `name=` parameter of the URI's query, if there is one. A `+`
    /// stays a `+` (a token has no spaces to encode).
    static func queryParameter(_ name: String, in uri: String) -> [UInt8]? {
        guard let question = uri.utf8.firstIndex(of: UInt8(ascii: "?")) else { return nil }
        var query = uri.utf8[uri.utf8.index(after: question)...]
        if let hash = query.firstIndex(of: UInt8(ascii: "#")) { query = query[..<hash] }
        let prefix = Array(name.utf8) + [UInt8(ascii: "=")]
        for parameter in query.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true)
        where parameter.starts(with: prefix) {
            return Self.percentDecoded(parameter.dropFirst(prefix.count))
        }
        return nil
    }

    private static func percentDecoded(_ bytes: some Collection<UInt8>) -> [UInt8] {
        func hexValue(_ byte: UInt8) -> UInt8? {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
            default: nil
            }
        }
        let input = Array(bytes)
        var output: [UInt8] = []
        var index = 0
        while index < input.count {
            if input[index] == UInt8(ascii: "%"), index + 2 < input.count,
                let high = hexValue(input[index + 1]), let low = hexValue(input[index + 2])
            {
                output.append(high << 4 | low)
                index += 3
            } else {
                output.append(input[index])
                index += 1
            }
        }
        return output
    }

    /// The values of every cookie called `name` in the request's `Cookie` headers.
    static func cookies(named name: String, in headers: HTTPHeaders) -> [[UInt8]] {
        var found: [[UInt8]] = []
        let prefix = Array(name.utf8) + [UInt8(ascii: "=")]
        for header in headers["cookie"] {
            for pair in header.utf8.split(separator: UInt8(ascii: ";")) {
                let trimmed = pair.drop { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }
                if trimmed.starts(with: prefix) { found.append(Array(trimmed.dropFirst(prefix.count))) }
            }
        }
        return found
    }
}
