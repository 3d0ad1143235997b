/// Writes JSON text (RFC 8259) front to back, without building a tree and without Foundation: objects and
/// arrays are opened and closed, commas come by themselves. Numbers that JSON cannot hold (NaN, infinities)
/// and nil values are written as `null`.
struct JSONWriter {
    private(set) var bytes: [UInt8] = []
    /// No value yet in the object or array being written (or a key was just written): no comma before the next.
    private var atStart = true

    init(capacity: Int = 4096) {
        self.bytes.reserveCapacity(capacity)
    }

    mutating func object(_ body: (inout JSONWriter) -> Void) {
        self.open(UInt8(ascii: "{"))
        body(&self)
        self.close(UInt8(ascii: "}"))
    }

    mutating func array(_ body: (inout JSONWriter) -> Void) {
        self.open(UInt8(ascii: "["))
        body(&self)
        self.close(UInt8(ascii: "]"))
    }

    /// A member's name; its value is what is written next.
    mutating func key(_ name: String) {
        self.string(name)
        self.bytes.append(UInt8(ascii: ":"))
        self.atStart = true
    }

    mutating func string(_ value: String?) {
        self.separate()
        guard let value else { return self.bytes += Self.nullBytes }
        self.bytes.append(UInt8(ascii: "\""))
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "\""): self.bytes += [UInt8(ascii: "\\"), UInt8(ascii: "\"")]
            case UInt8(ascii: "\\"): self.bytes += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
            case UInt8(ascii: "\n"): self.bytes += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                self.bytes += Array("\\u00".utf8) + [hex[Int(byte >> 4)], hex[Int(byte & 0xF)]]
            default: self.bytes.append(byte)
            }
        }
        self.bytes.append(UInt8(ascii: "\""))
    }

    mutating func number(_ value: Int?) {
        self.separate()
        guard let value else { return self.bytes += Self.nullBytes }
        self.bytes += Array(String(value).utf8)
    }

    /// At most six decimals: enough for microseconds and rates, and short.
    mutating func number(_ value: Double?) {
        self.separate()
        guard let value, value.isFinite else { return self.bytes += Self.nullBytes }
        let rounded = (value * 1e6).rounded() / 1e6
        if rounded == rounded.rounded(), abs(rounded) < 1e15 {
            self.bytes += Array(String(Int64(rounded)).utf8)
        } else {
            self.bytes += Array("\(rounded)".utf8)
        }
    }

    mutating func bool(_ value: Bool) {
        self.separate()
        self.bytes += Array((value ? "true" : "false").utf8)
    }

    mutating func null() {
        self.separate()
        self.bytes += Self.nullBytes
    }

    private static let nullBytes = Array("null".utf8)

    /// `"name": value` for the common value kinds.
    mutating func member(_ name: String, _ value: Int?) {
        self.key(name)
        self.number(value)
    }

    mutating func member(_ name: String, _ value: Double?) {
        self.key(name)
        self.number(value)
    }

    mutating func member(_ name: String, _ value: String?) {
        self.key(name)
        self.string(value)
    }

    mutating func member(_ name: String, _ value: Bool) {
        self.key(name)
        self.bool(value)
    }

    private mutating func open(_ bracket: UInt8) {
        self.separate()
        self.bytes.append(bracket)
        self.atStart = true
    }

    private mutating func close(_ bracket: UInt8) {
        self.bytes.append(bracket)
        self.atStart = false
    }

    private mutating func separate() {
        if !self.atStart { self.bytes.append(UInt8(ascii: ",")) }
        self.atStart = false
    }
}
