import Logging
import NIOConcurrencyHelpers

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// How log lines are written (`--log-format`).
public enum LogFormat: String, Sendable, CaseIterable {
    /// `2025-06-01T12:00:00.123Z info ollama-metrics-proxy.access: request method=POST path=/api/chat …`:
    /// key=value pairs (logfmt), a value quoted when it holds a space, a quote, `=` or a control character.
    case text
    /// One JSON object per line: `{"time":…,"level":…,"logger":…,"msg":…, <metadata>}`.
    case json
}

/// A swift-log handler that writes each message as one line, in `LogFormat`, with a single `write` so that
/// lines from several threads never interleave. Whatever a value holds (a model name is the client's), it
/// cannot break the line: text escapes control characters, JSON escapes what RFC 8259 requires.
public struct LogLineHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public let label: String
    public let format: LogFormat
    private let sink: @Sendable (String) -> Void

    /// Writes to standard error.
    public init(label: String, format: LogFormat, level: Logger.Level) {
        self.init(label: label, format: format, level: level, sink: { line in
            var line = line
            line.withUTF8 { bytes in
                var rest = UnsafeRawBufferPointer(bytes)
                while !rest.isEmpty {
                    let written = write(STDERR_FILENO, rest.baseAddress, rest.count)
                    if written < 0 && errno == EINTR { continue }
                    if written <= 0 { return }
                    rest = UnsafeRawBufferPointer(rebasing: rest[written...])
                }
            }
        })
    }

    /// Hands each line (with its newline) to `sink`.
    public init(label: String, format: LogFormat, level: Logger.Level, sink: @escaping @Sendable (String) -> Void) {
        self.label = label
        self.format = format
        self.logLevel = level
        self.sink = sink
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { self.metadata[key] }
        set { self.metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = self.metadata
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        self.sink(Self.line(
            format: self.format, time: WallClock.secondsSinceEpoch(), level: event.level, label: self.label,
            message: "\(event.message)", metadata: merged
        ))
    }

    /// The well-known keys come first, in this order (an access log line reads left to right as a request
    /// happened); any other key follows, sorted.
    static let keyOrder = [
        "method", "path", "status", "outcome", "endpoint", "model", "stream", "prompt_tokens", "completion_tokens",
        "duration_s", "ttft_s", "bytes_in", "bytes_out", "client",
    ]

    static func line(
        format: LogFormat, time: Double, level: Logger.Level, label: String, message: String, metadata: Logger.Metadata
    ) -> String {
        // One growing string, appended to in place: a line per request must not cost an allocation per field.
        var line = ""
        line.reserveCapacity(384)
        switch format {
        case .text:
            Self.appendTimestamp(time, to: &line)
            line += " "
            line += level.rawValue
            line += " "
            line += label
            line += ": "
            Self.appendTextEscaped(message, quoteSpaces: false, to: &line)
            Self.forEachKey(of: metadata) { key, value in
                line += " "
                Self.appendTextEscaped(key, quoteSpaces: true, to: &line)
                line += "="
                Self.appendTextValue(value, to: &line)
            }
        case .json:
            line += "{\"time\":\""
            Self.appendTimestamp(time, to: &line)
            line += "\",\"level\":"
            Self.appendJSONString(level.rawValue, to: &line)
            line += ",\"logger\":"
            Self.appendJSONString(label, to: &line)
            line += ",\"msg\":"
            Self.appendJSONString(message, to: &line)
            Self.forEachKey(of: metadata) { key, value in
                line += ","
                Self.appendJSONString(key, to: &line)
                line += ":"
                Self.appendJSONValue(value, to: &line)
            }
            line += "}"
        }
        line += "\n"
        return line
    }

    /// The well-known keys in `keyOrder`, then any other key, sorted.
    private static func forEachKey(of metadata: Logger.Metadata, _ body: (String, Logger.MetadataValue) -> Void) {
        var known = 0
        for key in Self.keyOrder {
            if let value = metadata[key] {
                body(key, value)
                known += 1
            }
        }
        guard known < metadata.count else { return }
        for key in metadata.keys.filter({ !Self.keyOrder.contains($0) }).sorted() {
            body(key, metadata[key]!)
        }
    }

    // MARK: - Text

    private static func appendTextValue(_ value: Logger.MetadataValue, to line: inout String) {
        switch value {
        case .string(let text): Self.appendTextEscaped(text, quoteSpaces: true, to: &line)
        case .stringConvertible(let value): Self.appendTextEscaped(value.description, quoteSpaces: true, to: &line)
        case .array, .dictionary: Self.appendTextEscaped(value.description, quoteSpaces: true, to: &line)
        }
    }

    /// `textEscaped`, appended; a value that needs neither quotes nor escapes (almost every one) is copied
    /// after one pass over its bytes.
    private static func appendTextEscaped(_ text: String, quoteSpaces: Bool, to line: inout String) {
        let plain = !text.isEmpty && text.utf8.allSatisfy { byte in
            byte >= 0x20 && byte != 0x7F && byte != UInt8(ascii: "\\") && !(quoteSpaces && (byte == UInt8(ascii: " ") || byte == UInt8(ascii: "=") || byte == UInt8(ascii: "\"")))
        }
        if plain || (!quoteSpaces && text.isEmpty) {
            line += text
        } else {
            line += Self.textEscaped(text, quoteSpaces: quoteSpaces)
        }
    }

    /// logfmt: bare when it can be, else in double quotes with `"`, `\` and control characters escaped.
    static func textEscaped(_ text: String, quoteSpaces: Bool) -> String {
        let needsQuotes = quoteSpaces
            && (text.isEmpty || text.unicodeScalars.contains { $0 == " " || $0 == "=" || $0 == "\"" || $0.value < 0x20 || $0.value == 0x7F })
        let needsEscapes = text.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F || (needsQuotes && ($0 == "\"" || $0 == "\\")) }
        guard needsQuotes || needsEscapes else { return text }
        var out = needsQuotes ? "\"" : ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"" where needsQuotes: out += "\\\""
            case "\\" where needsQuotes: out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F:
                out += "\\u" + Self.hex4(scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return needsQuotes ? out + "\"" : out
    }

    // MARK: - JSON

    private static func appendJSONValue(_ value: Logger.MetadataValue, to line: inout String) {
        if case .string(let text) = value {
            Self.appendJSONString(text, to: &line)
        } else {
            line += Self.jsonValue(value)
        }
    }

    /// `jsonString`, appended; a string without a quote, backslash or control character is copied as is.
    private static func appendJSONString(_ text: String, to line: inout String) {
        let plain = text.utf8.allSatisfy { $0 >= 0x20 && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") }
        if plain {
            line += "\""
            line += text
            line += "\""
        } else {
            line += Self.jsonString(text)
        }
    }

    private static func jsonValue(_ value: Logger.MetadataValue) -> String {
        switch value {
        case .string(let text):
            return Self.jsonString(text)
        case .stringConvertible(let value):
            switch value {
            case let number as Int: return String(number)
            case let number as Int64: return String(number)
            case let number as Double where number.isFinite: return "\(number)"
            case let flag as Bool: return flag ? "true" : "false"
            default: return Self.jsonString(value.description)
            }
        case .array(let values):
            return "[" + values.map(Self.jsonValue).joined(separator: ",") + "]"
        case .dictionary(let members):
            return "{" + members.keys.sorted().map { Self.jsonString($0) + ":" + Self.jsonValue(members[$0]!) }
                .joined(separator: ",") + "}"
        }
    }

    /// A JSON string literal (RFC 8259 §7): quote, backslash and control characters escaped.
    static func jsonString(_ text: String) -> String {
        "\"" + ProxyErrorResponse.jsonEscaped(text) + "\""
    }

    private static func hex4(_ value: UInt32) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }

    // MARK: - Time

    /// `timestamp`, appended digit by digit.
    private static func appendTimestamp(_ secondsSinceEpoch: Double, to line: inout String) {
        var seconds = time_t(secondsSinceEpoch.rounded(.down))
        let milliseconds = Int((secondsSinceEpoch - Double(seconds)) * 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func digits(_ value: Int, _ count: Int) {
            var divisor = 1
            for _ in 1..<count { divisor *= 10 }
            var rest = value
            while divisor > 0 {
                line.unicodeScalars.append(Unicode.Scalar(UInt8(ascii: "0") + UInt8(rest / divisor % 10)))
                rest %= divisor
                divisor /= 10
            }
        }
        digits(Int(parts.tm_year) + 1900, 4)
        line += "-"
        digits(Int(parts.tm_mon) + 1, 2)
        line += "-"
        digits(Int(parts.tm_mday), 2)
        line += "T"
        digits(Int(parts.tm_hour), 2)
        line += ":"
        digits(Int(parts.tm_min), 2)
        line += ":"
        digits(Int(parts.tm_sec), 2)
        line += "."
        digits(milliseconds, 3)
        line += "Z"
    }

    /// `2025-06-01T12:00:00.123Z`.
    static func timestamp(_ secondsSinceEpoch: Double) -> String {
        var seconds = time_t(secondsSinceEpoch.rounded(.down))
        let milliseconds = Int((secondsSinceEpoch - Double(seconds)) * 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        let ms = milliseconds < 10 ? "00\(milliseconds)" : milliseconds < 100 ? "0\(milliseconds)" : "\(milliseconds)"
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T"
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)).\(ms)Z"
    }
}
