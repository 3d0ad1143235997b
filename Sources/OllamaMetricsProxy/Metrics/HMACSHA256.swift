/// HMAC-SHA256 (RFC 2104, FIPS 198-1) with its key padded once: a keyed hash, so that a `client` label made
/// from a credential cannot be matched against guesses by anyone who does not hold the key.
struct HMACSHA256: Sendable {
    private static let blockSize = 64
    private let innerPad: [UInt8]
    private let outerPad: [UInt8]

    /// A key longer than SHA-256's 64-byte block is hashed first, as RFC 2104 says.
    init(key: some Collection<UInt8>) {
        var block = key.count > Self.blockSize ? SHA256.digest(key) : Array(key)
        block += repeatElement(0, count: Self.blockSize - block.count)
        self.innerPad = block.map { $0 ^ 0x36 }
        self.outerPad = block.map { $0 ^ 0x5C }
    }

    /// The 32-byte authentication code of `message`.
    func authenticationCode(_ message: some Collection<UInt8>) -> [UInt8] {
        SHA256.digest(self.outerPad + SHA256.digest(self.innerPad + message))
    }
}
