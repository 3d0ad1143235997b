import Foundation
import Testing

@testable import OllamaMetricsProxy

@Suite("Client hash key")
struct ClientHashKeyTests {
    private static func bytes(_ hex: String) -> [UInt8] {
        var bytes: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            bytes.append(UInt8(hex[index..<next], radix: 16)!)
            index = next
        }
        return bytes
    }

    /// RFC 4231 section 4: the HMAC-SHA256 test cases (case 5's output is truncated to 128 bits there).
    static let rfc4231: [(key: [UInt8], data: [UInt8], expected: String)] = [
        ([UInt8](repeating: 0x0B, count: 20), Array("Hi There".utf8),
         "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
        (Array("Jefe".utf8), Array("what do ya want for nothing?".utf8),
         "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
        ([UInt8](repeating: 0xAA, count: 20), [UInt8](repeating: 0xDD, count: 50),
         "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
        (Array(1...25), [UInt8](repeating: 0xCD, count: 50),
         "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
        ([UInt8](repeating: 0x0C, count: 20), Array("Test With Truncation".utf8), "a3b6167473100ee06e0c796c2955552b"),
        ([UInt8](repeating: 0xAA, count: 131), Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8),
         "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
        ([UInt8](repeating: 0xAA, count: 131),
         Array("This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.".utf8),
         "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"),
    ]

    @Test(arguments: 0..<7)
    func hmacSHA256MatchesRFC4231(testCase: Int) {
        let (key, data, expected) = Self.rfc4231[testCase]
        let code = HMACSHA256(key: key).authenticationCode(data)
        #expect(code.count == 32)
        #expect(Array(code.prefix(expected.count / 2)) == Self.bytes(expected))
    }

    @Test func aKeyFileIsItsBytesWithoutTheTrailingNewlineAndAtLeastSixteenOfThem() throws {
        let typed = try ClientHashKey(fileContents: Array("a key of at least sixteen bytes\r\n".utf8), source: "--client-hash-key-file 'k'")
        #expect(typed.label(for: Array("sk-123".utf8)) == "key-31385fb6f4fe", "the same key as without the line end")
        #expect(throws: ConfigurationError(
            "invalid --client-hash-key-file 'k': the key has 5 bytes, at least 16 are needed; make one with: head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n' > FILE"
        )) {
            try ClientHashKey(fileContents: Array("short\n".utf8), source: "--client-hash-key-file 'k'")
        }
    }

    @Test func randomKeysDiffer() {
        let credential = Array("sk-123".utf8)
        #expect(ClientHashKey.random().label(for: credential) != ClientHashKey.random().label(for: credential))
    }

    @Test func theStateFileIsSystemdsThenXDGsThenTheHomeDirectorys() {
        let all = ["STATE_DIRECTORY": "/var/lib/ollama-metrics-proxy", "XDG_STATE_HOME": "/x/state", "HOME": "/home/u"]
        #expect(ClientHashKey.stateFilePath(environment: all) == "/var/lib/ollama-metrics-proxy/client-hash-key")
        #expect(ClientHashKey.stateFilePath(environment: ["STATE_DIRECTORY": "/a:/b"]) == "/a/client-hash-key")
        #expect(ClientHashKey.stateFilePath(environment: ["XDG_STATE_HOME": "/x/state", "HOME": "/home/u"])
            == "/x/state/ollama-metrics-proxy/client-hash-key")
        // XDG: a relative path is invalid and ignored.
        #expect(ClientHashKey.stateFilePath(environment: ["XDG_STATE_HOME": "state", "HOME": "/home/u"])
            == "/home/u/.local/state/ollama-metrics-proxy/client-hash-key")
        #expect(ClientHashKey.stateFilePath(environment: [:]) == nil)
    }

    private static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("client-hash-key-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    @Test func theStateFileIsMadeOnceWithModeSixHundredAndReadAfterwards() throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.path + "/state/ollama-metrics-proxy/client-hash-key"
        let credential = Array("sk-123".utf8)
        let made = try ClientHashKey.stateFileKey(at: path).get()
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        let parent = try FileManager.default.attributesOfItem(atPath: directory.path + "/state/ollama-metrics-proxy")
        #expect((parent[.posixPermissions] as? Int) == 0o700)
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text.count == 65 && text.hasSuffix("\n") && text.dropLast().allSatisfy(\.isHexDigit), "64 hex digits: \(text)")
        let again = try ClientHashKey.stateFileKey(at: path).get()
        #expect(again.label(for: credential) == made.label(for: credential), "the same key at the next start")
        // The file works as a --client-hash-key-file too.
        let asKeyFile = try ClientHashKey(fileContents: Array(text.utf8), source: "x")
        #expect(asKeyFile.label(for: credential) == made.label(for: credential))
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path + "/state/ollama-metrics-proxy") == ["client-hash-key"],
                "no temporary file left")
    }

    @Test func anUnwritableStateDirectoryIsReportedNotFatal() throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.path + "/a-file"
        FileManager.default.createFile(atPath: file, contents: Data())
        let result = try ClientHashKey.stateFileKey(at: file + "/ollama-metrics-proxy/client-hash-key")
        guard case .failure(let unavailable) = result else {
            Issue.record("a path under a file cannot hold a key")
            return
        }
        #expect(unavailable.description.hasPrefix("cannot use client hash key state file '\(file)/ollama-metrics-proxy/client-hash-key': cannot read it: Not a directory"), "\(unavailable)")
    }

    @Test func aStateFileWithoutAValidKeyStopsTheStart() throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.path + "/client-hash-key"
        FileManager.default.createFile(atPath: path, contents: Data("\n".utf8))
        #expect(throws: ConfigurationError.self) { try ClientHashKey.stateFileKey(at: path) }
    }
}
