/// A broken invariant found by a fuzz target or by replaying its corpus: the fuzz targets crash with it (so
/// that libFuzzer keeps the input), the replay test records it as a failure.
///
/// This folder is compiled twice: into the unit tests, and, through the symlink `Fuzz/Sources/FuzzInvariants`,
/// into the libFuzzer targets. It must therefore use nothing from swift-testing.
struct InvariantViolation: Error, CustomStringConvertible {
    var description: String

    /// Throws `message` unless `condition` holds.
    static func check(_ condition: Bool, _ message: @autoclosure () -> String) throws(InvariantViolation) {
        if !condition {
            throw InvariantViolation(description: message())
        }
    }
}

/// Bytes shown in a failure message: printable ASCII as is, everything else escaped, long runs shortened.
func describe(_ bytes: some Collection<UInt8>, limit: Int = 400) -> String {
    var text = ""
    for byte in bytes.prefix(limit) {
        switch byte {
        case 0x0A: text += "\\n"
        case 0x0D: text += "\\r"
        case 0x20..<0x7F where byte != UInt8(ascii: "\\"): text.unicodeScalars.append(Unicode.Scalar(byte))
        default: text += "\\x" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2)
        }
    }
    return bytes.count > limit ? text + "… (\(bytes.count) bytes)" : text
}

private extension String {
    func leftPadded(to width: Int) -> String {
        String(repeating: "0", count: Swift.max(0, width - count)) + self
    }
}
