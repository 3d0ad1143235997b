import Foundation
import Testing

/// SplitMix64: a small, fast generator whose whole state is the seed, so any run can be replayed from the
/// number printed with its failure.
struct SeededRandom: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) {
        self.state = seed
    }

    mutating func next() -> UInt64 {
        self.state &+= 0x9E37_79B9_7F4A_7C15
        var z = self.state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A number in `0..<bound`.
    mutating func below(_ bound: Int) -> Int {
        precondition(bound > 0)
        return Int(self.next() % UInt64(bound))
    }

    mutating func int(in range: ClosedRange<Int>) -> Int {
        range.lowerBound + self.below(range.count)
    }

    /// True once in `n` times on average.
    mutating func oneIn(_ n: Int) -> Bool {
        self.below(n) == 0
    }

    mutating func bool() -> Bool {
        self.next() & 1 == 1
    }

    mutating func pick<T>(_ choices: [T]) -> T {
        choices[self.below(choices.count)]
    }

    /// One of `choices`, each as likely as its weight; nil when every weight is zero.
    mutating func weighted<T>(_ choices: [(weight: Int, value: T)]) -> T? {
        let total = choices.reduce(0) { $0 + max(0, $1.weight) }
        guard total > 0 else { return nil }
        var roll = self.below(total)
        for choice in choices where choice.weight > 0 {
            if roll < choice.weight { return choice.value }
            roll -= choice.weight
        }
        return nil
    }

    /// `bytes` cut at random places into 1 to `maxParts` non-empty pieces (one empty piece for no bytes).
    mutating func split(_ bytes: [UInt8], maxParts: Int) -> [[UInt8]] {
        guard bytes.count > 1, maxParts > 1 else { return [bytes] }
        let cuts = Set((0..<self.below(min(maxParts, bytes.count))).map { _ in self.int(in: 1...(bytes.count - 1)) }).sorted()
        var pieces: [[UInt8]] = []
        var start = 0
        for cut in cuts + [bytes.count] {
            pieces.append(Array(bytes[start..<cut]))
            start = cut
        }
        return pieces
    }
}

/// One run of a property: its random numbers, the invariants it broke, and (when replayed to report a
/// failure) what happened step by step.
struct PropertyRun {
    let seed: UInt64
    var random: SeededRandom
    /// Only a failing seed is traced: it is run again with this set, so passing runs build no strings.
    let tracing: Bool
    private(set) var trace: [String] = []
    private(set) var violations: [String] = []

    /// The weight of events that end things (hang-ups, resets, failures, shutdown) against about 10 for those
    /// that move them on: a run is calm (0) or more or less hostile, so that long healthy exchanges are
    /// explored as well as failures at every phase.
    let hazard: Int

    init(seed: UInt64, tracing: Bool) {
        self.seed = seed
        self.random = SeededRandom(seed: seed)
        self.tracing = tracing
        self.hazard = self.random.pick([0, 1, 1, 2, 3])
    }

    mutating func note(_ step: @autoclosure () -> String) {
        guard self.tracing else { return }
        let line = step()
        if PropertyRuns.printsTrace { print("  [\(self.seed)] \(line)") }
        self.trace.append(line)
    }

    /// Records a broken invariant; the run goes on, so later steps show what followed from it.
    mutating func expect(_ condition: Bool, _ message: @autoclosure () -> String) {
        if !condition { self.fail(message()) }
    }

    mutating func fail(_ message: String) {
        if self.violations.count < 20 { self.violations.append(message) }
        self.note("VIOLATION: \(message)")
    }
}

/// The world of one random run: it plays out a sequence of events from the run's random numbers and
/// records in `run` what it broke.
protocol RandomWorld {
    init(run: PropertyRun)
    mutating func play()
    var run: PropertyRun { get }
}

/// Runs properties over many seeded random runs.
///
/// By default every property runs a fixed set of seeds, the same on every machine, so a failure in CI is a
/// failure at the desk. `PROPERTY_RUNS=N` runs N seeds instead (the first ones are the default ones, the rest
/// explore further); `PROPERTY_SEED=S` runs seed S alone (decimal or 0x hex), as printed by a failure.
/// `PROPERTY_TRACE=1` prints each run's steps as they happen: for a run that stops the process (a
/// `preconditionFailure` in a state machine), the last lines printed are its seed and steps.
enum PropertyRuns {
    static let environment = ProcessInfo.processInfo.environment
    static let printsTrace = environment["PROPERTY_TRACE"] == "1"

    static func seeds(defaultRuns: Int) -> [UInt64] {
        if let text = environment["PROPERTY_SEED"], let seed = parseSeed(text) {
            return [seed]
        }
        let runs = environment["PROPERTY_RUNS"].flatMap(Int.init) ?? defaultRuns
        var generator = SeededRandom(seed: 0x5EED_2026_0A11)
        return (0..<runs).map { _ in generator.next() }
    }

    private static func parseSeed(_ text: String) -> UInt64? {
        if text.hasPrefix("0x") { return UInt64(text.dropFirst(2), radix: 16) }
        return UInt64(text)
    }

    /// Plays a new `World` once per seed; see `check(_:defaultRuns:_:)`.
    static func check<World: RandomWorld>(
        _ name: String, defaultRuns: Int, playing: World.Type, sourceLocation: SourceLocation = #_sourceLocation
    ) {
        self.check(name, defaultRuns: defaultRuns, sourceLocation: sourceLocation) { run in
            var world = World(run: run)
            world.play()
            run = world.run
        }
    }

    /// Runs `property` once per seed. The first seed that breaks an invariant is run again with tracing on
    /// and reported with its seed, the invariants it broke and its last steps; the others are not run.
    static func check(
        _ name: String, defaultRuns: Int, sourceLocation: SourceLocation = #_sourceLocation,
        _ property: (inout PropertyRun) -> Void
    ) {
        for seed in self.seeds(defaultRuns: defaultRuns) {
            var run = PropertyRun(seed: seed, tracing: self.printsTrace)
            if self.printsTrace { print("[\(name)] seed \(seed)") }
            property(&run)
            guard !run.violations.isEmpty else { continue }
            var replay = PropertyRun(seed: seed, tracing: true)
            property(&replay)
            let steps = replay.trace.suffix(80).joined(separator: "\n    ")
            Issue.record(
                """
                \(name): seed \(seed) broke \(run.violations.count) invariant(s):
                  - \(run.violations.joined(separator: "\n  - "))
                reproduce with PROPERTY_SEED=\(seed) swift test --skip-build --filter \(name)
                last steps:
                    \(steps)
                """,
                sourceLocation: sourceLocation
            )
            return
        }
    }
}
