import NIOCore
@testable import OllamaMetricsProxy

/// One dialect's response bodies through `ResponseInspector`, as the proxy feeds them.
///
/// Invariants, for every cut of the body: the usage, the in-body error, the finish reason and whether
/// content was seen are those of the whole body; usage is handed out at most once. When nothing is withheld,
/// every `inspect` returns its piece and nothing is held back, so bytes out equal bytes in. When the proxy
/// withholds the usage it asked for, the bytes out are those of the whole body fed at once, and they are the
/// body minus whole usage-looking events and minus zero `usage` members (`ReferenceEventStream` segments).
enum ResponseInspectorInvariants {
    enum Dialect: CaseIterable {
        case native, openAI, responses, anthropic
    }

    /// How a response is presented to the inspector. Chosen by the first input byte (modulo the count):
    /// append new ones at the end, so that corpus files keep their meaning.
    struct Configuration {
        var endpoint: InferenceEndpoint
        var contentType: String?
        var isStreaming: Bool
        var withholdUsageChunks = false

        /// Read as server-sent events (the only framing where anything is withheld).
        var isEventStream: Bool {
            guard endpoint.dialect != .ollamaNative else { return false }
            guard let contentType else { return isStreaming }
            return contentType == eventStream
        }

        var withholds: Bool { isEventStream && withholdUsageChunks }
    }

    static let eventStream = "text/event-stream"
    static let ginJSON = "application/json; charset=utf-8"

    static func configurations(_ dialect: Dialect) -> [Configuration] {
        switch dialect {
        case .native:
            [
                Configuration(endpoint: .generate, contentType: "application/x-ndjson", isStreaming: true),
                Configuration(endpoint: .chat, contentType: "application/x-ndjson", isStreaming: true),
                Configuration(endpoint: .generate, contentType: ginJSON, isStreaming: false),
                Configuration(endpoint: .chat, contentType: ginJSON, isStreaming: false),
                Configuration(endpoint: .embed, contentType: ginJSON, isStreaming: false),
                Configuration(endpoint: .embeddings, contentType: ginJSON, isStreaming: false),
                Configuration(endpoint: .chat, contentType: nil, isStreaming: true),
                Configuration(endpoint: .generate, contentType: eventStream, isStreaming: true),
            ]
        case .openAI:
            [
                Configuration(endpoint: .chatCompletions, contentType: eventStream, isStreaming: true),
                Configuration(endpoint: .chatCompletions, contentType: eventStream, isStreaming: true, withholdUsageChunks: true),
                Configuration(endpoint: .completions, contentType: eventStream, isStreaming: true),
                Configuration(endpoint: .completions, contentType: eventStream, isStreaming: true, withholdUsageChunks: true),
                Configuration(endpoint: .chatCompletions, contentType: "application/json", isStreaming: false),
                Configuration(endpoint: .completions, contentType: "application/json", isStreaming: false),
                Configuration(endpoint: .openAIEmbeddings, contentType: "application/json", isStreaming: false),
                Configuration(endpoint: .chatCompletions, contentType: nil, isStreaming: true, withholdUsageChunks: true),
            ]
        case .responses:
            [
                Configuration(endpoint: .responses, contentType: eventStream, isStreaming: true),
                Configuration(endpoint: .responses, contentType: "application/json", isStreaming: false),
            ]
        case .anthropic:
            [
                Configuration(endpoint: .messages, contentType: eventStream, isStreaming: true),
                Configuration(endpoint: .messages, contentType: "application/json", isStreaming: false),
            ]
        }
    }

    /// What a client and the metrics observe.
    struct Observation: Equatable {
        var forwarded: [UInt8]
        var usages: [Usage]
        var error: String?
        var finishReason: FinishReason?
        var hasSeenContent: Bool
    }

    /// Header: the configuration byte, the cut seed; then the body.
    static func check(_ dialect: Dialect, _ input: [UInt8], _ thoroughness: PieceSplits.Thoroughness) throws(InvariantViolation) {
        guard input.count >= 2 else { return }
        let configurations = configurations(dialect)
        let configuration = configurations[Int(input[0]) % configurations.count]
        let body = Array(input[2...])
        let whole = try observe(configuration, body, pieces: [0..<body.count])
        if configuration.withholds {
            try InvariantViolation.check(
                SegmentAlignment.matches(whole.forwarded, alternatives: withholdingAlternatives(body)),
                "withholding removed more than usage events and zero usage members: \(describe(whole.forwarded))"
            )
        } else {
            try InvariantViolation.check(whole.forwarded == body, "bytes out differ from bytes in")
        }
        for pieces in PieceSplits.cuts(of: body.count, seed: input[1], thoroughness) {
            let observed = try observe(configuration, body, pieces: pieces)
            try InvariantViolation.check(
                observed == whole,
                "pieces \(pieces.map(\.count)) observe \(summary(observed)), the whole body \(summary(whole))"
            )
        }
    }

