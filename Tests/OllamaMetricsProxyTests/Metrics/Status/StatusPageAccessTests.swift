import NIOHTTP1
import Testing
@testable import OllamaMetricsProxy

/// The token once in the page's address, then a cookie; the JSON by cookie or bearer token.
@Suite struct StatusPageAccessTests {
    static let token = try! MetricsToken(fileContents: Array("s3cret+T0ken/=\n".utf8), path: "token")
    static let access = StatusPageAccess(token: token)

    static func decide(_ uri: String, _ headers: [(String, String)] = [], page: Bool = true) -> StatusPageAccess.Decision {
        access.decide(uri: uri, headers: HTTPHeaders(headers), acceptsQueryToken: page)
    }

    /// The cookie the right `?token=` sets, as a browser sends it back.
    static var cookie: String {
        guard case .redirect(let setCookie) = decide("/?token=s3cret+T0ken/=") else { return "" }
        return String(setCookie.prefix { $0 != ";" })
    }

    @Test func withoutATokenEverythingIsOpen() {
        let open = StatusPageAccess(token: nil)
        #expect(open.decide(uri: "/", headers: [:], acceptsQueryToken: true) == .allowed)
        #expect(open.decide(uri: "/?token=anything", headers: [:], acceptsQueryToken: true) == .allowed)
        #expect(open.decide(uri: "/status.json", headers: [:], acceptsQueryToken: false) == .allowed)
    }

    @Test func theRightTokenInTheAddressSetsAStrictHttpOnlySessionCookie() throws {
        let decision = Self.decide("/?token=s3cret+T0ken/=")
        guard case .redirect(let setCookie) = decision else {
            Issue.record("expected a redirect, got \(decision)")
            return
        }
        let parts = setCookie.split(separator: ";").map { $0.trimmingPrefix(" ") }
        #expect(parts.first?.hasPrefix("ollama_metrics_proxy_status=") == true)
        #expect(Set(parts.dropFirst()) == ["Path=/", "HttpOnly", "SameSite=Strict"], "no Max-Age: gone with the browser session")
        #expect(!setCookie.contains("s3cret"), "the cookie holds a derived value, not the token")
        // Percent-encoded, and among other parameters.
        #expect(Self.decide("/?a=1&token=s3cret%2BT0ken%2F%3D&b") == decision)
    }

    @Test(arguments: ["/?token=", "/?token=s3cret+T0ken/", "/?token=s3cret+T0ken/==", "/?token=S3cret+T0ken/=", "/?token=s3cret%20T0ken/="])
    func aWrongTokenInTheAddressIsRefusedEvenWithAGoodCookie(uri: String) {
        #expect(Self.decide(uri) == .refused)
        #expect(Self.decide(uri, [("Cookie", Self.cookie)]) == .refused)
    }

    @Test func theCookieOrTheBearerTokenOpenThePageAndTheJSON() {
        for page in [true, false] {
            #expect(Self.decide("/", [("Cookie", Self.cookie)], page: page) == .allowed)
            #expect(Self.decide("/", [("Cookie", "theme=dark; \(Self.cookie); other=1")], page: page) == .allowed)
            #expect(Self.decide("/", [("Cookie", "theme=dark"), ("Cookie", Self.cookie)], page: page) == .allowed)
            #expect(Self.decide("/", [("Authorization", "Bearer s3cret+T0ken/=")], page: page) == .allowed)
            #expect(Self.decide("/", [], page: page) == .refused)
            #expect(Self.decide("/", [("Cookie", Self.cookie + "0")], page: page) == .refused)
            #expect(Self.decide("/", [("Cookie", "ollama_metrics_proxy_status=s3cret+T0ken/=")], page: page) == .refused)
            #expect(Self.decide("/", [("Authorization", "Bearer wrong")], page: page) == .refused)
        }
    }

    @Test func theJSONTakesNoTokenInItsAddress() {
        #expect(Self.decide("/status.json?token=s3cret+T0ken/=", page: false) == .refused)
        #expect(Self.decide("/status.json?token=wrong", [("Cookie", Self.cookie)], page: false) == .allowed)
    }

    @Test func theCookieDoesNotOpenTheMetrics() {
        let value = String(Self.cookie.drop { $0 != "=" }.dropFirst())
        #expect(value.count == 64)
        #expect(!Self.token.authorizes("Bearer \(value)"))
    }

    @Test func queryParametersArePercentDecodedAndPlusStaysPlus() {
        #expect(StatusPageAccess.queryParameter("token", in: "/?token=a%2Bb+c%zz%4") == Array("a+b+c%zz%4".utf8))
        #expect(StatusPageAccess.queryParameter("token", in: "/?tokens=x&token=y#token=z") == Array("y".utf8))
        #expect(StatusPageAccess.queryParameter("token", in: "/?x=1#token=z") == nil)
        #expect(StatusPageAccess.queryParameter("token", in: "/") == nil)
    }
}
