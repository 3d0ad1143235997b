import NIOConcurrencyHelpers
import NIOCore

/// What Ollama said about itself at the last scrape: whether it answered, its version, the models loaded.
struct OllamaStatus: Sendable, Equatable {
    /// A model in memory, from `GET /api/ps` (`api.ProcessModelResponse`).
    struct LoadedModel: Sendable, Equatable {
        var name: String
        /// `size`: bytes the model takes in memory (weights, KV cache, graph).
        var sizeBytes: Int64?
        /// `size_vram`: the part of it in GPU memory.
        var vramBytes: Int64?
        /// `context_length`: the context window it was loaded with.
        var contextLength: Int64?
        /// `expires_at` as seconds since the Unix epoch: when Ollama unloads it unless used again.
        var expiresAt: Double?
    }

    var isUp: Bool
    var version: String?
    var models: [LoadedModel]
    /// Why Ollama counts as down, in one line (`/readyz` says it); nil when it is up.
    var problem: String?

    static func down(_ problem: String) -> OllamaStatus {
        OllamaStatus(isUp: false, version: nil, models: [], problem: problem)
    }

    /// Reads `/api/ps`' `{"models":[…]}`; nil when it is not that.
    static func parseLoadedModels(_ body: ByteBuffer) -> [LoadedModel]? {
        body.withUnsafeReadableBytes { bytes -> [LoadedModel]? in
            var scanner = JSONScanner(bytes)
            guard scanner.enterObject() else { return nil }
            var models: [LoadedModel]?
            let isWellFormed = scanner.forEachMember { scanner, key in
                guard key.hasBytes("models") else {
                    scanner.skipValue()
                    return
                }
                var list: [LoadedModel] = []
                if scanner.peekKind() == .null {
                    scanner.skipValue()
                } else {
                    _ = scanner.forEachElement { scanner in
                        if let model = Self.parseLoadedModel(&scanner) { list.append(model) }
                    }
                }
                models = list
            }
            return isWellFormed && scanner.isCleanlyFinished() ? models : nil
        }
    }

    /// The model names of `/api/tags`' `{"models":[{"name":…},…]}` (the shape of `/api/ps`' answer, whose
    /// other fields are not read here); nil when it is not that.
    static func parseModelNames(_ body: ByteBuffer) -> [String]? {
        Self.parseLoadedModels(body)?.map(\.name)
    }

    private static func parseLoadedModel(_ scanner: inout JSONScanner) -> LoadedModel? {
        guard scanner.enterObject() else {
            scanner.skipValue()
            return nil
        }
        var name: String?
        var model = LoadedModel(name: "")
        _ = scanner.forEachMember { scanner, key in
            if key.hasBytes("name") {
                name = scanner.readString()
            } else if key.hasBytes("size") {
                model.sizeBytes = scanner.readCount()
            } else if key.hasBytes("size_vram") {
                model.vramBytes = scanner.readCount()
            } else if key.hasBytes("context_length") {
                model.contextLength = scanner.readCount()
            } else if key.hasBytes("expires_at") {
                model.expiresAt = scanner.readString().flatMap(RFC3339.secondsSinceEpoch)
            } else {
                scanner.skipValue()
            }
        }
        guard let name, !name.isEmpty else { return nil }
        model.name = name
        return model
    }

    /// Reads `/api/version`'s `{"version":"x.y.z"}`.
    static func parseVersion(_ body: ByteBuffer) -> String? {
        body.withUnsafeReadableBytes { bytes -> String? in
            var scanner = JSONScanner(bytes)
            return scanner.readStringMember("version")
        }
    }
}

/// Asks Ollama for its status when Prometheus scrapes, within a deadline and behind a short cache: a burst
/// of scrapes (several Prometheus servers, a dashboard refresh) costs one call, and a slow, hung or dead
/// Ollama makes `ollama_up` 0 after `timeout` instead of failing or hanging the scrape.
///
/// The same call asks `/api/tags` for the models Ollama has, and tells `listed` those and the loaded ones
/// (`ModelLabelPolicy.updateListed`); `/api/tags` failing changes nothing else (`ollama_up` is about
/// `/api/ps` and `/api/version`, as its HELP says).
final class OllamaStatusProbe: Sendable {
    typealias ListedModels = @Sendable (_ names: [String]) -> Void

    let upstream: UpstreamURL
    let timeout: TimeAmount
    let cacheDuration: TimeAmount
    private let group: EventLoopGroup
    private let listed: ListedModels?

    private struct State {
        var cached: (status: OllamaStatus, until: NIODeadline)?
        var inFlight: EventLoopFuture<OllamaStatus>?
    }

    private let state = NIOLockedValueBox(State())

