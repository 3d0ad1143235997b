import NIOHTTP1

@testable import OllamaMetricsProxy

/// The `request-head` target: what the proxy decides from a client's request head before anything reaches
/// Ollama — the endpoint it meters (the path decoded as Go's net/http does, matched as gin does), whether it
/// refuses the head, and the head it sends upstream.
///
/// Input: a flags byte (bit 0: POST, else GET; bit 1: HTTP/1.0), then lines split at `\n`: the request target,
/// then `name: value` header fields (a line without `:` is a name with an empty value; a name with bytes
/// outside visible ASCII, which NIO's decoder never hands over, is skipped).
///
/// Invariants:
/// - the classification equals a plain reference: percent-decode the path before the first `?` (nil for a `%`
///   without two hex digits), compare the bytes with each endpoint's path; the same whether the target is a
///   `String` of its own or a slice of a larger one, and `decoded` copies nothing when there is no `%`;
/// - a head is refused for an invalid escape exactly when the reference decode fails, and for its
///   `Transfer-Encoding` exactly when the reference reading of its codings (every field split at commas,
///   trimmed, empty elements skipped) is not `chunked` alone;
/// - a head that is not refused goes upstream framed as NIO framed it, whatever its `Connection` names: one
///   `Transfer-Encoding: chunked` and no length when it had a `Transfer-Encoding`, else its `Content-Length`
///   values unchanged, else neither; `Host` is the upstream's; no `Connection` field, and every other name it
///   listed is gone.
enum RequestHeadInvariants {
    static let upstream = try! UpstreamURL(parsing: "http://ollama.local:11434")

    static func check(_ input: [UInt8]) throws(InvariantViolation) {
        guard let flags = input.first else { return }
        let lines = input.dropFirst().split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        let target = String(decoding: lines.first ?? [], as: UTF8.self)
        var headers = HTTPHeaders()
        for line in lines.dropFirst() {
            let text = String(decoding: line, as: UTF8.self)
            let colon = text.firstIndex(of: ":") ?? text.endIndex
            let name = String(text[..<colon])
            // NIO's decoder hands over only token characters in a name (and `HTTPHeaders` traps on others).
            guard name.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { continue }
            let value = colon == text.endIndex ? "" : String(text[text.index(after: colon)...]).trimmingSpaces.description
            headers.add(name: name, value: value)
        }
        let head = HTTPRequestHead(
            version: flags & 2 == 0 ? .http1_1 : .http1_0, method: flags & 1 == 0 ? .GET : .POST, uri: target, headers: headers
        )
        try self.checkClassification(target)
        try self.checkRefusalAndForwardedHead(head)
    }

    // MARK: - Classification

    private static func checkClassification(_ target: String) throws(InvariantViolation) {
        let path = UpstreamRequestHead.routedPath(of: target)
        let reference = Self.referenceDecode(Array(path.utf8))
        let expected = reference.flatMap { bytes in InferenceEndpoint.allCases.first { Array($0.rawValue.utf8) == bytes } }
        let endpoint = InferenceEndpoint(path: path)
        try InvariantViolation.check(endpoint == expected, "\(describe(target.utf8)) is \(String(describing: endpoint)), the reference says \(String(describing: expected))")

        // The same target inside a larger string's storage, and as a String of its own.
        let embedded = "\u{1}" + target + "?\u{2}"
        let slice = Substring(embedded.utf8.dropFirst().dropLast(2))
        let sliced = InferenceEndpoint(path: UpstreamRequestHead.routedPath(of: String(slice)))
        let substring = InferenceEndpoint(path: RequestPath.rawPath(of: slice))
        try InvariantViolation.check(sliced == endpoint, "\(describe(target.utf8)) classified otherwise from a copy")
        if target.hasPrefix("/") {
            try InvariantViolation.check(substring == endpoint, "\(describe(target.utf8)) classified otherwise as a slice")
        }

        switch RequestPath.decoded(path.utf8) {
        case nil:
            try InvariantViolation.check(reference == nil, "\(describe(path.utf8)) refused, the reference decodes it")
        case .raw(let bytes):
            try InvariantViolation.check(!path.utf8.contains(UInt8(ascii: "%")), "\(describe(path.utf8)) not decoded")
            try InvariantViolation.check(reference.map { $0.elementsEqual(bytes) } == true, "\(describe(path.utf8)) raw differs from the reference")
        case .escaped(let bytes):
            try InvariantViolation.check(reference == bytes, "\(describe(path.utf8)) decodes to \(describe(bytes)), the reference to \(reference.map { describe($0) } ?? "nil")")
        }
    }

