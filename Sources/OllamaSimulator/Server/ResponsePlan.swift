import NIOCore

/// How a response body is delimited, as Go's `net/http` decides it.
enum BodyFraming: Equatable {
    /// The whole body was written before the handler returned and fits Go's 2048-byte buffer.
    case contentLength(Int)
    /// Streaming, or a body larger than 2048 bytes.
    case chunked
}

/// The status and the headers a handler set; `Date` and the framing headers are added when it is written.
struct ResponseHead {
    var status: Int
    /// Headers as the Go handler set them (`Content-Type`, …); written sorted by name, as Go does.
    var headers: [(String, String)]
    var framing: BodyFraming
}

/// One thing a response does, in order.
enum ResponseStep {
    /// Pause (model loading, token generation).
    case wait(TimeAmount)
    /// Hold until the named gate opens.
    case gate(String)
    /// Write the status line and headers (sent together with the next chunk).
    case head(ResponseHead)
    /// Write only the first `byteCount` bytes of the status line and headers as rendered (at most all but the
    /// last byte), raw: a head cut short. Only `.reset` may follow.
    case headFragment(ResponseHead, byteCount: Int)
    /// Send what was written so far (a head on its own, before a stall).
    case flush
    /// Write one piece of body and flush it: one HTTP chunk when chunked.
    case chunk([UInt8])
    /// Finish the response (the chunked terminator when chunked).
    case end
    /// Close the connection without finishing the response.
    case drop
    /// Reset the connection (TCP RST) without finishing the response, once what was written has been sent.
    case reset
}

/// Produces a response's steps one at a time, on the connection's event loop.
protocol ResponseProducer {
    /// The next step; called again after each step has been carried out. `nil` ends the response like `.end`.
    mutating func nextStep(clock: SimulatorClock) -> ResponseStep?
}

/// A response whose steps are all known in advance.
struct FixedSteps: ResponseProducer {
    private var steps: [ResponseStep]
    private var index = 0

    init(_ steps: [ResponseStep]) { self.steps = steps }

    mutating func nextStep(clock: SimulatorClock) -> ResponseStep? {
        guard index < steps.count else { return nil }
        defer { index += 1 }
        return steps[index]
    }
}

/// Go's pre-chunking buffer: bodies up to this size written before the handler returns get a `Content-Length`.
let goChunkingBufferSize = 2048

/// Builders for the responses Go handlers write in one go (`c.JSON`, `json.NewEncoder(w).Encode`, `c.String`).
enum GoResponse {
    static let ginJSONContentType = "application/json; charset=utf-8"

    /// The steps of a complete body written at once: `Content-Length` up to 2048 bytes, one chunk beyond.
    static func complete(status: Int, headers: [(String, String)], body: [UInt8]) -> [ResponseStep] {
        let framing: BodyFraming = body.count <= goChunkingBufferSize ? .contentLength(body.count) : .chunked
        var steps: [ResponseStep] = [.head(ResponseHead(status: status, headers: headers, framing: framing))]
        if !body.isEmpty { steps.append(.chunk(body)) }
        steps.append(.end)
        return steps
    }

    /// gin's `c.JSON`: `application/json; charset=utf-8`, no trailing newline.
    static func ginJSON(_ status: Int, _ value: JSONValue, extraHeaders: [(String, String)] = []) -> [ResponseStep] {
        complete(
            status: status,
            headers: extraHeaders + [("Content-Type", ginJSONContentType)],
            body: GoJSON.encode(value)
        )
    }

    /// `json.NewEncoder(w).Encode(v)` after setting `Content-Type` (the compat writers use `application/json`):
    /// the body ends with a newline.
    static func encoderJSON(
        _ status: Int,
        _ value: JSONValue,
        contentType: String = "application/json",
        extraHeaders: [(String, String)] = []
    ) -> [ResponseStep] {
        complete(
            status: status,
            headers: extraHeaders + [("Content-Type", contentType)],
            body: GoJSON.encode(value) + [UInt8(ascii: "\n")]
        )
    }

    /// gin's `c.String`: `text/plain; charset=utf-8`.
    static func text(_ status: Int, _ text: String) -> [ResponseStep] {
        complete(status: status, headers: [("Content-Type", "text/plain; charset=utf-8")], body: Array(text.utf8))
    }

    /// A status with no body written (`c.Status`, `c.AbortWithStatus`).
    static func empty(_ status: Int, headers: [(String, String)] = []) -> [ResponseStep] {
        [.head(ResponseHead(status: status, headers: headers, framing: .contentLength(0))), .end]
    }

    /// gin's native error shape `{"error":"…"}` via `c.JSON`.
    static func nativeError(_ status: Int, _ message: String) -> [ResponseStep] {
        ginJSON(status, .map(["error": .string(message)]))
    }
}
