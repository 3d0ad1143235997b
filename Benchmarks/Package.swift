// swift-tools-version:6.1
// Micro-benchmarks of the proxy's per-chunk code (issue 4): the response inspectors of each dialect and the
// request-body edit, measured in wall-clock nanoseconds and allocations per chunk.
//
// A separate package so that the proxy itself never depends on the benchmark framework. Run from this folder:
//
//     swift package --scratch-path ../.build-bench benchmark
//
// (`--scratch-path` is optional; without it the build goes to Benchmarks/.build.)
import PackageDescription

let package = Package(
    name: "ollama-metrics-proxy-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        // The identity of a path dependency is its folder's name, which depends on where the repository was
        // cloned; naming it keeps `package:` below stable.
        .package(name: "ollama-metrics-proxy", path: ".."),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/ordo-one/benchmark", exact: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "InspectionBenchmarks",
            dependencies: [
                .product(name: "OllamaMetricsProxy", package: "ollama-metrics-proxy"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/InspectionBenchmarks",
            plugins: [
                .plugin(name: "BenchmarkPlugin", package: "benchmark"),
            ]
        ),
        .executableTarget(
            name: "HandlerBenchmarks",
            dependencies: [
                .product(name: "OllamaMetricsProxy", package: "ollama-metrics-proxy"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/HandlerBenchmarks",
            plugins: [
                .plugin(name: "BenchmarkPlugin", package: "benchmark"),
            ]
        ),
    ]
)
