/// Instance-wide settings, fixed when the simulator starts.
public struct SimulatorOptions: Sendable {
    /// Source of every timestamp (`created_at`, `created`, `Date`). Default: the real clock.
    public var clock: SimulatorClock = .system
    /// Keep a ``RecordedRequest`` for every request. Counters (requests, cancellations, active responses) are kept
    /// either way; turn this off for long benchmarks so memory stays flat.
    public var recordsRequests: Bool = true
    /// Reject requests whose `Host` is not loopback, private, `localhost`, `*.localhost`, `*.local`, `*.internal`
    /// or this machine's name with 403, as Ollama does when it listens on loopback. Only applies when the simulator
    /// itself listens on a loopback address.
    public var checksHost: Bool = true
    /// `/api/version`'s answer.
    public var version: String = "0.33.0"
    /// The models `/api/tags`, `/v1/models` and `/api/show` describe. Inference accepts any model name except
    /// those starting with `missing` (404).
    public var models: [SimulatedModel] = SimulatedModel.defaultCatalogue

    public init() {}

    /// Settings for benchmarks: no request recording.
    public static var benchmark: SimulatorOptions {
        var options = SimulatorOptions()
        options.recordsRequests = false
        return options
    }
}

/// A model as `/api/tags` lists it.
public struct SimulatedModel: Sendable, Equatable {
    public var name: String
    public var size: Int64
    /// 64 hex digits.
    public var digest: String
    public var family: String
    public var parameterSize: String
    public var quantizationLevel: String
    public var capabilities: [String]

    public init(
        name: String,
        size: Int64,
        digest: String,
        family: String,
        parameterSize: String,
        quantizationLevel: String,
        capabilities: [String] = ["completion", "tools"]
    ) {
        self.name = name
        self.size = size
        self.digest = digest
        self.family = family
        self.parameterSize = parameterSize
        self.quantizationLevel = quantizationLevel
        self.capabilities = capabilities
    }

    public static let defaultCatalogue: [SimulatedModel] = [
        SimulatedModel(
            name: "llama3.2:latest",
            size: 2_019_393_189,
            digest: "a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72",
            family: "llama",
            parameterSize: "3.2B",
            quantizationLevel: "Q4_K_M"
        ),
        SimulatedModel(
            name: "qwen2.5:0.5b",
            size: 397_821_319,
            digest: "a8b0c51577010a279d933d14c2a8ab4b268079d44c5c8830c0a93900f1827c67",
            family: "qwen2",
            parameterSize: "494.03M",
            quantizationLevel: "Q4_K_M"
        ),
        SimulatedModel(
            name: "nomic-embed-text:latest",
            size: 274_302_450,
            digest: "0a109f422b47e3a30ba2b10eca18548e944e8a23073ee3f3e947efcf3c45e59f",
            family: "nomic-bert",
            parameterSize: "137M",
            quantizationLevel: "F16",
            capabilities: ["embedding"]
        ),
    ]

    /// The catalogue entry for `name` (`llama3.2` matches `llama3.2:latest`), or a generic description of it.
    static func describing(_ name: String, in catalogue: [SimulatedModel]) -> SimulatedModel {
        let full = fullName(name)
        if let known = catalogue.first(where: { $0.name == full }) { return known }
        return SimulatedModel(
            name: full,
            size: 1_000_000_000,
            digest: "5ee4f07cdb9beadbbb293e85803c569b01bd37ed059d2715faa7bb405f31caa6",
            family: "llama",
            parameterSize: "1.2B",
            quantizationLevel: "Q4_K_M"
        )
    }

    /// `name:latest` when the name has no tag.
    static func fullName(_ name: String) -> String {
        let lastComponent = name.split(separator: "/").last.map(String.init) ?? name
        return lastComponent.contains(":") ? name : name + ":latest"
    }

    /// Whether inference knows the model: every name except those starting with `missing`.
    static func exists(_ name: String) -> Bool { !name.hasPrefix("missing") }
}
