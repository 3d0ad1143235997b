import NIOConcurrencyHelpers

/// Decides which `model` label a request gets. Clients choose model names; only a name Ollama has
/// accepted becomes a label value, so that no client can fill `/metrics` or `--max-models` with junk.
///
/// A name is accepted once Ollama answered 2xx for a request naming it, or listed it in `GET /api/tags` or
/// `GET /api/ps` (`updateListed`, from the scrape-time probe). At most `limit` accepted names get series of
/// their own, for good; later accepted names share `overflow`. A name that is not accepted yet is in flight
/// under `unconfirmed` until Ollama's response head: a 2xx moves the request to the name's own label;
/// otherwise, unless another request of the name was accepted meanwhile, the request is recorded under
/// `rejected` (Ollama answered an error) or stays `unconfirmed` (Ollama never answered). A name longer than
/// `maxNameBytes` is never a label, whatever Ollama answers.
final class ModelLabelPolicy: Sendable {
    /// The label of requests that name no model.
    static let unknown = "unknown"
    /// The label shared by accepted model names once `limit` names have labels of their own.
    static let overflow = "__overflow__"
    /// The label of requests for a name that is not a label: Ollama answered it with an error status and
    /// never accepted it, or it is longer than `maxNameBytes`.
    static let rejected = "__rejected__"
    /// The label of a request for a name Ollama has not accepted (yet) while it waits for Ollama's answer,
    /// and of one that ended without an answer (Ollama unreachable, the client hung up first).
    static let unconfirmed = "__unconfirmed__"
    /// Every value the label can take that is not a model name.
    static let placeholders = [unknown, overflow, rejected, unconfirmed]

    /// The longest name, in UTF-8 bytes, that can be a label value. Ollama's own parser
    /// (`types/model/name.go`, `isValidLen`) allows a host of up to 350 bytes and a namespace, model and
    /// tag of up to 80 each; the names `ollama pull` and the library use are far shorter, and 256 bytes
    /// leave room for a private registry's host in front of `namespace/model:tag`.
    static let maxNameBytes = 256
    /// The most names `updateListed` keeps: far more than an Ollama installation holds.
    static let maxListedNames = 4096

    /// How a request's model name was labelled when it began.
    struct Admission: Equatable {
        let label: String
        /// The label is `unconfirmed`: the name waits for Ollama's answer (`confirm` on a 2xx).
        let awaitsAnswer: Bool
        /// The name was folded into `overflow` because the bound was reached.
        let overflowed: Bool

        static func named(_ label: String, overflowed: Bool = false) -> Admission {
            Admission(label: label, awaitsAnswer: false, overflowed: overflowed)
        }

        static let awaitingAnswer = Admission(label: ModelLabelPolicy.unconfirmed, awaitsAnswer: true, overflowed: false)
    }

    private struct State {
        /// Names with series of their own: at most `limit`, kept for good.
        var labelled: Set<String> = []
        /// `listingKey`s of the names Ollama listed at the last probe.
        var listed: Set<String> = []
        var overflowReported = false

        /// `name`'s own label when there is room, else `overflow`. Returns whether this is the first overflow.
        mutating func label(_ name: String, limit: Int) -> (admission: Admission, firstOverflow: Bool) {
            if self.labelled.count < limit {
                self.labelled.insert(name)
                return (.named(name), false)
            }
            defer { self.overflowReported = true }
            return (.named(ModelLabelPolicy.overflow, overflowed: true), !self.overflowReported)
        }
    }

    let limit: Int
    private let state = NIOLockedValueBox(State())

    init(limit: Int) {
        self.limit = max(0, limit)
    }

