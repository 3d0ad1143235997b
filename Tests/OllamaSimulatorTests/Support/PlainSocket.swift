import Dispatch

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// One request over a plain blocking socket, read until the server ends the connection, telling a reset (RST)
/// from an orderly close (FIN): NIO reports both as the channel going inactive.
enum PlainSocket {
    /// How the server ended the connection.
    enum Ending: Equatable {
        /// An orderly close: `recv` returned 0.
        case closed
        /// A reset: `recv` failed with `ECONNRESET`.
        case reset
        /// Nothing happened for the whole timeout (`EAGAIN`), or another error (its `errno`).
        case timedOut
        case failed(Int32)
    }

    struct Result {
        /// Every byte received before the end.
        var bytes: [UInt8]
        var ending: Ending
        var text: String { String(decoding: bytes, as: UTF8.self) }
    }

    /// Connects to `port` on 127.0.0.1, sends `request`, and reads until the connection ends or nothing comes for
    /// `timeout`. Runs on a Dispatch thread, not on the test's cooperative pool.
    static func exchange(port: Int, request: String, timeout: Duration = .seconds(20)) async -> Result {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(returning: blockingExchange(port: port, request: Array(request.utf8), timeout: timeout))
            }
        }
    }

    private static func blockingExchange(port: Int, request: [UInt8], timeout: Duration) -> Result {
        #if canImport(Darwin)
        let descriptor = socket(AF_INET, SOCK_STREAM, 0)
        #else
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #endif
        guard descriptor >= 0 else { return Result(bytes: [], ending: .failed(errno)) }
        defer { close(descriptor) }

        var receiveTimeout = timeval(tv_sec: Int(timeout.components.seconds), tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &receiveTimeout, socklen_t(MemoryLayout<timeval>.size))

        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else { return Result(bytes: [], ending: .failed(errno)) }

        var sent = 0
        while sent < request.count {
            let count = request[sent...].withUnsafeBytes { send(descriptor, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { return Result(bytes: [], ending: .failed(errno)) }
            sent += count
        }

        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if count > 0 {
                received += buffer[..<count]
                continue
            }
            if count == 0 { return Result(bytes: received, ending: .closed) }
            switch errno {
            case EINTR: continue
            case ECONNRESET: return Result(bytes: received, ending: .reset)
            case EAGAIN, EWOULDBLOCK: return Result(bytes: received, ending: .timedOut)
            case let other: return Result(bytes: received, ending: .failed(other))
            }
        }
    }
}
