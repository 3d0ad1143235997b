import NIOCore
import NIOHTTP1

/// The answers the proxy gives itself (Ollama unreachable, a request refused): a short JSON error in the
/// shape of the dialect the client called, so its SDK can show the message.
enum ProxyErrorResponse {
    static func badGateway(message: String, endpoint: InferenceEndpoint?)
        -> (HTTPResponseHead, ByteBuffer)
    {
        self.make(.badGateway, message: message, endpoint: endpoint)
    }

    /// - Parameter extraHeaders: Added after the framing headers (`Connection: close`, `Retry-After`).
    static func make(
        _ status: HTTPResponseStatus, message: String, endpoint: InferenceEndpoint?, extraHeaders: [(String, String)] = []
    ) -> (HTTPResponseHead, ByteBuffer) {
        let escaped = self.jsonEscaped(message)
        let body: String
        switch endpoint?.dialect {
        case .openAI:
            body = #"{"error":{"message":"\#(escaped)","type":"api_error","param":null,"code":null}}"#
        case .anthropic:
            body = #"{"type":"error","error":{"type":"api_error","message":"\#(escaped)"}}"#
        case .ollamaNative, nil:
            body = #"{"error":"\#(escaped)"}"#
        }
        let buffer = ByteBuffer(string: body)
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json; charset=utf-8")
        headers.add(name: "Content-Length", value: String(buffer.readableBytes))
        for (name, value) in extraHeaders { headers.add(name: name, value: value) }
        return (HTTPResponseHead(version: .http1_1, status: status, headers: headers), buffer)
    }

    static func jsonEscaped(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}
