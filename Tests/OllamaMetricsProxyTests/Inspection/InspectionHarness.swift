import NIOCore
import Testing
@testable import OllamaMetricsProxy

/// One response body, how the proxy would receive it, and what inspecting it must produce.
struct ResponseFixture: Sendable, CustomTestStringConvertible {
    var name: String
    var endpoint: InferenceEndpoint
    var contentType: String?
    var isStreaming: Bool
    var withholdUsageChunks: Bool
    /// The body as pieces of meaning (lines, events), each with what of it reaches the client when
    /// withholding (nothing for a usage-only event). Concatenated, `bytes` are the body byte for byte.
    var parts: [(bytes: [UInt8], whenWithholding: [UInt8])]
    var expectedUsage: Usage?
    var expectedError: String?

    var testDescription: String { name }

    var body: [UInt8] { parts.flatMap(\.bytes) }

    var expectedForwarded: [UInt8] {
        parts.flatMap { withholdUsageChunks ? $0.whenWithholding : $0.bytes }
    }

    var request: InferenceRequest {
        InferenceRequest(model: nil, isStreaming: isStreaming, withholdUsageChunks: withholdUsageChunks)
    }

    init(
        _ name: String, _ endpoint: InferenceEndpoint, contentType: String?, streaming: Bool, withhold: Bool = false,
        _ parts: [Part], usage: Usage?, error: String? = nil
    ) {
        self.name = name
        self.endpoint = endpoint
        self.contentType = contentType
        self.isStreaming = streaming
        self.withholdUsageChunks = withhold
        self.parts = parts.map { (Array($0.text.utf8), Array(($0.textWhenWithholding ?? $0.text).utf8)) }
        self.expectedUsage = usage
        self.expectedError = error
    }

    /// A piece of a body: a line or an event, written with `\n` line ends.
    struct Part: ExpressibleByStringLiteral {
        var text: String
        /// What reaches the client when withholding, if not `text`.
        var textWhenWithholding: String?
        init(stringLiteral value: String) { text = value }
        init(_ text: String, withheld: Bool = false) {
            self.text = text
            self.textWhenWithholding = withheld ? "" : nil
        }
        /// The usage-only event the proxy asked for on the client's behalf.
        static func usageEvent(_ text: String) -> Part { Part(text, withheld: true) }
        /// An event that carries `injected` (for instance `,"usage":{…}`) only because the proxy asked for
        /// usage: when withholding, the client receives the event without exactly those bytes.
        static func event(_ text: String, injected: String) -> Part {
            precondition(text.contains(injected))
            var part = Part(text)
            part.textWhenWithholding = text.replacing(injected, with: "")
            return part
        }
    }

    /// The same body with every `\n` replaced (JSON in the fixtures never contains a raw newline, so only
    /// line ends change).
    func withLineEnds(_ lineEnd: [UInt8], suffix: String) -> ResponseFixture {
        var copy = self
        copy.name += " " + suffix
        copy.parts = parts.map { part in
            (part.bytes.flatMap { $0 == 0x0A ? lineEnd : [$0] }, part.whenWithholding.flatMap { $0 == 0x0A ? lineEnd : [$0] })
        }
        return copy
    }
}

/// What a client and the metrics observe when a body is fed to a `ResponseInspector`.
struct InspectionObservation: Equatable, CustomStringConvertible {
    var forwarded: [UInt8]
    var usages: [Usage]
    var error: String?
    /// The usage was available before `finish()`: a client hanging up right after the last byte would
    /// still have been counted.
    var usageBeforeFinish: Bool

    var description: String {
        "forwarded \(forwarded.count) bytes, usages \(usages), error \(error ?? "nil"), usageBeforeFinish \(usageBeforeFinish)"
    }
}

enum InspectionHarness {
    static func buffer(_ bytes: [UInt8]) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        return buffer
    }

    static func buffer(_ text: String) -> ByteBuffer {
        buffer(Array(text.utf8))
    }

    static func bytes(_ buffer: ByteBuffer) -> [UInt8] {
        Array(buffer.readableBytesView)
    }

    static func string(_ buffer: ByteBuffer) -> String {
        String(decoding: buffer.readableBytesView, as: UTF8.self)
    }

    static func observe(_ fixture: ResponseFixture, pieces: [[UInt8]]) -> InspectionObservation {
        observe(
            endpoint: fixture.endpoint, request: fixture.request, contentType: fixture.contentType,
            pieces: pieces.map { buffer($0) }
        )
    }

    static func observe(_ fixture: ResponseFixture) -> InspectionObservation {
        observe(fixture, pieces: [fixture.body])
    }

    static func observe(
        endpoint: InferenceEndpoint, request: InferenceRequest, contentType: String?, pieces: [ByteBuffer]
    ) -> InspectionObservation {
        var inspector = ResponseInspector(endpoint: endpoint, request: request, contentType: contentType)
        var forwarded: [UInt8] = []
        var usages: [Usage] = []
        for piece in pieces {
            forwarded += bytes(inspector.inspect(piece))
            if let usage = inspector.takeCompletedUsage() { usages.append(usage) }
        }
        let usageBeforeFinish = !usages.isEmpty
        if let rest = inspector.finish() { forwarded += bytes(rest) }
        if let usage = inspector.takeCompletedUsage() { usages.append(usage) }
        #expect(inspector.takeCompletedUsage() == nil, "usage is returned only once")
        return InspectionObservation(
            forwarded: forwarded, usages: usages, error: inspector.streamErrorMessage, usageBeforeFinish: usageBeforeFinish
        )
    }

    /// Every way of cutting `bytes` into two pieces (including empty ones).
    static func twoPieceSplits(_ bytes: [UInt8]) -> [[[UInt8]]] {
        (0...bytes.count).map { [Array(bytes[..<$0]), Array(bytes[$0...])] }
    }

    static func byteByByte(_ bytes: [UInt8]) -> [[UInt8]] {
        bytes.map { [$0] }
    }

    /// Deterministic pseudo-random cuts into several pieces.
    static func randomSplits(_ bytes: [UInt8], count: Int, seed: UInt64) -> [[[UInt8]]] {
        var generator = InspectionRandom(seed: seed)
        return (0..<count).map { _ in
            var pieces: [[UInt8]] = []
            var start = 0
            while start < bytes.count {
                let length = Int(generator.next() % 37) + (generator.next() % 4 == 0 ? 0 : 1)
                let end = min(bytes.count, start + length)
                pieces.append(Array(bytes[start..<end]))
                start = end
            }
            return pieces
        }
    }

    /// Cuts into pieces of a fixed size.
    static func chunks(_ bytes: [UInt8], of size: Int) -> [[UInt8]] {
        stride(from: 0, to: bytes.count, by: size).map { Array(bytes[$0..<min(bytes.count, $0 + size)]) }
    }

    static func storageAddress(_ buffer: ByteBuffer) -> UnsafeRawPointer? {
        buffer.withUnsafeReadableBytes { $0.baseAddress }
    }
}

/// A tiny deterministic generator, so that failures reproduce.
struct InspectionRandom: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
