import NIOConcurrencyHelpers

/// Bounds the values of the `model` label, which clients choose, so that no client can blow up the
/// registry: at most `limit` distinct names get series of their own, later new names share `overflow`.
///
/// A name becomes permanent once Ollama has answered 2xx for it. Until then it is provisional: a request
/// Ollama rejects as unknown (404) is recorded under `rejected`, and the name is evicted with its series
/// once no other request uses it, so typos and junk names do not use up the budget, unless requests that
/// ended otherwise (Ollama down, client gone…) were recorded under it: those are never erased.
final class ModelLabelPolicy: Sendable {
    /// The label of requests that name no model.
    static let unknown = "unknown"
    /// The label shared by new model names once the bound is reached.
    static let overflow = "__overflow__"
    /// The label under which requests for a model Ollama rejected (404) are recorded once it is evicted.
    static let rejected = "__rejected__"

    /// How a request's model name was labelled.
    struct Admission: Equatable {
        let label: String
        /// The name is not yet known to be one Ollama serves.
        let isProvisional: Bool
        /// The name was folded into `overflow` because the bound was reached.
        let overflowed: Bool
    }

    private struct Provisional {
        var inFlight = 0
        var endpoints: Set<InferenceEndpoint> = []
        /// A request of this name ended otherwise than rejected and is recorded under it: the name keeps
        /// its series.
        var hasRecords = false
    }

    private struct State {
        var permanent: Set<String> = []
        var provisional: [String: Provisional] = [:]
        var overflowReported = false
    }

    let limit: Int
    private let state = NIOLockedValueBox(State())

    init(limit: Int) {
        self.limit = max(0, limit)
    }

    /// The label for a request naming `model`, counted as in flight until `release`.
    /// Returns whether this is the first overflow (worth one log line).
    func admit(_ model: String?, endpoint: InferenceEndpoint) -> (admission: Admission, firstOverflow: Bool) {
        guard let model, !model.isEmpty else {
            return (Admission(label: Self.unknown, isProvisional: false, overflowed: false), false)
        }
        return self.state.withLockedValue { state in
            if state.permanent.contains(model) {
                return (Admission(label: model, isProvisional: false, overflowed: false), false)
            }
            if state.provisional[model] != nil || state.permanent.count + state.provisional.count < self.limit {
                state.provisional[model, default: Provisional()].inFlight += 1
                state.provisional[model]!.endpoints.insert(endpoint)
                return (Admission(label: model, isProvisional: true, overflowed: false), false)
            }
            let first = !state.overflowReported
            state.overflowReported = true
            return (Admission(label: Self.overflow, isProvisional: false, overflowed: true), first)
        }
    }

    /// The label a request naming `model` was given by `admit` while that request is in flight, without
    /// admitting it again: for observers that label their own series like the request's.
    func currentLabel(for model: String?) -> String {
        guard let model, !model.isEmpty else { return Self.unknown }
        return self.state.withLockedValue { state in
            state.permanent.contains(model) || state.provisional[model] != nil ? model : Self.overflow
        }
    }

    /// Whether Ollama has answered 2xx for a request naming `label`, so that it keeps its series for good.
    func isPermanent(_ label: String) -> Bool {
        self.state.withLockedValue { $0.permanent.contains(label) }
    }

    /// Ollama answered 2xx for `label`: it is a real model and keeps its series.
    func confirm(_ label: String) {
        self.state.withLockedValue { state in
            guard state.provisional[label] != nil else { return }
            state.permanent.insert(label)
        }
    }

    /// A request with a provisional label ended. Returns true when Ollama rejected the model and never
    /// confirmed the name: the request is recorded under `rejected`. The name is then evicted if no other
    /// request uses it and none is recorded under it: `evict` runs under the policy's lock (so no new request
    /// can recreate the series meanwhile) with every endpoint the name was used on.
    func release(_ label: String, rejected: Bool, evict: ([InferenceEndpoint]) -> Void) -> Bool {
        self.state.withLockedValue { state in
            guard var entry = state.provisional[label] else { return false }
            entry.inFlight -= 1
            if state.permanent.contains(label) {
                if entry.inFlight == 0 { state.provisional[label] = nil } else { state.provisional[label] = entry }
                return false
            }
            guard rejected else {
                // Not a 404 (Ollama down, client gone…): recorded under the name, which keeps its place and
                // stays provisional.
                entry.hasRecords = true
                state.provisional[label] = entry
                return false
            }
            if entry.inFlight == 0 && !entry.hasRecords {
                state.provisional[label] = nil
                evict(Array(entry.endpoints))
            } else {
                state.provisional[label] = entry
            }
            return true
        }
    }

    /// Names with series of their own (permanent and provisional).
    var labelCount: Int {
        self.state.withLockedValue { $0.permanent.count + $0.provisional.count }
    }
}
