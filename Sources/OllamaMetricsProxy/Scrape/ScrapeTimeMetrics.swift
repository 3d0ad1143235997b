#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The families computed when Prometheus scrapes rather than kept in the registry: what Ollama reports
/// about itself (`ollama_up`, its version, the models it has loaded), the proxy's build, and the standard
/// `process_*` metrics a Go exporter offers. Rendered in the text format 0.0.4 after the registry's.
enum ScrapeTimeMetrics {
    /// The text of every scrape-time family.
    static func render(_ status: OllamaStatus, now: Double = WallClock.secondsSinceEpoch()) -> [UInt8] {
        var text = ""
        text.reserveCapacity(2048)
        family(&text, "ollama_up", "gauge", "Whether Ollama answered GET /api/ps and GET /api/version within a second at this scrape (1) or not (0).")
        sample(&text, "ollama_up", [], status.isUp ? "1" : "0")
        family(&text, "ollama_version_info", "gauge", "Ollama's version (GET /api/version); the value is always 1.")
        if status.isUp, let version = status.version {
            sample(&text, "ollama_version_info", [("version", version)], "1")
        }
        let loaded: [(name: String, help: String, value: (OllamaStatus.LoadedModel) -> String?)] = [
            ("ollama_loaded_model_size_bytes", "Memory a loaded model takes, in bytes (GET /api/ps size).", { $0.sizeBytes.map(String.init) }),
            ("ollama_loaded_model_vram_bytes", "GPU memory a loaded model takes, in bytes (GET /api/ps size_vram).", { $0.vramBytes.map(String.init) }),
            ("ollama_loaded_model_context_length", "Context length a loaded model was loaded with, in tokens (GET /api/ps context_length).", { $0.contextLength.map(String.init) }),
            ("ollama_loaded_model_expires_in_seconds", "Seconds until Ollama unloads a loaded model unless it is used again (GET /api/ps expires_at).", { model in
                model.expiresAt.map { format(max(0, $0 - now)) }
            }),
        ]
        for metric in loaded {
            family(&text, metric.name, "gauge", metric.help)
            for model in status.models {
                if let value = metric.value(model) { sample(&text, metric.name, [("model", model.name)], value) }
            }
        }
        family(&text, "ollama_metrics_proxy_build_info", "gauge", "The proxy's version and the Swift version it was built with; the value is always 1.")
        sample(&text, "ollama_metrics_proxy_build_info", [("version", ProxyVersion.current), ("swift_version", swiftVersion)], "1")
        if let process = ProcessStatistics.read() {
            let values: [(name: String, type: String, help: String, value: String)] = [
                ("process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.", format(process.cpuSeconds)),
                ("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", String(process.residentBytes)),
                ("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", String(process.virtualBytes)),
                ("process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.", format(process.startTime)),
                ("process_open_fds", "gauge", "Number of open file descriptors.", String(process.openFileDescriptors)),
                ("process_max_fds", "gauge", "Maximum number of open file descriptors.", String(process.maxFileDescriptors)),
            ]
            for metric in values {
                family(&text, metric.name, metric.type, metric.help)
                sample(&text, metric.name, [], metric.value)
            }
        }
        return Array(text.utf8)
    }

    /// The Swift language version the proxy was compiled with.
    static let swiftVersion: String = {
        #if swift(>=6.4)
        "6.4"
        #elseif swift(>=6.3)
        "6.3"
        #elseif swift(>=6.2)
        "6.2"
        #elseif swift(>=6.1)
        "6.1"
        #else
        "6.0"
        #endif
    }()

    private static func family(_ text: inout String, _ name: String, _ type: String, _ help: String) {
        text += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
    }

    private static func sample(_ text: inout String, _ name: String, _ labels: [(String, String)], _ value: String) {
        text += name
        if !labels.isEmpty {
            text += "{"
            text += labels.map { "\($0.0)=\"\(escape($0.1))\"" }.joined(separator: ",")
            text += "}"
        }
        text += " \(value)\n"
    }

    /// A label value in the text format: backslash, double quote and line feed escaped.
    static func escape(_ value: String) -> String {
        var escaped = ""
        for character in value.unicodeScalars {
            switch character {
            case "\\": escaped += "\\\\"
            case "\"": escaped += "\\\""
            case "\n": escaped += "\\n"
            default: escaped.unicodeScalars.append(character)
            }
        }
        return escaped
    }

    private static func format(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
    }
}

/// Seconds since the Unix epoch, from the system's real-time clock.
enum WallClock {
    static func secondsSinceEpoch() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }
}

/// The `process_*` values, read from `/proc` (Linux only: nil elsewhere).
struct ProcessStatistics {
    var cpuSeconds: Double
    var residentBytes: Int
    var virtualBytes: Int
    var startTime: Double
    var openFileDescriptors: Int
    var maxFileDescriptors: Int

    static func read() -> ProcessStatistics? {
        #if os(Linux)
        guard let stat = readFile("/proc/self/stat"), let close = stat.lastIndex(of: UInt8(ascii: ")")) else { return nil }
        // Fields after the command name, starting with field 3 (state).
        let fields = stat[(close + 1)...].split(separator: UInt8(ascii: " ")).map { String(decoding: $0, as: UTF8.self) }
        guard fields.count > 21, let utime = Double(fields[11]), let stime = Double(fields[12]),
            let startTicks = Double(fields[19]), let virtualBytes = Int(fields[20]), let residentPages = Int(fields[21]),
            let bootTime = Self.bootTime()
        else { return nil }
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        return ProcessStatistics(
            cpuSeconds: (utime + stime) / ticks,
            residentBytes: residentPages * Int(sysconf(Int32(_SC_PAGESIZE))),
            virtualBytes: virtualBytes,
            startTime: bootTime + startTicks / ticks,
            openFileDescriptors: Self.openFileDescriptors(),
            maxFileDescriptors: Int(limit.rlim_cur)
        )
        #else
        return nil
        #endif
    }

    #if os(Linux)
    private static func bootTime() -> Double? {
        guard let stat = readFile("/proc/stat") else { return nil }
        for line in stat.split(separator: UInt8(ascii: "\n")) where line.starts(with: Array("btime ".utf8)) {
            return Double(String(decoding: line.dropFirst(6), as: UTF8.self))
        }
        return nil
    }

    private static func openFileDescriptors() -> Int {
        guard let directory = opendir("/proc/self/fd") else { return 0 }
        defer { closedir(directory) }
        var count = 0
        while readdir(directory) != nil { count += 1 }
        // `.`, `..` and the descriptor of the directory being read.
        return max(0, count - 3)
    }

    private static func readFile(_ path: String) -> [UInt8]? {
        let descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else { return nil }
        defer { _ = Glibc.close(descriptor) }
        var contents: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
            guard count > 0 else { break }
            contents += chunk[..<count]
        }
        return contents
    }
    #endif
}
