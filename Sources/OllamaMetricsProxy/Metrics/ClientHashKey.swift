#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The secret behind the `client` labels of credential headers (`--client-header Authorization`): the
/// label is `key-` and 12 hex digits of HMAC-SHA256(key, credential), so that someone who reads `/metrics`
/// cannot test guesses of a low-entropy API key against it without the key.
///
/// The key is the operator's (`--client-hash-key-file`), or by default 32 random bytes made once and kept
/// in a state file (`stateFilePath`), so that labels survive restarts; two proxies given the same key give
/// the same labels. When no state file can be written the proxy runs with a key of its own (`random()`),
/// and labels change at each start.
public struct ClientHashKey: Sendable {
    /// Shortest key accepted from a file: 128 bits.
    public static let minimumBytes = 16
    /// The random key's length: SHA-256's output size, as RFC 2104 recommends.
    public static let randomBytes = 32
    /// The state file's name inside its directory.
    public static let stateFileName = "client-hash-key"

    let hmac: HMACSHA256

    init(bytes: some Collection<UInt8>) {
        self.hmac = HMACSHA256(key: bytes)
    }

    /// The key from a key file's contents: its bytes, a trailing newline (LF or CRLF) left out as editors and
    /// `echo` add one. Shorter than `minimumBytes`: an error naming `source` (the flag and path, or the state
    /// file).
    public init(fileContents: [UInt8], source: String) throws(ConfigurationError) {
        var bytes = fileContents[...]
        if bytes.last == UInt8(ascii: "\n") { bytes = bytes.dropLast() }
        if bytes.last == UInt8(ascii: "\r") { bytes = bytes.dropLast() }
        guard bytes.count >= Self.minimumBytes else {
            throw ConfigurationError(
                "invalid \(source): the key has \(bytes.count) bytes, at least \(Self.minimumBytes) are needed; make one with: head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n' > FILE"
            )
        }
        self.init(bytes: bytes)
    }

    /// A key of `randomBytes` bytes from the kernel's random source, for this process only.
    public static func random() -> ClientHashKey {
        ClientHashKey(bytes: Self.randomKeyBytes())
    }

    /// The label of a credential (`key-` and 12 hex digits): 48 bits, enough to tell a deployment's keys
    /// apart, too few to be used as a credential themselves.
    func label(for credential: some Collection<UInt8>) -> String {
        "key-" + SHA256.hexDigits(self.hmac.authenticationCode(credential).prefix(6))
    }

    // MARK: - The state file

    /// Where the default key is kept: `$STATE_DIRECTORY/client-hash-key` when systemd sets it
    /// (`StateDirectory=`), else `$XDG_STATE_HOME/ollama-metrics-proxy/client-hash-key`, else
    /// `$HOME/.local/state/ollama-metrics-proxy/client-hash-key`; nil when none of them is set (or absolute).
    public static func stateFilePath(environment: [String: String]) -> String? {
        func absolute(_ name: String) -> String? {
            // systemd lists several directories separated by colons when the unit names several.
            guard let value = environment[name]?.split(separator: ":").first, value.hasPrefix("/") else { return nil }
            return String(value)
        }
        if let directory = absolute("STATE_DIRECTORY") { return directory + "/" + Self.stateFileName }
        if let directory = absolute("XDG_STATE_HOME") { return directory + "/ollama-metrics-proxy/" + Self.stateFileName }
        if let home = absolute("HOME") { return home + "/.local/state/ollama-metrics-proxy/" + Self.stateFileName }
        return nil
    }

    /// Why the state file could not be used: the proxy then runs with a key of its own, and says so.
    public struct StateFileUnavailable: Error, CustomStringConvertible {
        public var description: String
    }

