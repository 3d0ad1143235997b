#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Ollama's `allowedHostsMiddleware`: when it listens on loopback, a request whose `Host` names something other
/// than a loopback/private/unspecified address, `localhost`, `*.localhost`, `*.local`, `*.internal` or the machine's
/// hostname is refused with 403 (DNS-rebinding protection).
enum HostCheck {
    enum Verdict: Equatable {
        case allowed
        /// An allowed host name (not an IP) with `OPTIONS`: Ollama answers 204 itself.
        case preflight
        case forbidden
    }

    static func verdict(hostHeader: String?, method: String) -> Verdict {
        let host = hostPart(of: hostHeader ?? "")
        if let address = IPAddress(host) {
            return address.isLoopbackPrivateOrUnspecified ? .allowed : .forbidden
        }
        guard isAllowedName(host.lowercased()) else { return .forbidden }
        return method == "OPTIONS" ? .preflight : .allowed
    }

    /// Go's `net.SplitHostPort`, falling back to the whole value when there is no port.
    static func hostPart(of value: String) -> String {
        if value.hasPrefix("[") {
            if let close = value.firstIndex(of: "]") {
                let rest = value[value.index(after: close)...]
                if rest.hasPrefix(":") { return String(value[value.index(after: value.startIndex)..<close]) }
            }
            return value
        }
        let colons = value.filter { $0 == ":" }.count
        if colons == 1, let colon = value.firstIndex(of: ":") { return String(value[..<colon]) }
        return value
    }

    private static func isAllowedName(_ host: String) -> Bool {
        if host.isEmpty || host == "localhost" { return true }
        if host == machineHostname() { return true }
        return [".localhost", ".local", ".internal"].contains { host.hasSuffix($0) }
    }

    private static func machineHostname() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count) == 0 else { return "" }
        let bytes = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        return String(decoding: bytes, as: UTF8.self).lowercased()
    }

    private enum IPAddress {
        case v4([UInt8])
        case v6([UInt8])

        init?(_ text: String) {
            var v4 = in_addr()
            if inet_pton(AF_INET, text, &v4) == 1 {
                self = .v4(withUnsafeBytes(of: &v4) { Array($0) })
                return
            }
            var v6 = in6_addr()
            if inet_pton(AF_INET6, text, &v6) == 1 {
                self = .v6(withUnsafeBytes(of: &v6) { Array($0) })
                return
            }
            return nil
        }

        var isLoopbackPrivateOrUnspecified: Bool {
            switch self {
            case .v4(let b):
                return b[0] == 127 || b[0] == 10 || (b[0] == 172 && (16...31).contains(b[1]))
                    || (b[0] == 192 && b[1] == 168) || b.allSatisfy { $0 == 0 }
            case .v6(let b):
                let mapped = b[0..<10].allSatisfy { $0 == 0 } && b[10] == 0xFF && b[11] == 0xFF
                if mapped { return IPAddress.v4(Array(b[12..<16])).isLoopbackPrivateOrUnspecified }
                let loopback = b[0..<15].allSatisfy { $0 == 0 } && b[15] == 1
                return loopback || b.allSatisfy { $0 == 0 } || (b[0] & 0xFE) == 0xFC
            }
        }
    }
}
