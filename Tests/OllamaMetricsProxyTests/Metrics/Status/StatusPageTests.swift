import Testing
@testable import OllamaMetricsProxy

/// The page is self-contained and its Content-Security-Policy allows exactly its own style and script.
@Suite struct StatusPageTests {
    static let html = String(decoding: StatusPage.html, as: UTF8.self)

    /// The text between `<tag>` and `</tag>`.
    static func block(_ tag: String) -> String? {
        guard let open = html.firstRange(of: "<\(tag)>"), let close = html.firstRange(of: "</\(tag)>") else { return nil }
        return String(html[open.upperBound..<close.lowerBound])
    }

    @Test func theStyleAndScriptHashesInThePolicyAreThoseOfThePage() throws {
        let style = try #require(Self.block("style"))
        let script = try #require(Self.block("script"))
        let policy = StatusPage.contentSecurityPolicy
        #expect(policy.contains("style-src 'sha256-\(Base64.encode(SHA256.digest(Array(style.utf8))))'"))
        #expect(policy.contains("script-src 'sha256-\(Base64.encode(SHA256.digest(Array(script.utf8))))'"))
        #expect(policy.hasPrefix("default-src 'none'; connect-src 'self';"))
        #expect(!policy.contains("unsafe"))
        #expect(Self.html.components(separatedBy: "<script").count == 2 && Self.html.components(separatedBy: "<style").count == 2)
    }

    @Test func nothingComesFromElsewhere() {
        // The SVG namespace is a name, not an address anything is fetched from.
        let html = Self.html.replacing("\"http://www.w3.org/2000/svg\"", with: "")
        for outside in ["http://", "https://", "src=", "@import", "url(", "innerHTML", "eval("] {
            #expect(!html.contains(outside), "\(outside)")
        }
        #expect(Self.html.contains(#"fetch("status.json""#))
        #expect(!Self.html.contains(#"href="/"#), "links are relative, so that a path prefix in front keeps working")
    }

    @Test(arguments: [
        ([UInt8](), ""), (Array("f".utf8), "Zg=="), (Array("fo".utf8), "Zm8="), (Array("foo".utf8), "Zm9v"),
        (Array("foobar".utf8), "Zm9vYmFy"), ([0xFF, 0xFE, 0xFD, 0x00], "//79AA=="),
    ])
    func base64KnownAnswers(bytes: [UInt8], encoded: String) {
        #expect(Base64.encode(bytes) == encoded)
    }
}
