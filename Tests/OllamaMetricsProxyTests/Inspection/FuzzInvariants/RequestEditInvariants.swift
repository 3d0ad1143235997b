import NIOCore
@testable import OllamaMetricsProxy

/// The `include_usage` edit of `RequestInspector.inspect(endpoint:body:)`.
///
/// Invariants: without an edit the body goes out untouched and nothing is withheld; an edit happens only on
/// a streaming `/v1/chat/completions` or `/v1/completions` request and turns on withholding; the edited
/// body is the original with exactly one of the documented insertions or replacements at one place,
/// byte-identical otherwise; it is valid JSON if the original was (`StrictJSON`); it reads as the same
/// request; and it needs no further edit.
enum RequestEditInvariants {
    /// The first byte chooses the endpoint, the two that need the edit far more often than the others.
    static func endpoint(for byte: UInt8) -> InferenceEndpoint {
        switch byte % 4 {
        case 0, 1: .chatCompletions
        case 2: .completions
        default: InferenceEndpoint.allCases[Int(byte / 4) % InferenceEndpoint.allCases.count]
        }
    }

    /// What may replace what: `(original bytes, edited bytes)`.
    static let allowedEdits: [(from: [UInt8], to: [UInt8])] = [
        ("", #","stream_options":{"include_usage":true}"#),
        ("", #""stream_options":{"include_usage":true}"#),
        ("", #""include_usage":true,"#),
        ("", #""include_usage":true"#),
        ("false", "true"),
        ("null", "true"),
        ("null", #"{"include_usage":true}"#),
    ].map { (Array($0.0.utf8), Array($0.1.utf8)) }

    /// Header: the endpoint byte; then the body.
    static func check(_ input: [UInt8]) throws(InvariantViolation) {
        guard let first = input.first else { return }
        let endpoint = endpoint(for: first)
        let body = Array(input.dropFirst())
        let (request, rewritten) = RequestInspector.inspect(endpoint: endpoint, body: buffer(body))
        guard let rewritten else {
            try InvariantViolation.check(!request.withholdUsageChunks, "usage withheld without an edit")
            return
        }
        try InvariantViolation.check(
            endpoint.needsIncludeUsageOnStreams && request.isStreaming && request.withholdUsageChunks,
            "an edit on \(endpoint.rawValue), streaming \(request.isStreaming), withholding \(request.withholdUsageChunks)"
        )
        let edited = Array(rewritten.readableBytesView)
        try InvariantViolation.check(
            isOneAllowedEdit(from: body, to: edited), "not one allowed edit: \(describe(body)) became \(describe(edited))"
        )
        if StrictJSON.isValid(body) == true {
            try InvariantViolation.check(StrictJSON.isValid(edited) == true, "valid JSON became invalid: \(describe(edited))")
        }
        let again = RequestInspector.inspect(endpoint: endpoint, body: rewritten)
        try InvariantViolation.check(again.rewrittenBody == nil, "the edited body would be edited again: \(describe(edited))")
        try InvariantViolation.check(
            again.request.model == request.model && again.request.isStreaming == request.isStreaming,
            "the edited body reads as another request: \(again.request) vs \(request)"
        )
    }

    /// Whether `edited` is `original` with one allowed replacement at one place.
    static func isOneAllowedEdit(from original: [UInt8], to edited: [UInt8]) -> Bool {
        let commonPrefix = zip(original, edited).prefix(while: { $0 == $1 }).count
        let commonSuffix = zip(original.reversed(), edited.reversed()).prefix(while: { $0 == $1 }).count
        for edit in allowedEdits where edited.count - original.count == edit.to.count - edit.from.count {
            // The edit starts at `start`: what precedes it is common, what follows it too.
            let lowest = Swift.max(0, original.count - edit.from.count - commonSuffix)
            let highest = Swift.min(commonPrefix, original.count - edit.from.count)
            guard lowest <= highest else { continue }
            for start in lowest...highest
            where original[start..<(start + edit.from.count)].elementsEqual(edit.from)
                && edited[start..<(start + edit.to.count)].elementsEqual(edit.to)
            {
                return true
            }
        }
        return false
    }

    private static func buffer(_ bytes: [UInt8]) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        return buffer
    }
}
