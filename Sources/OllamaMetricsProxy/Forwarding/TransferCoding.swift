import NIOHTTP1

/// What a message's `Transfer-Encoding` says about its framing. Read without allocating: it is asked for
/// every response, twice.
enum TransferCoding {
    /// Whether the final transfer coding is `chunked` (any letter case; empty list elements do not count,
    /// RFC 9110 §5.6.1); nil when the message has no `Transfer-Encoding` field.
    static func isChunked(_ headers: HTTPHeaders) -> Bool? {
        var finalIsChunked = false
        let present = self.forEachCoding(in: headers) { finalIsChunked = $0.equalsLowercaseASCII("chunked") }
        return present ? finalIsChunked : nil
    }

    /// Calls `body` with each coding of every `Transfer-Encoding` field in order, without spaces around it;
    /// empty list elements do not count (RFC 9110 §5.6.1). False when the message has no such field.
    @inline(__always)
    private static func forEachCoding(in headers: HTTPHeaders, _ body: (Substring) -> Void) -> Bool {
        var present = false
        for (name, value) in headers where name.equalsLowercaseASCII("transfer-encoding") {
            present = true
            for element in value.utf8.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: true) {
                let coding = Substring(element).trimmingSpaces
                if !coding.isEmpty { body(coding) }
            }
        }
        return present
    }
}

extension TransferCoding {
    /// What a request's `Transfer-Encoding` lets the proxy do with it.
    enum RequestCodings: Equatable {
        /// No `Transfer-Encoding`: the body is framed by `Content-Length`, or there is none.
        case absent
        /// `chunked` alone: the one coding the proxy (and Ollama's Go server) implements.
        case chunked
        /// `chunked` last, after codings the proxy does not implement (`gzip, chunked`): 501 (RFC 9112 §6.1).
        case unsupported
        /// No final `chunked`, `chunked` applied twice, or no coding at all: the body's length cannot be
        /// determined (RFC 9112 §6.3), 400.
        case invalid
    }

    /// Reads a request's codings over every `Transfer-Encoding` field, in order. Without allocating, like
    /// `isChunked`.
    static func ofRequest(_ headers: HTTPHeaders) -> RequestCodings {
        var codings = 0
        var chunkedCodings = 0
        var finalIsChunked = false
        let present = self.forEachCoding(in: headers) { coding in
            codings += 1
            finalIsChunked = coding.equalsLowercaseASCII("chunked")
            if finalIsChunked { chunkedCodings += 1 }
        }
        guard present else { return .absent }
        guard finalIsChunked, chunkedCodings == 1 else { return .invalid }
        return codings == 1 ? .chunked : .unsupported
    }
}
