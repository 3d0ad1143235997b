/// The secret `/metrics` asks for as `Authorization: Bearer <token>` (`--metrics-token-file`).
///
/// Read once at start. The check takes the same time wherever the first wrong byte is, so the token
/// cannot be guessed byte by byte from response times.
public struct MetricsToken: Sendable, Equatable {
    private let bytes: [UInt8]

    /// The token from a token file's contents: one line; a trailing newline (LF or CRLF) is ignored, as
    /// editors and `echo` add one. Empty, multi-line or with spaces or control characters: an error.
    public init(fileContents: [UInt8], path: String) throws(ConfigurationError) {
        var bytes = fileContents[...]
        if bytes.last == UInt8(ascii: "\n") { bytes = bytes.dropLast() }
        if bytes.last == UInt8(ascii: "\r") { bytes = bytes.dropLast() }
        guard !bytes.isEmpty else {
            throw ConfigurationError("invalid --metrics-token-file '\(path)': the file is empty; put the token on its one line")
        }
        // RFC 6750 b64token characters and the rest of visible ASCII; no spaces, no line breaks.
        guard bytes.allSatisfy({ (0x21...0x7E).contains($0) }) else {
            throw ConfigurationError(
                "invalid --metrics-token-file '\(path)': the token must be one line of visible ASCII characters without spaces"
            )
        }
        self.bytes = Array(bytes)
    }

    /// Whether an `Authorization` header value is `Bearer <this token>` (scheme case-insensitive).
    /// Constant time in the token's contents: every byte is compared whatever the first difference.
    public func authorizes(_ authorization: String?) -> Bool {
        guard let authorization else { return false }
        var value = Array(authorization.utf8)[...]
        let scheme = Array("bearer ".utf8)
        guard value.count >= scheme.count,
            zip(value.prefix(scheme.count), scheme).allSatisfy({ $0 | 0x20 == $1 | 0x20 || $0 == $1 })
        else { return false }
        value = value.dropFirst(scheme.count)
        while value.first == UInt8(ascii: " ") { value = value.dropFirst() }
        while value.last == UInt8(ascii: " ") { value = value.dropLast() }
        return Self.constantTimeEqual(Array(value), self.bytes)
    }

    /// Whether `candidate` is the token itself (as typed in the status page's `?token=`), in constant time.
    func matches(_ candidate: [UInt8]) -> Bool {
        Self.constantTimeEqual(candidate, self.bytes)
    }

    /// A secret derived from the token for one `purpose`, in hex: the status page's cookie holds this rather
    /// than the token, so that a cookie read off a browser does not open `/metrics`.
    func derivedSecret(for purpose: String) -> String {
        SHA256.hex(Array(purpose.utf8) + [0] + self.bytes)
    }

    /// Compares every byte of the longer input; only the lengths can leak, and the token's length is no
    /// help in guessing its contents.
    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var difference: UInt8 = a.count == b.count ? 0 : 1
        let count = max(a.count, b.count)
        for index in 0..<count {
            let x = index < a.count ? a[index] : 0
            let y = index < b.count ? b[index] : 0
            difference |= x ^ y
        }
        return difference == 0
    }
}