    /// The key in the state file at `path`, made first if there is none: 32 random bytes written as 64 hex
    /// digits (so that the file also works as a `--client-hash-key-file`), mode 0600, in a directory made
    /// with mode 0700 if missing. The file appears whole or not at all (written aside, then linked into
    /// place), and a proxy starting at the same moment uses the same key.
    ///
    /// `StateFileUnavailable` when the file cannot be read or made (a read-only home, no such directory);
    /// a file that is there but holds no valid key throws, so that labels never change silently.
    public static func stateFileKey(at path: String) throws(ConfigurationError) -> Result<ClientHashKey, StateFileUnavailable> {
        let source = "client hash key state file '\(path)'"
        func unavailable(_ reason: String) -> Result<ClientHashKey, StateFileUnavailable> {
            .failure(StateFileUnavailable(description: "cannot use \(source): \(reason)"))
        }
        switch SecretFile.contents(of: path) {
        case .success(let contents): return .success(try Self.stateKey(contents, source: source, path: path))
        case .failure(.cannotOpen(ENOENT)): break
        case .failure(let failure): return unavailable("cannot read it: \(failure.reason)")
        }
        var directory = ""
        for component in path.split(separator: "/").dropLast() {
            directory += "/" + component
            if mkdir(directory, 0o700) != 0 && errno != EEXIST { return unavailable("cannot make '\(directory)': \(errnoDescription(errno))") }
        }
        let text = Array((SHA256.hexDigits(Self.randomKeyBytes()) + "\n").utf8)
        let temporary = path + ".\(getpid()).tmp"
        if let error = Self.writeNew(temporary, text) { return unavailable(errnoDescription(error)) }
        defer { unlink(temporary) }
        guard link(temporary, path) == 0 else {
            let error = errno
            // Another proxy made it meanwhile: use its key.
            if error == EEXIST, case .success(let contents) = SecretFile.contents(of: path) {
                return .success(try Self.stateKey(contents, source: source, path: path))
            }
            return unavailable(errnoDescription(error))
        }
        return .success(ClientHashKey(bytes: text.dropLast()))
    }

    private static func stateKey(_ contents: [UInt8], source: String, path: String) throws(ConfigurationError) -> ClientHashKey {
        do {
            return try ClientHashKey(fileContents: contents, source: source)
        } catch {
            throw ConfigurationError("\(error.description) (delete '\(path)' to make a new key; client labels then change)")
        }
    }

    /// Writes `bytes` to a new file of mode 0600 and syncs it; the `errno` of a failure.
    private static func writeNew(_ path: String, _ bytes: [UInt8]) -> Int32? {
        unlink(path)  // a leftover of a proxy that died between writing and linking
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard descriptor >= 0 else { return errno }
        defer { close(descriptor) }
        var written = 0
        while written < bytes.count {
            let count = bytes[written...].withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { return count < 0 ? errno : EIO }
            written += count
        }
        return fsync(descriptor) == 0 ? nil : errno
    }

    /// `randomBytes` bytes from `/dev/urandom` (`arc4random_buf` on Darwin); should it not be readable, from
    /// the standard library's generator, which asks the kernel the same way (`getrandom(2)`).
    private static func randomKeyBytes() -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: Self.randomBytes)
        #if canImport(Darwin)
        bytes.withUnsafeMutableBytes { arc4random_buf($0.baseAddress, $0.count) }
        #else
        let descriptor = open("/dev/urandom", O_RDONLY | O_CLOEXEC)
        var filled = 0
        if descriptor >= 0 {
            defer { close(descriptor) }
            while filled < bytes.count {
                let count = bytes[filled...].withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
                if count < 0 && errno == EINTR { continue }
                guard count > 0 else { break }
                filled += count
            }
        }
        if filled < bytes.count {
            var generator = SystemRandomNumberGenerator()
            bytes = (0..<Self.randomBytes).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        }
        #endif
        return bytes
    }
}

/// Describes an `errno` value as `strerror` does ("No such file or directory").
func errnoDescription(_ error: Int32) -> String {
    String(cString: strerror(error))
}

/// A small file holding a secret, read whole once at start (`--metrics-token-file`,
/// `--client-hash-key-file`, the client hash key state file).
public enum SecretFile {
    /// Secret files are small; a larger file is the wrong file.
    public static let maxBytes = 4096

    enum Failure: Error, Equatable {
        case cannotOpen(Int32)
        case cannotRead(Int32)
        case tooLarge

        var reason: String {
            switch self {
            case .cannotOpen(let error), .cannotRead(let error): errnoDescription(error)
            case .tooLarge: "larger than 4 KiB, not a secret"
            }
        }
    }

    /// The file's bytes; an error names `source` (e.g. `--metrics-token-file '/etc/token'`):
    /// `cannot read <source>: <reason>`, or `invalid <source>: larger than 4 KiB, not a secret`.
    public static func load(_ path: String, source: String) throws(ConfigurationError) -> [UInt8] {
        switch Self.contents(of: path) {
        case .success(let contents): return contents
        case .failure(.tooLarge): throw ConfigurationError("invalid \(source): \(Failure.tooLarge.reason)")
        case .failure(let failure): throw ConfigurationError("cannot read \(source): \(failure.reason)")
        }
    }

    static func contents(of path: String) -> Result<[UInt8], Failure> {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return .failure(.cannotOpen(errno)) }
        defer { close(descriptor) }
        var contents: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                return .failure(.cannotRead(errno))
            }
            if count == 0 { return .success(contents) }
            contents += chunk[..<count]
            guard contents.count <= Self.maxBytes else { return .failure(.tooLarge) }
        }
    }
}
