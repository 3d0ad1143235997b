import OllamaMetricsProxy

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Each flag's value from the command line, else from its environment variable (`--max-models` →
/// `OLLAMA_METRICS_PROXY_MAX_MODELS`), else its default; and errors that name where a bad value came from.
///
/// The parsers and range checks are the library's, whose messages name the flag (`invalid --threads 2000:
/// …`); for a value from the environment the flag's name is replaced by the variable's.
struct Settings {
    static let prefix = "OLLAMA_METRICS_PROXY_"

    /// One setting's text and where it came from.
    struct Value {
        var text: String
        /// `--threads` for a flag or a default; `OLLAMA_METRICS_PROXY_THREADS` for the environment.
        var source: String
        var flag: String
        var fromEnvironment: Bool
    }

    let environment: [String: String]
    /// The values taken from the environment, to attribute `validate()`'s errors.
    private var fromEnvironment: [Value] = []

    init(environment: [String: String]) {
        self.environment = environment
    }

    static func variable(for flag: String) -> String {
        Self.prefix + flag.uppercased().replacing("-", with: "_")
    }

    mutating func resolve(_ flagValue: String?, flag: String, default: String) -> Value {
        self.resolveOptional(flagValue, flag: flag) ?? Value(text: `default`, source: "--\(flag)", flag: flag, fromEnvironment: false)
    }

    /// nil when neither the flag nor a non-empty variable is set.
    mutating func resolveOptional(_ flagValue: String?, flag: String) -> Value? {
        if let flagValue { return Value(text: flagValue, source: "--\(flag)", flag: flag, fromEnvironment: false) }
        let variable = Self.variable(for: flag)
        guard let text = self.environment[variable], !text.isEmpty else { return nil }
        let value = Value(text: text, source: variable, flag: flag, fromEnvironment: true)
        self.fromEnvironment.append(value)
        return value
    }

    /// `parse(value.text)`, with an error that names the variable when the value came from the environment.
    func parse<T>(_ value: Value, _ parse: (String) throws -> T) throws -> T {
        do {
            return try parse(value.text)
        } catch {
            throw value.fromEnvironment ? Self.attribute(error, to: value) : error
        }
    }

    /// Runs `body`; an error that names a flag whose value came from the environment names the variable.
    func attributing(_ body: () throws -> Void) throws {
        do {
            try body()
        } catch {
            let message = "\(error)"
            guard let value = self.fromEnvironment.first(where: { message.contains("--\($0.flag) ") || message.contains("--\($0.flag)'") })
            else { throw error }
            throw Self.attribute(error, to: value)
        }
    }

    private static func attribute(_ error: Error, to value: Value) -> ConfigurationError {
        let message = "\(error)"
        if message.contains("--\(value.flag)") {
            return ConfigurationError(description: message.replacing("--\(value.flag)", with: value.source))
        }
        return ConfigurationError(description: "\(value.source): \(message)")
    }

    // MARK: - Parsers

    func integer(_ value: Value) throws -> Int {
        guard let number = Int(value.text) else {
            throw ConfigurationError(description: "invalid \(value.source) '\(value.text)': expected a whole number")
        }
        return number
    }

    func boolean(_ value: Value) throws -> Bool {
        switch value.text.lowercased() {
        case "true", "1", "yes", "on": return true
        case "false", "0", "no", "off": return false
        default: throw ConfigurationError(description: "invalid \(value.source) '\(value.text)': expected true or false")
        }
    }

    /// The environment of this process.
    static func processEnvironment() -> [String: String] {
        var result: [String: String] = [:]
        var entry = environ
        while let pointer = entry.pointee {
            let text = String(cString: pointer)
            if let equals = text.firstIndex(of: "="), text.hasPrefix(Self.prefix) {
                result[String(text[..<equals])] = String(text[text.index(after: equals)...])
            }
            entry += 1
        }
        return result
    }
}
