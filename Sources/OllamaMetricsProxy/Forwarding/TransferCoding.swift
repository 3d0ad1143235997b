import NIOHTTP1

/// What a message's `Transfer-Encoding` says about its framing. Read without allocating: it is asked for
/// every response, twice.
enum TransferCoding {
    /// Whether the final transfer coding is `chunked` (any letter case; empty list elements do not count,
    /// RFC 9110 §5.6.1); nil when the message has no `Transfer-Encoding` field.
    static func isChunked(_ headers: HTTPHeaders) -> Bool? {
        var present = false
        var finalIsChunked = false
        for (name, value) in headers where name.equalsLowercaseASCII("transfer-encoding") {
            present = true
            for element in value.utf8.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: true) {
                let coding = Substring(element).trimmingSpaces
                guard !coding.isEmpty else { continue }
                finalIsChunked = coding.equalsLowercaseASCII("chunked")
            }
        }
        return present ? finalIsChunked : nil
    }
}