    static func observe(_ configuration: Configuration, _ body: [UInt8], pieces: [Range<Int>]) throws(InvariantViolation) -> Observation {
        let request = InferenceRequest(
            model: nil, isStreaming: configuration.isStreaming, withholdUsageChunks: configuration.withholdUsageChunks
        )
        var inspector = ResponseInspector(endpoint: configuration.endpoint, request: request, contentType: configuration.contentType)
        var forwarded: [UInt8] = []
        var usages: [Usage] = []
        for piece in pieces {
            var chunk = ByteBufferAllocator().buffer(capacity: piece.count)
            chunk.writeBytes(body[piece])
            let out = inspector.inspect(chunk)
            if !configuration.withholds {
                try InvariantViolation.check(out == chunk, "a piece was changed though nothing is withheld")
            }
            forwarded += out.readableBytesView
            if let usage = inspector.takeCompletedUsage() { usages.append(usage) }
        }
        if let rest = inspector.finish() {
            try InvariantViolation.check(
                configuration.withholds || rest.readableBytes == 0, "bytes held back though nothing is withheld"
            )
            forwarded += rest.readableBytesView
        }
        if let usage = inspector.takeCompletedUsage() { usages.append(usage) }
        try InvariantViolation.check(inspector.takeCompletedUsage() == nil, "usage handed out twice in a row")
        try InvariantViolation.check(usages.count <= 1, "usage handed out \(usages.count) times")
        return Observation(
            forwarded: forwarded, usages: usages, error: inspector.streamErrorMessage,
            finishReason: inspector.finishReason, hasSeenContent: inspector.hasSeenContent
        )
    }

    private static func summary(_ observation: Observation) -> String {
        "\(observation.forwarded.count) bytes, usages \(observation.usages), error \(observation.error ?? "nil"), "
            + "finish \(String(describing: observation.finishReason)), content \(observation.hasSeenContent)"
    }

    // MARK: What withholding may remove

    /// Per segment of the body: kept whole; dropped, if it mentions `"usage"` (a usage-only chunk); or kept
    /// without one zero `usage` member and one adjacent comma (`/v1/completions`' placeholder).
    static func withholdingAlternatives(_ body: [UInt8]) -> [[[UInt8]]] {
        ReferenceEventStream(body, sizeLimit: SSEEventSplitter.defaultSizeLimit).segments.map { segment in
            let bytes = Array(body[segment.range])
            let mentionsUsage = !occurrences(of: usageKey, in: bytes).isEmpty
            return [bytes] + (mentionsUsage ? [[]] : []) + usageMemberRemovals(bytes)
        }
    }

    private static let usageKey = Array(#""usage""#.utf8)

    static func usageMemberRemovals(_ bytes: [UInt8]) -> [[UInt8]] {
        var removals: [[UInt8]] = []
        for keyStart in occurrences(of: usageKey, in: bytes) {
            var reader = ZeroUsageReader(bytes: bytes, position: keyStart + usageKey.count)
            guard reader.readColonAndZeroObject() else { continue }
            let valueEnd = reader.position
            // After an earlier member: `<ws>,<ws>"usage":{…}`.
            var start = keyStart
            while start > 0, JSONBytes.isWhitespace(bytes[start - 1]) { start -= 1 }
            if start > 0, bytes[start - 1] == UInt8(ascii: ",") {
                start -= 1
                while start > 0, JSONBytes.isWhitespace(bytes[start - 1]) { start -= 1 }
                removals.append(Array(bytes[..<start] + bytes[valueEnd...]))
            }
            // The first member: `"usage":{…}<ws>,<ws>` up to the next key.
            reader.skipWhitespace()
            if reader.consume(UInt8(ascii: ",")) {
                reader.skipWhitespace()
                if reader.position < bytes.count, bytes[reader.position] == UInt8(ascii: "\"") {
                    removals.append(Array(bytes[..<keyStart] + bytes[reader.position...]))
                }
            }
        }
        return removals
    }

    static func occurrences(of needle: [UInt8], in bytes: [UInt8]) -> [Int] {
        guard bytes.count >= needle.count else { return [] }
        return (0...(bytes.count - needle.count)).filter { bytes[$0..<($0 + needle.count)].elementsEqual(needle) }
    }

    /// Reads `: {…}` where every member value is `0` or such an object: Ollama's `&openai.Usage{}`.
    private struct ZeroUsageReader {
        let bytes: [UInt8]
        var position: Int

        mutating func skipWhitespace() {
            while position < bytes.count, JSONBytes.isWhitespace(bytes[position]) { position += 1 }
        }

        mutating func consume(_ byte: UInt8) -> Bool {
            guard position < bytes.count, bytes[position] == byte else { return false }
            position += 1
            return true
        }

        mutating func readColonAndZeroObject() -> Bool {
            skipWhitespace()
            guard consume(UInt8(ascii: ":")) else { return false }
            skipWhitespace()
            return readZeroObject(depth: 0)
        }

        private mutating func readZeroObject(depth: Int) -> Bool {
            guard depth < 8, consume(UInt8(ascii: "{")) else { return false }
            skipWhitespace()
            if consume(UInt8(ascii: "}")) { return true }
            while true {
                skipWhitespace()
                guard readString() else { return false }
                skipWhitespace()
                guard consume(UInt8(ascii: ":")) else { return false }
                skipWhitespace()
                if position < bytes.count, bytes[position] == UInt8(ascii: "{") {
                    guard readZeroObject(depth: depth + 1) else { return false }
                } else {
                    guard consume(UInt8(ascii: "0")) else { return false }
                }
                skipWhitespace()
                if consume(UInt8(ascii: "}")) { return true }
                guard consume(UInt8(ascii: ",")) else { return false }
            }
        }

        private mutating func readString() -> Bool {
            guard consume(UInt8(ascii: "\"")) else { return false }
            while position < bytes.count {
                let byte = bytes[position]
                position += byte == UInt8(ascii: "\\") ? 2 : 1
                if byte == UInt8(ascii: "\"") { return true }
            }
            return false
        }
    }
}