    init(
        upstream: UpstreamURL, group: EventLoopGroup, timeout: TimeAmount = .seconds(1), cacheDuration: TimeAmount = .seconds(1),
        listed: ListedModels? = nil
    ) {
        self.upstream = upstream
        self.group = group
        self.timeout = timeout
        self.cacheDuration = cacheDuration
        self.listed = listed
    }

    /// Ollama's status: the cached one if fresh, else the answer of the fetch in flight (started now if
    /// none is). Never fails; completes within about `timeout`.
    func status() -> EventLoopFuture<OllamaStatus> {
        let eventLoop = self.group.next()
        let (status, started) = self.state.withLockedValue { state -> (EventLoopFuture<OllamaStatus>, Bool) in
            if let cached = state.cached, NIODeadline.now() < cached.until {
                return (eventLoop.makeSucceededFuture(cached.status), false)
            }
            if let inFlight = state.inFlight { return (inFlight, false) }
            let fetch = self.fetch(on: eventLoop)
            state.inFlight = fetch
            return (fetch, true)
        }
        if started {
            // Outside the lock: the callback may run at once.
            status.whenSuccess { status in
                self.state.withLockedValue { state in
                    state.cached = (status, NIODeadline.now() + self.cacheDuration)
                    state.inFlight = nil
                }
            }
        }
        return status
    }

    private func fetch(on eventLoop: EventLoop) -> EventLoopFuture<OllamaStatus> {
        let ps = OllamaGet.fetch("/api/ps", upstream: self.upstream, on: eventLoop, timeout: self.timeout)
        let version = OllamaGet.fetch("/api/version", upstream: self.upstream, on: eventLoop, timeout: self.timeout)
        let status = ps.and(version).map { ps, version -> OllamaStatus in
            guard (200..<300).contains(ps.status) else { return .down("GET /api/ps answered \(ps.status)") }
            guard (200..<300).contains(version.status) else { return .down("GET /api/version answered \(version.status)") }
            guard let models = OllamaStatus.parseLoadedModels(ps.body) else {
                return .down("GET /api/ps answered something other than a model list")
            }
            return OllamaStatus(isUp: true, version: OllamaStatus.parseVersion(version.body), models: models)
        }.recover { error in .down(OllamaGet.reason(error)) }
        guard let listed = self.listed else { return status }
        let tags = OllamaGet.fetch("/api/tags", upstream: self.upstream, on: eventLoop, timeout: self.timeout)
            .map { (200..<300).contains($0.status) ? OllamaStatus.parseModelNames($0.body) : nil }
            .recover { _ in nil }
        return status.and(tags).map { status, tags in
            if let tags { listed(tags + status.models.map(\.name)) }
            return status
        }
    }
}

/// RFC 3339 timestamps as Go writes them (`2025-06-01T12:00:00.123456789Z`, `…+02:00`).
enum RFC3339 {
    static func secondsSinceEpoch(_ text: String) -> Double? {
        let bytes = Array(text.utf8)
        func number(_ range: Range<Int>) -> Int? {
            guard range.upperBound <= bytes.count else { return nil }
            var value = 0
            for byte in bytes[range] {
                guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
                value = value * 10 + Int(byte - UInt8(ascii: "0"))
            }
            return value
        }
        guard bytes.count >= 20, bytes[4] == UInt8(ascii: "-"), bytes[7] == UInt8(ascii: "-"),
            bytes[10] == UInt8(ascii: "T") || bytes[10] == UInt8(ascii: "t"),
            bytes[13] == UInt8(ascii: ":"), bytes[16] == UInt8(ascii: ":"),
            let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
            let hour = number(11..<13), let minute = number(14..<16), let second = number(17..<19),
            (1...12).contains(month), (1...31).contains(day)
        else { return nil }
        var index = 19
        var fraction = 0.0
        if bytes[index] == UInt8(ascii: ".") {
            index += 1
            var scale = 0.1
            while index < bytes.count, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") {
                fraction += Double(bytes[index] - UInt8(ascii: "0")) * scale
                scale /= 10
                index += 1
            }
        }
        guard index < bytes.count else { return nil }
        var offset = 0
        switch bytes[index] {
        case UInt8(ascii: "Z"), UInt8(ascii: "z"):
            guard index + 1 == bytes.count else { return nil }
        case UInt8(ascii: "+"), UInt8(ascii: "-"):
            guard index + 6 == bytes.count, bytes[index + 3] == UInt8(ascii: ":"),
                let hours = number((index + 1)..<(index + 3)), let minutes = number((index + 4)..<(index + 6))
            else { return nil }
            offset = (hours * 3600 + minutes * 60) * (bytes[index] == UInt8(ascii: "+") ? 1 : -1)
        default:
            return nil
        }
        let days = daysFromCivil(year: year, month: month, day: day)
        let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset
        return Double(seconds) + fraction
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }
}
