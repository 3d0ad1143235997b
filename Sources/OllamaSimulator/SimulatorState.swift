import NIOConcurrencyHelpers
import NIOHTTP1

/// Everything the connections of one simulator share: the default behaviour, the request record, counters, gates,
/// uploaded blobs, and the tasks waiting for any of it to change.
final class SimulatorState: Sendable {
    let options: SimulatorOptions

    /// A pthread lock rather than `Synchronization.Mutex`: on Linux a contended `Mutex` waits in the kernel
    /// (`FUTEX_LOCK_PI`), which ThreadSanitizer cannot see, so it would report this state as raced.
    private let guarded: NIOLockedValueBox<Guarded>

    init(defaults: SimulatorBehaviour, options: SimulatorOptions) {
        self.options = options
        self.guarded = NIOLockedValueBox(Guarded(defaults: defaults))
    }

    private struct Gate {
        var isOpen = false
        var held: [Int: @Sendable () -> Void] = [:]
    }

    private enum WaiterState {
        case allocated
        case registered(
            condition: @Sendable (SimulatorSnapshot) -> Bool,
            continuation: CheckedContinuation<Bool, Never>
        )
        case cancelled
    }

    private struct Guarded {
        var defaults: SimulatorBehaviour
        var sequence = 0
        var records: [RecordedRequest] = []
        /// Sequence number of `records[0]`'s slot: records made before the last reset are not updated.
        var firstRecordedSequence = 1
        var requestCount = 0
        var cancellationCount = 0
        var activeResponses = 0
        var gates: [String: Gate] = [:]
        var nextTicket = 0
        var blobs: [String: Int] = [:]
        var loadedModels: [String] = []
        var isShuttingDown = false
        var waiters: [Int: WaiterState] = [:]
        var nextWaiterID = 0

        init(defaults: SimulatorBehaviour) { self.defaults = defaults }

        var snapshot: SimulatorSnapshot {
            SimulatorSnapshot(
                requestCount: requestCount,
                cancellationCount: cancellationCount,
                activeResponses: activeResponses,
                heldAtGate: gates.compactMapValues { $0.held.isEmpty ? nil : $0.held.count }
            )
        }

        /// Removes and returns the waiters whose condition now holds.
        mutating func takeSatisfiedWaiters() -> [CheckedContinuation<Bool, Never>] {
            guard !waiters.isEmpty else { return [] }
            let current = snapshot
            var satisfied: [CheckedContinuation<Bool, Never>] = []
            for (id, state) in waiters {
                if case .registered(let condition, let continuation) = state, condition(current) {
                    waiters[id] = nil
                    satisfied.append(continuation)
                }
            }
            return satisfied
        }
    }

    /// Runs `body` under the lock, then resumes the waiters whose condition became true.
    private func mutate<Result: Sendable>(_ body: (inout Guarded) -> Result) -> Result {
        let (result, satisfied) = guarded.withLockedValue { state in
            let result = body(&state)
            return (result, state.takeSatisfiedWaiters())
        }
        for continuation in satisfied { continuation.resume(returning: true) }
        return result
    }

    // MARK: Defaults

    var defaults: SimulatorBehaviour {
        get { guarded.withLockedValue { $0.defaults } }
        set { guarded.withLockedValue { $0.defaults = newValue } }
    }

    // MARK: Requests

    /// Records a fully received request as in progress and returns its sequence number.
    func commitRequest(
        method: String,
        uri: String,
        version: String,
        headers: HTTPHeaders,
        body: [UInt8],
        bodyByteCount: Int
    ) -> Int {
        let recordsRequests = options.recordsRequests
        return mutate { state in
            state.sequence += 1
            state.requestCount += 1
            state.activeResponses += 1
            if recordsRequests {
                state.records.append(
                    RecordedRequest(
                        sequenceNumber: state.sequence,
                        method: method,
                        uri: uri,
                        version: version,
                        headers: headers,
                        body: body,
                        bodyByteCount: bodyByteCount,
                        outcome: .inProgress
                    )
                )
            }
            return state.sequence
        }
    }

    /// Ends a request's response with `outcome`.
    func finishRequest(_ sequence: Int, outcome: RequestOutcome) {
        mutate { state in
            state.activeResponses -= 1
            if outcome == .cancelled { state.cancellationCount += 1 }
            let index = sequence - state.firstRecordedSequence
            if index >= 0, index < state.records.count, state.records[index].sequenceNumber == sequence {
                state.records[index].outcome = outcome
            }
        }
    }

