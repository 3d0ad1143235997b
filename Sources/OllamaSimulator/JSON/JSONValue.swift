/// A JSON value as Ollama's Go code reads and writes it.
///
/// Objects keep their members in the order given, which is how Go marshals a struct (declaration order). Values Go
/// marshals from a `map[string]any` (Responses API events, `gin.H` errors, `model_info`) are built with
/// ``JSONValue/map(_:)``, which sorts the keys bytewise as Go does. Numbers keep their literal text, so numbers read
/// from a request are written back exactly as received.
enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case number(String)
    case string(String)
    case array([JSONValue])
    case object([JSONMember])
    /// Pre-encoded JSON written verbatim (output only), for very large arrays such as `context`.
    case raw([UInt8])

    static func int(_ value: some BinaryInteger) -> JSONValue { .number(String(value)) }

    /// A Go `float64`, formatted as `encoding/json` does.
    static func float64(_ value: Double) -> JSONValue { .number(GoJSON.formatFloat64(value)) }

    /// An object whose keys Go sorts (it comes from a Go map).
    static func map(_ members: [JSONMember]) -> JSONValue {
        .object(members.sorted { Array($0.key.utf8).lexicographicallyPrecedes(Array($1.key.utf8)) })
    }

    static func map(_ members: KeyValuePairs<String, JSONValue>) -> JSONValue {
        .map(members.map { JSONMember(key: $0.key, value: $0.value) })
    }

    /// `nil` becomes `null`, as a Go pointer or interface does.
    static func optional(_ value: String?) -> JSONValue { value.map(JSONValue.string) ?? .null }
}

struct JSONMember: Sendable, Equatable {
    var key: String
    var value: JSONValue
}

extension JSONValue: ExpressibleByDictionaryLiteral {
    init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(elements.map { JSONMember(key: $0.0, value: $0.1) })
    }
}

extension JSONValue: ExpressibleByArrayLiteral {
    init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
}

extension JSONValue: ExpressibleByStringLiteral {
    init(stringLiteral value: String) { self = .string(value) }
}

extension JSONValue: ExpressibleByIntegerLiteral {
    init(integerLiteral value: Int) { self = .number(String(value)) }
}

extension JSONValue: ExpressibleByBooleanLiteral {
    init(booleanLiteral value: Bool) { self = .bool(value) }
}

extension JSONValue: ExpressibleByNilLiteral {
    init(nilLiteral: ()) { self = .null }
}

// MARK: - Reading request values the way Go's decoder matches struct fields

extension JSONValue {
    /// The member Go's decoder would assign to the struct field `name`: keys match case-insensitively and the last
    /// matching key wins.
    subscript(field name: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        return members.last { $0.key.equalsIgnoringASCIICase(name) }?.value
    }

    var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    var boolValue: Bool? {
        if case .bool(let value) = self { return value }
        return nil
    }

    /// The value of an integer literal, as Go decodes it into an `int` (no fraction, no exponent).
    var intValue: Int? {
        if case .number(let literal) = self { return Int(literal) }
        return nil
    }

    var doubleValue: Double? {
        if case .number(let literal) = self { return Double(literal) }
        return nil
    }

    var arrayValue: [JSONValue]? {
        if case .array(let values) = self { return values }
        return nil
    }

    var isNull: Bool { self == .null }

    /// The JSON kind name Go uses in `UnmarshalTypeError` ("string", "number", "bool", "array", "object", "null").
    var goKindName: String {
        switch self {
        case .null: "null"
        case .bool: "bool"
        case .number: "number"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        case .raw: "raw"
        }
    }
}

extension String {
    func equalsIgnoringASCIICase(_ other: String) -> Bool {
        let lhs = self.utf8
        let rhs = other.utf8
        guard lhs.count == rhs.count else { return false }
        return zip(lhs, rhs).allSatisfy { a, b in
            a == b || (a | 0x20 == b | 0x20 && (a | 0x20) >= UInt8(ascii: "a") && (a | 0x20) <= UInt8(ascii: "z"))
        }
    }
}
