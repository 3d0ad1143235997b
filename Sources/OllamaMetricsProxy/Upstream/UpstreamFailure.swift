import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Says why Ollama could not be reached in a few words a user can act on, instead of NIO's nested error
/// descriptions (these end up in 502 bodies and in the log).
enum UpstreamFailure {
    static func describe(_ error: Error) -> String {
        if let connection = error as? NIOConnectionError {
            if connection.dnsAError != nil || connection.dnsAAAAError != nil,
                connection.connectionErrors.isEmpty
            {
                return "cannot resolve host '\(connection.host)'"
            }
            if let first = connection.connectionErrors.first {
                return self.describe(first.error)
            }
        }
        if let ioError = error as? IOError {
            switch ioError.errnoCode {
            case ECONNREFUSED: return "connection refused"
            case ETIMEDOUT: return "connection timed out"
            case EHOSTUNREACH: return "host unreachable"
            case ENETUNREACH: return "network unreachable"
            case ECONNRESET: return "connection reset"
            default: return String(cString: strerror(ioError.errnoCode)).lowercased()
            }
        }
        if let channelError = error as? ChannelError {
            switch channelError {
            case .connectTimeout(let timeout):
                return "no connection within \(timeout.nanoseconds / 1_000_000_000) s"
            case .ioOnClosedChannel, .eof, .alreadyClosed:
                return "connection closed"
            default:
                return "\(channelError)"
            }
        }
        return "\(error)"
    }
}
