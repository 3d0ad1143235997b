/// Prompt and completion token counts of a usage object.
struct TokenCounts: Equatable {
    var prompt: Int?
    var completion: Int?

    /// Reads a usage object's two counts; nil (value consumed) when the value is not an object, e.g. `null`.
    static func read(_ scanner: inout JSONScanner, prompt promptKey: StaticString, completion completionKey: StaticString) -> TokenCounts? {
        guard scanner.enterObject() else {
            scanner.skipValue()
            return nil
        }
        var counts = TokenCounts()
        let isWellFormed = scanner.forEachMember { scanner, key in
            if key.hasBytes(promptKey) {
                counts.prompt = scanner.readCount().flatMap(Int.init(exactly:))
            } else if key.hasBytes(completionKey) {
                counts.completion = scanner.readCount().flatMap(Int.init(exactly:))
            } else {
                scanner.skipValue()
            }
        }
        return isWellFormed ? counts : nil
    }
}
