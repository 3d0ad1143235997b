/// The libFuzzer targets of `Fuzz/`, by the name of their executable and of their corpus folder
/// (`Fuzz/Corpus/<name>/`). Every input is a few header bytes choosing what to exercise, then a body.
enum FuzzTarget: String, CaseIterable {
    case nativeResponse = "native-response"
    case openAIResponse = "openai-response"
    case responsesResponse = "responses-response"
    case anthropicResponse = "anthropic-response"
    case includeUsage = "include-usage"
    case splitters
    case upstreamResponse = "upstream-response"
    case requestHead = "request-head"

    /// Checks one input's invariants.
    func check(_ input: [UInt8], _ thoroughness: PieceSplits.Thoroughness) throws(InvariantViolation) {
        switch self {
        case .nativeResponse: try ResponseInspectorInvariants.check(.native, input, thoroughness)
        case .openAIResponse: try ResponseInspectorInvariants.check(.openAI, input, thoroughness)
        case .responsesResponse: try ResponseInspectorInvariants.check(.responses, input, thoroughness)
        case .anthropicResponse: try ResponseInspectorInvariants.check(.anthropic, input, thoroughness)
        case .includeUsage: try RequestEditInvariants.check(input)
        case .splitters: try SplitterInvariants.check(input, thoroughness)
        case .upstreamResponse: try UpstreamResponseInvariants.check(input, thoroughness)
        case .requestHead: try RequestHeadInvariants.check(input)
        }
    }

    /// The body of `LLVMFuzzerTestOneInput`: a broken invariant stops the process, so that libFuzzer
    /// saves the input as a crash artifact.
    func fuzz(_ data: UnsafePointer<UInt8>?, _ count: Int) -> Int32 {
        let input = data.map { Array(UnsafeBufferPointer(start: $0, count: count)) } ?? []
        do {
            try check(input, .fuzzing)
        } catch {
            fatalError("\(rawValue): \(error.description)")
        }
        return 0
    }
}
