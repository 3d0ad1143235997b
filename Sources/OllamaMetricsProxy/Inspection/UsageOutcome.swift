/// The result of reading one response, shared by every dialect so that "exactly once" and "never after
/// an error" are enforced in one place rather than re-implemented per format.
struct UsageOutcome {
    private var pending: Usage?
    /// A usage was produced (whether or not it has been taken); later ones are ignored.
    private(set) var hasCompleted = false
    /// The first error reported inside the 2xx body.
    private(set) var errorMessage: String?

    /// Records the request's final usage unless one was already recorded or the stream reported an error.
    mutating func complete(with usage: Usage) {
        guard !hasCompleted, errorMessage == nil else { return }
        pending = usage
        hasPendingUsage = true
        hasCompleted = true
    }

    /// Records an error reported inside the body: no usage completes after it. A usage completed before it
    /// stands (even if not yet taken), so that the outcome does not depend on where the body was cut.
    mutating func fail(message: String) {
        if errorMessage == nil {
            errorMessage = message
        }
    }

    /// A usage waits to be taken: a flag, so that the per-chunk check copies no `Usage`.
    private(set) var hasPendingUsage = false

    mutating func takeCompletedUsage() -> Usage? {
        defer {
            pending = nil
            hasPendingUsage = false
        }
        return pending
    }
}
