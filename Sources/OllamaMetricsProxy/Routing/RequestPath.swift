/// The path of a request target as Ollama routes it, so that the proxy meters exactly the requests Ollama
/// runs as inference (a client cannot dodge the metrics by spelling `/api/generate` another way).
///
/// Ollama is Go's net/http and gin with default settings:
/// - net/http reads the target with `url.ParseRequestURI`: the path is everything before the first `?` (a
///   `#` belongs to the path: a request line has no fragment), and each `%XX` in it is decoded into
///   `URL.Path` — `%2F` into `/`, `%3F` into `?`, `%00` into a NUL. A `%` not followed by two hex digits fails
///   the parse, and the server answers 400 before any handler runs.
/// - gin matches `URL.Path` byte for byte (`UseRawPath` off): case-sensitive, double slashes kept
///   (`RemoveExtraSlash` off, so `//api/chat` is a 404), dot segments kept (`RedirectFixedPath` off, so
///   `/api/./chat` is a 404). A trailing slash (`/api/chat/`) gets a redirect to the path without it, and only
///   the request that follows the redirect runs.
///
/// So the proxy decodes the path exactly so and compares it with the endpoints exactly; it forwards the
/// client's target unchanged. A target Go would refuse is refused by the proxy with 400 itself
/// (`RequestHeadValidation`), so no request reaches Ollama that the proxy could not classify.
enum RequestPath {
    /// The decoded path bytes; nil when an escape is invalid (Go's 400). Allocates only when the path has a `%`.
    static func decoded<Path: Collection<UInt8>>(_ path: Path) -> Decoded<Path>? {
        guard path.contains(UInt8(ascii: "%")) else { return .raw(path) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(path.count)
        var index = path.startIndex
        while index != path.endIndex {
            let byte = path[index]
            path.formIndex(after: &index)
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard index != path.endIndex, let high = Self.hexValue(path[index]) else { return nil }
            path.formIndex(after: &index)
            guard index != path.endIndex, let low = Self.hexValue(path[index]) else { return nil }
            path.formIndex(after: &index)
            bytes.append(high << 4 | low)
        }
        return .escaped(bytes)
    }

    /// A path after decoding: the original bytes when there was nothing to decode.
    enum Decoded<Path: Collection<UInt8>> {
        case raw(Path)
        case escaped([UInt8])

        func elementsEqual(_ other: some Collection<UInt8>) -> Bool {
            switch self {
            case .raw(let path): path.elementsEqual(other)
            case .escaped(let bytes): bytes.elementsEqual(other)
            }
        }
    }

    /// Whether the path of `target` (origin form, query included) decodes; false is Go's 400.
    static func isValid(target: some StringProtocol) -> Bool {
        self.decoded(self.rawPath(of: target).utf8) != nil
    }

    /// The path part of an origin-form target as Go splits it: up to the first `?`.
    static func rawPath<Target: StringProtocol>(of target: Target) -> Target.SubSequence {
        let query = target.utf8.firstIndex(of: UInt8(ascii: "?")) ?? target.utf8.endIndex
        return target[..<query]
    }

    @inline(__always)
    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte &- UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte &- UInt8(ascii: "a") &+ 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte &- UInt8(ascii: "A") &+ 10
        default: nil
        }
    }
}
