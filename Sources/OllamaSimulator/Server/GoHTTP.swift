import NIOHTTP1

/// What the response head depends on in the request.
struct RequestFacts {
    var version: HTTPVersion
    var isKeepAlive: Bool
    var isHead: Bool
}

/// A response head rendered as Go's `net/http` writes it.
struct RenderedHead {
    var head: HTTPResponseHead
    /// Body parts must be chunk-encoded.
    var isChunked: Bool
    /// The body must not be written (HEAD).
    var suppressesBody: Bool
    /// Close the connection once the response is complete.
    var closesConnection: Bool
}

enum GoHTTP {
    /// Renders a head: the handler's headers sorted by name, then `Date`, `Content-Length`, `Connection`,
    /// `Transfer-Encoding` (the order of Go's `extraHeader.Write`).
    static func render(_ response: ResponseHead, for request: RequestFacts, date: String) -> RenderedHead {
        let isHTTP11 = request.version.major == 1 && request.version.minor >= 1
        let closes = !request.isKeepAlive || !isHTTP11
        var handlerHeaders = response.headers
        if closes { handlerHeaders.removeAll { $0.0.lowercased() == "connection" } }
        handlerHeaders.sort { Array($0.0.utf8).lexicographicallyPrecedes(Array($1.0.utf8)) }

        var headers = HTTPHeaders()
        for (name, value) in handlerHeaders { headers.add(name: name, value: value) }
        headers.add(name: "Date", value: date)

        let bodyAllowed = !((100..<200).contains(response.status) || response.status == 204 || response.status == 304)
        var isChunked = false
        switch response.framing {
        case .contentLength(let length):
            // Go omits the length of an empty HEAD response (it cannot tell "no body" from "did not write").
            if bodyAllowed && !(request.isHead && length == 0) {
                headers.add(name: "Content-Length", value: String(length))
            }
        case .chunked:
            isChunked = bodyAllowed && isHTTP11 && !request.isHead
        }
        if closes && isHTTP11 { headers.add(name: "Connection", value: "close") }
        if isChunked { headers.add(name: "Transfer-Encoding", value: "chunked") }

        let status = HTTPResponseStatus.custom(code: UInt(response.status), reasonPhrase: statusText(response.status))
        return RenderedHead(
            head: HTTPResponseHead(version: isHTTP11 ? .http1_1 : .http1_0, status: status, headers: headers),
            isChunked: isChunked,
            suppressesBody: request.isHead || !bodyAllowed,
            closesConnection: closes
        )
    }

    /// A head's bytes on the wire, as NIO's encoder writes them: the status line, each header, a blank line.
    static func serialize(_ head: HTTPResponseHead) -> [UInt8] {
        var text = "HTTP/\(head.version.major).\(head.version.minor) \(head.status.code) \(head.status.reasonPhrase)\r\n"
        for (name, value) in head.headers { text += "\(name): \(value)\r\n" }
        text += "\r\n"
        return Array(text.utf8)
    }

    /// Go's `http.StatusText`, or `status code N` for codes it does not know (as its status line does).
    static func statusText(_ code: Int) -> String {
        statusTexts[code] ?? "status code \(code)"
    }

    private static let statusTexts: [Int: String] = [
        100: "Continue", 101: "Switching Protocols", 102: "Processing", 103: "Early Hints",
        200: "OK", 201: "Created", 202: "Accepted", 203: "Non-Authoritative Information", 204: "No Content",
        205: "Reset Content", 206: "Partial Content", 207: "Multi-Status", 208: "Already Reported", 226: "IM Used",
        300: "Multiple Choices", 301: "Moved Permanently", 302: "Found", 303: "See Other", 304: "Not Modified",
        305: "Use Proxy", 307: "Temporary Redirect", 308: "Permanent Redirect",
        400: "Bad Request", 401: "Unauthorized", 402: "Payment Required", 403: "Forbidden", 404: "Not Found",
        405: "Method Not Allowed", 406: "Not Acceptable", 407: "Proxy Authentication Required",
        408: "Request Timeout", 409: "Conflict", 410: "Gone", 411: "Length Required", 412: "Precondition Failed",
        413: "Request Entity Too Large", 414: "Request URI Too Long", 415: "Unsupported Media Type",
        416: "Requested Range Not Satisfiable", 417: "Expectation Failed", 418: "I'm a teapot",
        421: "Misdirected Request", 422: "Unprocessable Entity", 423: "Locked", 424: "Failed Dependency",
        425: "Too Early", 426: "Upgrade Required", 428: "Precondition Required", 429: "Too Many Requests",
        431: "Request Header Fields Too Large", 451: "Unavailable For Legal Reasons",
        500: "Internal Server Error", 501: "Not Implemented", 502: "Bad Gateway", 503: "Service Unavailable",
        504: "Gateway Timeout", 505: "HTTP Version Not Supported", 506: "Variant Also Negotiates",
        507: "Insufficient Storage", 508: "Loop Detected", 510: "Not Extended",
        511: "Network Authentication Required",
    ]
}