    /// The label for a request naming `model`, as it begins. Returns whether this is the first overflow
    /// (worth one log line).
    func admit(_ model: String?) -> (admission: Admission, firstOverflow: Bool) {
        guard let model, !model.isEmpty else { return (.named(Self.unknown), false) }
        guard model.utf8.count <= Self.maxNameBytes else { return (.awaitingAnswer, false) }
        return self.state.withLockedValue { state in
            if state.labelled.contains(model) { return (.named(model), false) }
            guard state.listed.contains(Self.listingKey(model)) else { return (.awaitingAnswer, false) }
            return state.label(model, limit: self.limit)
        }
    }

    /// Ollama answered 2xx for a request naming `model`, admitted as awaiting the answer: its label from now
    /// on, the name's own when there is room. A name longer than `maxNameBytes` stays `rejected`.
    func confirm(_ model: String) -> (admission: Admission, firstOverflow: Bool) {
        guard !model.isEmpty, model.utf8.count <= Self.maxNameBytes else { return (.named(Self.rejected), false) }
        return self.state.withLockedValue { state in
            if state.labelled.contains(model) { return (.named(model), false) }
            return state.label(model, limit: self.limit)
        }
    }

    /// The label `admit` gave a request naming `model` that is in flight, without admitting it again: for
    /// observers that label their own records like the request's.
    func currentLabel(for model: String?) -> String {
        guard let model, !model.isEmpty else { return Self.unknown }
        guard model.utf8.count <= Self.maxNameBytes else { return Self.unconfirmed }
        return self.state.withLockedValue { state in
            if state.labelled.contains(model) { return model }
            // Listed but not labelled: `admit` found no room.
            return state.listed.contains(Self.listingKey(model)) ? Self.overflow : Self.unconfirmed
        }
    }

    /// The label of a request naming `model` once Ollama answered it 2xx (after `confirm`).
    func labelAfterSuccess(for model: String?) -> String {
        guard let model, !model.isEmpty else { return Self.unknown }
        guard model.utf8.count <= Self.maxNameBytes else { return Self.rejected }
        return self.state.withLockedValue { $0.labelled.contains(model) } ? model : Self.overflow
    }

    /// The final label of a request still `unconfirmed` when it ended: the name's own if another request
    /// of it was accepted meanwhile; else `rejected` when Ollama answered (an error) or the name can never be a
    /// label, and `unconfirmed` when Ollama never answered.
    func settledLabel(for model: String?, answered: Bool) -> String {
        guard let model, !model.isEmpty else { return Self.unknown }
        guard model.utf8.count <= Self.maxNameBytes else { return Self.rejected }
        if self.state.withLockedValue({ $0.labelled.contains(model) }) { return model }
        return answered ? Self.rejected : Self.unconfirmed
    }

    /// The names Ollama has (`/api/tags`) and has loaded (`/api/ps`), replacing the last list. A name
    /// listed here takes a label at its first request, before Ollama answers it. Names too long to be labels
    /// and those beyond `maxListedNames` are left out.
    func updateListed(_ names: some Sequence<String>) {
        var keys = Set<String>()
        for name in names where !name.isEmpty && name.utf8.count <= Self.maxNameBytes {
            guard keys.count < Self.maxListedNames else { break }
            keys.insert(Self.listingKey(name))
        }
        self.state.withLockedValue { $0.listed = keys }
    }

    /// A name as Ollama lists it (`DisplayShortest`: the default host `registry.ollama.ai` and namespace
    /// `library` left out, the tag always there), so that `llama3.2` matches the listed `llama3.2:latest`.
    /// Case is kept: another spelling earns a label of its own only with a 2xx of its own.
    static func listingKey(_ name: String) -> String {
        var rest = Substring(name)
        if rest.hasPrefix("registry.ollama.ai/") { rest = rest.dropFirst("registry.ollama.ai/".count) }
        if rest.hasPrefix("library/") { rest = rest.dropFirst("library/".count) }
        let lastSlash = rest.lastIndex(of: "/") ?? rest.startIndex
        return rest[lastSlash...].contains(":") ? String(rest) : rest + ":latest"
    }

    /// Names with series of their own.
    var labelCount: Int {
        self.state.withLockedValue { $0.labelled.count }
    }
}
