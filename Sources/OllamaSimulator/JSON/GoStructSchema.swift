/// The Go type a request field is decoded into, enough to reproduce `encoding/json`'s `UnmarshalTypeError`s.
indirect enum GoType: Sendable {
    case string
    case bool
    case int
    case float
    case float32
    /// `any`, `json.RawMessage`, or a type with its own `UnmarshalJSON`: accepts everything.
    case any
    /// A slice; `name` is Go's type name, e.g. `[]openai.Message`.
    case slice(name: String, element: GoType)
    /// A struct; `name` is its qualified name (`openai.StreamOptions`), used in errors.
    case structure(GoStructSchema)
    /// A map; `name` is Go's type name, e.g. `map[string]interface {}`.
    case map(name: String)

    var goName: String {
        switch self {
        case .string: "string"
        case .bool: "bool"
        case .int: "int"
        case .float: "float64"
        case .float32: "float32"
        case .any: "interface {}"
        case .slice(let name, _): name
        case .structure(let schema): schema.qualifiedName
        case .map(let name): name
        }
    }
}

/// A Go struct's JSON fields, for type-checking a decoded request the way Go reports mismatches.
struct GoStructSchema: Sendable {
    /// `package.Type`, e.g. `api.GenerateRequest`.
    let qualifiedName: String
    let fields: [(name: String, type: GoType)]

    var shortName: String { String(qualifiedName.split(separator: ".").last ?? Substring(qualifiedName)) }

    init(_ qualifiedName: String, _ fields: [(String, GoType)]) {
        self.qualifiedName = qualifiedName
        self.fields = fields.map { (name: $0.0, type: $0.1) }
    }

    /// The first type mismatch Go would report when decoding `value` into this struct, or `nil`.
    func firstTypeError(in value: JSONValue) -> GoJSONDecodingError? {
        switch value {
        case .null: return nil
        case .object: return Self.check(value, as: .structure(self), innermostStruct: nil, path: [])
        default:
            return .type("json: cannot unmarshal \(value.goKindName) into Go value of type \(qualifiedName)")
        }
    }

    private static func check(
        _ value: JSONValue,
        as type: GoType,
        innermostStruct: GoStructSchema?,
        path: [String]
    ) -> GoJSONDecodingError? {
        func mismatch(_ valueDescription: String) -> GoJSONDecodingError {
            if let innermostStruct, !path.isEmpty {
                return .type(
                    "json: cannot unmarshal \(valueDescription) into Go struct field "
                        + "\(innermostStruct.shortName).\(path.joined(separator: ".")) of type \(type.goName)"
                )
            }
            return .type("json: cannot unmarshal \(valueDescription) into Go value of type \(type.goName)")
        }
        if value == .null { return nil }
        switch (type, value) {
        case (.any, _), (.string, .string), (.bool, .bool), (.float, .number), (.float32, .number), (.map, .object):
            return nil
        case (.int, .number(let literal)):
            return Int(literal) == nil ? mismatch("number \(literal)") : nil
        case (.slice(_, let element), .array(let elements)):
            for item in elements {
                if let error = check(item, as: element, innermostStruct: innermostStruct, path: path) {
                    return error
                }
            }
            return nil
        case (.structure(let schema), .object(let members)):
            for member in members {
                guard let field = schema.fields.last(where: { $0.name.equalsIgnoringASCIICase(member.key) }) else {
                    continue
                }
                if let error = check(member.value, as: field.type, innermostStruct: schema, path: path + [field.name]) {
                    return error
                }
            }
            return nil
        default:
            return mismatch(value.goKindName)
        }
    }
}

/// Decodes a request body into JSON and checks it against a Go struct, failing as Ollama's `ShouldBindJSON` would.
func decodeGoRequest(_ body: [UInt8], as schema: GoStructSchema) throws(GoJSONDecodingError) -> JSONValue {
    let value = try GoJSONDecoder.decode(body)
    if let error = schema.firstTypeError(in: value) { throw error }
    return value
}