    var records: [RecordedRequest] { guarded.withLockedValue { $0.records } }

    var snapshot: SimulatorSnapshot { guarded.withLockedValue { $0.snapshot } }

    func reset() {
        mutate { state in
            state.records = []
            state.firstRecordedSequence = state.sequence + 1
            state.requestCount = 0
            state.cancellationCount = 0
            state.blobs = [:]
            state.loadedModels = []
            for name in state.gates.keys { state.gates[name]?.isOpen = false }
        }
    }

    /// Marks the simulator as closing its connections: responses cut short now are ``RequestOutcome/dropped``,
    /// not client cancellations.
    func beginShutdown() { guarded.withLockedValue { $0.isShuttingDown = true } }

    var isShuttingDown: Bool { guarded.withLockedValue { $0.isShuttingDown } }

    // MARK: Gates

    /// Holds a response at gate `name` until it opens. Returns `nil` if it is open (go on now); otherwise a ticket,
    /// and `resume` runs once when the gate opens.
    func hold(atGate name: String, resume: @escaping @Sendable () -> Void) -> Int? {
        mutate { state -> Int? in
            if state.gates[name]?.isOpen == true { return nil }
            state.nextTicket += 1
            state.gates[name, default: Gate()].held[state.nextTicket] = resume
            return state.nextTicket
        }
    }

    /// Withdraws a held response (its connection closed).
    func release(ticket: Int, atGate name: String) {
        mutate { state in _ = state.gates[name]?.held.removeValue(forKey: ticket) }
    }

    func openGate(_ name: String) {
        let resumes = mutate { state -> [@Sendable () -> Void] in
            var gate = state.gates[name] ?? Gate()
            gate.isOpen = true
            let held = Array(gate.held.sorted { $0.key < $1.key }.map(\.value))
            gate.held = [:]
            state.gates[name] = gate
            return held
        }
        for resume in resumes { resume() }
    }

    func closeGate(_ name: String) {
        mutate { state in state.gates[name, default: Gate()].isOpen = false }
    }

    // MARK: Blobs and loaded models

    func storeBlob(_ digest: String, size: Int) { mutate { $0.blobs[digest] = size } }

    func blobExists(_ digest: String) -> Bool { guarded.withLockedValue { $0.blobs[digest] != nil } }

    func blobSizes() -> [String: Int] { guarded.withLockedValue { $0.blobs } }

    func noteModelLoaded(_ name: String) {
        let full = SimulatedModel.fullName(name)
        mutate { state in
            if !state.loadedModels.contains(full) { state.loadedModels.append(full) }
        }
    }

    /// `keep_alive: 0`: the model leaves memory (and `/api/ps`).
    func noteModelUnloaded(_ name: String) {
        let full = SimulatedModel.fullName(name)
        mutate { state in state.loadedModels.removeAll { $0 == full } }
    }

    var loadedModels: [String] { guarded.withLockedValue { $0.loadedModels } }

    // MARK: Waiting

    /// Suspends until `condition` holds or `timeout` passes; returns whether it holds.
    func waitUntil(timeout: Duration, _ condition: @escaping @Sendable (SimulatorSnapshot) -> Bool) async -> Bool {
        if condition(snapshot) { return true }
        let satisfied = await withTaskGroup(of: Bool.self) { group in
            group.addTask { await self.suspend(until: condition) }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
        return satisfied || condition(snapshot)
    }

    private func suspend(until condition: @escaping @Sendable (SimulatorSnapshot) -> Bool) async -> Bool {
        let id = guarded.withLockedValue { state in
            state.nextWaiterID += 1
            state.waiters[state.nextWaiterID] = .allocated
            return state.nextWaiterID
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                let immediate = guarded.withLockedValue { state -> Bool? in
                    if case .cancelled = state.waiters[id] {
                        state.waiters[id] = nil
                        return false
                    }
                    if condition(state.snapshot) {
                        state.waiters[id] = nil
                        return true
                    }
                    state.waiters[id] = .registered(condition: condition, continuation: continuation)
                    return nil
                }
                if let immediate { continuation.resume(returning: immediate) }
            }
        } onCancel: {
            let continuation = guarded.withLockedValue { state -> CheckedContinuation<Bool, Never>? in
                switch state.waiters[id] {
                case .registered(_, let continuation):
                    state.waiters[id] = nil
                    return continuation
                case .allocated:
                    state.waiters[id] = .cancelled
                    return nil
                case .cancelled, nil:
                    return nil
                }
            }
            continuation?.resume(returning: false)
        }
    }
}
