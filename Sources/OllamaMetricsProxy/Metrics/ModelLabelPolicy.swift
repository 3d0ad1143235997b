import NIOConcurrencyHelpers

/// Bounds the values of the `model` label, which clients choose: the first `limit` distinct names get
/// their own series, later new names share the overflow value, so a client cannot blow up the registry.
final class ModelLabelPolicy: Sendable {
    /// The label of requests that name no model.
    static let unknown = "unknown"
    /// The label shared by new model names once the bound is reached.
    static let overflow = "__overflow__"

    let limit: Int
    private let seen: NIOLockedValueBox<Set<String>>

    init(limit: Int) {
        self.limit = max(0, limit)
        self.seen = NIOLockedValueBox([])
    }

    /// The label for a model name taken from a request or response.
    func label(for model: String?) -> String {
        guard let model, !model.isEmpty else { return Self.unknown }
        return self.seen.withLockedValue { seen in
            if seen.contains(model) { return model }
            guard seen.count < self.limit else { return Self.overflow }
            seen.insert(model)
            return model
        }
    }
}
