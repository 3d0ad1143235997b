import Testing
@testable import OllamaMetricsProxy

@Suite struct MetricsTokenTests {
    static func token(_ text: String) throws -> MetricsToken {
        try MetricsToken(fileContents: Array(text.utf8), path: "/etc/token")
    }

    @Test func oneTrailingNewlineIsIgnored() throws {
        for contents in ["abc", "abc\n", "abc\r\n"] {
            let token = try Self.token(contents)
            #expect(token.authorizes("Bearer abc"), "\(contents.debugDescription)")
            #expect(!token.authorizes("Bearer abc\n"))
        }
    }

    @Test(arguments: [
        ("", "the file is empty"),
        ("\n", "the file is empty"),
        ("a b", "visible ASCII characters without spaces"),
        ("abc\n\n", "visible ASCII characters without spaces"),
        ("line1\nline2", "visible ASCII characters without spaces"),
        ("tab\there", "visible ASCII characters without spaces"),
        ("café", "visible ASCII characters without spaces"),
    ])
    func unusableFilesAreClearErrors(contents: String, message: String) {
        #expect {
            try Self.token(contents)
        } throws: { error in
            "\(error)".hasPrefix("invalid --metrics-token-file '/etc/token': ") && "\(error)".contains(message)
        }
    }

    @Test func onlyTheExactBearerTokenAuthorizes() throws {
        let token = try Self.token("Zx9-._~+/=")
        #expect(token.authorizes("Bearer Zx9-._~+/="))
        #expect(token.authorizes("bearer Zx9-._~+/="))
        #expect(token.authorizes("Bearer  Zx9-._~+/= "), "spaces around the token are not part of it")
        for wrong in [nil, "", "Bearer", "Bearer ", "Zx9-._~+/=", "Basic Zx9-._~+/=", "Bearer zx9-._~+/=",
                      "Bearer Zx9-._~+/", "Bearer Zx9-._~+/==", "BearerZx9-._~+/=", "Token Zx9-._~+/="] {
            #expect(!token.authorizes(wrong), "\(String(describing: wrong))")
        }
    }

    @Test func theComparisonLooksAtEveryByte() {
        #expect(MetricsToken.constantTimeEqual(Array("abc".utf8), Array("abc".utf8)))
        #expect(!MetricsToken.constantTimeEqual(Array("abc".utf8), Array("abd".utf8)))
        #expect(!MetricsToken.constantTimeEqual(Array("xbc".utf8), Array("abc".utf8)))
        #expect(!MetricsToken.constantTimeEqual(Array("ab".utf8), Array("abc".utf8)))
        #expect(!MetricsToken.constantTimeEqual([], Array("a".utf8)))
        // Equal lengths modulo 256 do not make unequal lengths equal.
        #expect(!MetricsToken.constantTimeEqual([UInt8](repeating: 1, count: 256), []))
    }
}
