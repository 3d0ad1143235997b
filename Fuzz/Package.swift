// swift-tools-version:6.1
import PackageDescription

// libFuzzer targets for the proxy's body parsers and its parser of Ollama's responses. Build and run them with
// `scripts/fuzz` (see README.md here): they need `-sanitize=fuzzer` (libFuzzer's driver and coverage) and
// `-enable-testing` on the proxy's module, whose splitters and parser are internal.
//
// The invariants live in the unit tests' `Inspection/FuzzInvariants/` folder, linked here as
// `Sources/FuzzInvariants`, so that `FuzzCorpusReplayTests` replays the corpus through the same checks.

/// One executable per target: its name, and the `FuzzTarget` case it runs.
let fuzzers = [
    "fuzz-native-response", "fuzz-openai-response", "fuzz-responses-response", "fuzz-anthropic-response",
    "fuzz-include-usage", "fuzz-splitters", "fuzz-upstream-response", "fuzz-request-head",
]

let package = Package(
    name: "ollama-metrics-proxy-fuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "ollama-metrics-proxy", path: ".."),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
    ],
    targets: [
        // Starts libFuzzer's driver from each target's main.
        .target(name: "CLibFuzzerDriver"),
        .target(
            name: "FuzzInvariants",
            dependencies: [
                .product(name: "OllamaMetricsProxy", package: "ollama-metrics-proxy"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
    ] + fuzzers.map { name in
        .executableTarget(
            name: name,
            dependencies: ["FuzzInvariants", "CLibFuzzerDriver"],
            // gold fails (an internal error) on these ASan + libFuzzer links; lld does not.
            linkerSettings: [.unsafeFlags(["-use-ld=lld"], .when(platforms: [.linux]))]
        )
    }
)