    /// Go's `unescape(s, encodePath)`, written plainly.
    static func referenceDecode(_ path: [UInt8]) -> [UInt8]? {
        var out: [UInt8] = []
        var i = 0
        while i < path.count {
            if path[i] != UInt8(ascii: "%") {
                out.append(path[i])
                i += 1
                continue
            }
            guard i + 2 < path.count,
                let value = UInt8(String(decoding: path[(i + 1)...(i + 2)], as: UTF8.self), radix: 16),
                path[(i + 1)...(i + 2)].allSatisfy({ Character(Unicode.Scalar($0)).isHexDigit })
            else { return nil }
            out.append(value)
            i += 3
        }
        return out
    }

    // MARK: - Refusal and the head sent upstream

    private static func checkRefusalAndForwardedHead(_ head: HTTPRequestHead) throws(InvariantViolation) {
        let refusal = RequestHeadValidation.refusal(for: head)
        let pathValid = Self.referenceDecode(Array(UpstreamRequestHead.routedPath(of: head.uri).utf8)) != nil
        let codings = head.headers.filter { $0.name.asciiLowercased == "transfer-encoding" }
            .flatMap { $0.value.split(separator: ",", omittingEmptySubsequences: false) }
            .map { $0.trimmingCharacters(in: " \t") }.filter { !$0.isEmpty }.map(\.asciiLowercased)
        let hasTransferEncoding = head.headers.contains { $0.name.asciiLowercased == "transfer-encoding" }
        let expected: ClientRefusal.Reason? =
            if !pathValid { .invalidRequestTarget }
            else if !hasTransferEncoding || codings == ["chunked"] { nil }
            else if codings.last == "chunked" && codings.filter({ $0 == "chunked" }).count == 1 { .unsupportedTransferCoding }
            else { .invalidTransferEncoding }
        try InvariantViolation.check(refusal?.reason == expected, "refusal \(String(describing: refusal)), expected \(String(describing: expected)) for \(head)")
        guard refusal == nil else { return }

        let sent = UpstreamRequestHead.make(from: head, upstream: self.upstream, clientAddress: "192.0.2.1")
        let fields = { (name: String) in sent.headers.filter { $0.name.asciiLowercased == name }.map(\.value) }
        if hasTransferEncoding {
            try InvariantViolation.check(fields("transfer-encoding") == ["chunked"] && fields("content-length").isEmpty, "a chunked request sent as \(sent.headers)")
        } else {
            let lengths = head.headers.filter { $0.name.asciiLowercased == "content-length" }.map(\.value)
            try InvariantViolation.check(fields("content-length") == lengths && fields("transfer-encoding").isEmpty, "lengths \(lengths) sent as \(sent.headers)")
        }
        try InvariantViolation.check(fields("host") == ["ollama.local:11434"], "Host sent as \(fields("host"))")
        try InvariantViolation.check(fields("connection").isEmpty, "a Connection field went upstream")
        let protected: Set<String> = ["content-length", "transfer-encoding", "host", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"]
        for token in head.headers[canonicalForm: "connection"].map(\.asciiLowercased) where !protected.contains(token) {
            try InvariantViolation.check(fields(token).isEmpty, "\(token), named by Connection, went upstream")
        }
    }
}

extension StringProtocol {
    /// Only ASCII letters folded, as header names are compared.
    fileprivate var asciiLowercased: String { String(decoding: self.utf8.map(ASCII.lowercased), as: UTF8.self) }

    fileprivate func trimmingCharacters(in set: String) -> String {
        var slice = Substring(self)
        while let first = slice.first, set.contains(first) { slice = slice.dropFirst() }
        while let last = slice.last, set.contains(last) { slice = slice.dropLast() }
        return String(slice)
    }
}
