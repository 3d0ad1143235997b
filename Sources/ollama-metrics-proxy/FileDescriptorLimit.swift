import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The open-file limit a proxy of `--max-connections` needs. Each client connection may hold a connection to
/// Ollama too, so it needs two descriptors. The soft limit is raised to the hard one at start, as Go
/// programs do (shells and many service managers start programs at a soft limit of 1,024). Without
/// `--max-connections` the default is lowered to what the limit allows; with it, a limit too low for it is
/// a warning, since connections beyond the limit fail with "too many open files" rather than the clear 503.
enum FileDescriptorLimit {
    /// Descriptors beyond two per connection: listeners, the event loops' own, logging, scrapes.
    static let reserve = 64

    /// Raises the soft limit to the hard one; returns the limit now in force (nil: unlimited or unknown).
    static func raise() -> Int? {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return nil }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
        }
        return limit.rlim_cur == rlim_t.max ? nil : Int(clamping: limit.rlim_cur)
    }

    /// The most connections `limit` open files serve.
    static func connections(within limit: Int?) -> Int {
        guard let limit else { return .max }
        return max(1, (limit - Self.reserve) / 2)
    }

    static func warnIfTooLow(_ limit: Int?, forMaxConnections maxConnections: Int, logger: Logger) {
        guard let limit, maxConnections > Self.connections(within: limit) else { return }
        let needed = 2 * maxConnections + Self.reserve
        logger.warning(
            "the open-file limit (\(limit)) is below what --max-connections \(maxConnections) needs (\(needed)): raise it (ulimit -n, LimitNOFILE=) or lower --max-connections",
            metadata: ["open_file_limit": "\(limit)", "needed": "\(needed)"]
        )
    }
}
