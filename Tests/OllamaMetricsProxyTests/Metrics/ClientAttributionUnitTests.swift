import Testing
@testable import OllamaMetricsProxy

@Suite("Client attribution")
struct ClientAttributionUnitTests {
    @Test(arguments: [
        ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        ("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
    ])
    func sha256KnownAnswers(_ message: String, _ hex: String) {
        #expect(SHA256.hex(Array(message.utf8)) == hex)
        #expect(SHA256.hex(Array(String(repeating: "a", count: 1_000).utf8)) == "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3")
    }

    @Test func credentialHeadersAreKeyedHashesOthersCut() {
        let key = ClientHashKey(bytes: Array("a key of at least sixteen bytes".utf8))
        // HMAC-SHA256(key, "sk-123"), first 12 hex digits (Python's hmac module agrees).
        #expect(ClientAttributionRecorder.labelValue("Bearer sk-123", header: "Authorization", key: key) == "key-31385fb6f4fe")
        #expect(ClientAttributionRecorder.labelValue("sk-123", header: "x-api-key", key: key) == "key-31385fb6f4fe")
        // Not the unsalted SHA-256 of the key ("key-acb42a4fa3d3"), which anyone could compute from a guess.
        #expect(ClientAttributionRecorder.labelValue("sk-123", header: "x-api-key", key: .random()) != "key-acb42a4fa3d3")
        let other = ClientHashKey(bytes: Array("another key, also long enough".utf8))
        #expect(ClientAttributionRecorder.labelValue("sk-123", header: "x-api-key", key: other) == "key-2f37cdfbce22")
        #expect(ClientAttributionRecorder.labelValue("alice", header: "X-User", key: key) == "alice")
        let long = String(repeating: "é", count: 40)  // 80 bytes
        #expect(ClientAttributionRecorder.labelValue(long, header: "X-User", key: key) == String(repeating: "é", count: 32))
    }

    @Test func headerNamesAreValidated() throws {
        #expect(try ProxyConfiguration.clientHeaderName("X-OpenWebUI-User-Email") == "X-OpenWebUI-User-Email")
        #expect(throws: ConfigurationError.self) { try ProxyConfiguration.clientHeaderName("X User") }
        #expect(throws: ConfigurationError.self) { try ProxyConfiguration.clientHeaderName("") }
    }
}
