/// Tells whether a JSON value carries generated content (a non-empty text, reasoning or tool call), for
/// `ResponseInspector.hasSeenContent`.
///
/// Values may be cut short (`StreamingObjectReader` hands over only the first bytes of a long one):
/// each probe answers from the bytes it has and says no when those do not tell.
enum ContentProbe {
    /// A string that is not `""`, or an array that is not `[]`, starts at the scanner (not consumed).
    static func nextValueIsNonEmpty(_ scanner: inout JSONScanner) -> Bool {
        let kind = scanner.peekKind()
        guard kind == .string || kind == .array else { return false }
        var index = scanner.position + 1
        if kind == .array {
            while index < scanner.bytes.count, JSONBytes.isWhitespace(scanner.bytes[index]) {
                index += 1
            }
            return index < scanner.bytes.count && scanner.bytes[index] != UInt8(ascii: "]")
        }
        return index < scanner.bytes.count && scanner.bytes[index] != UInt8(ascii: "\"")
    }

    /// `value` is a non-empty string or array.
    static func isNonEmpty(_ value: UnsafeRawBufferPointer) -> Bool {
        var scanner = JSONScanner(value)
        return nextValueIsNonEmpty(&scanner)
    }

    /// An object at the scanner has a non-empty string or array under one of the keys `isContentKey`
    /// accepts. Consumes what it reads.
    static func objectHasContent(_ scanner: inout JSONScanner, isContentKey: (UnsafeRawBufferPointer) -> Bool) -> Bool {
        guard scanner.enterObject() else {
            scanner.skipValue()
            return false
        }
        var found = false
        _ = scanner.forEachMember { scanner, key in
            if !found, isContentKey(key), nextValueIsNonEmpty(&scanner) {
                found = true
            }
            scanner.skipValue()
        }
        return found
    }

    /// A native chat `message`: `content`, `thinking` or `tool_calls`.
    static func nativeMessageHasContent(_ value: UnsafeRawBufferPointer) -> Bool {
        var scanner = JSONScanner(value)
        return objectHasContent(&scanner) { key in
            key.hasBytes("content") || key.hasBytes("thinking") || key.hasBytes("tool_calls")
        }
    }

    /// An OpenAI `choices` array: a chat `delta` or `message` with `content`, `reasoning` or `tool_calls`, or a
    /// completion's `text`.
    static func openAIChoicesHaveContent(_ scanner: inout JSONScanner) -> Bool {
        var found = false
        _ = scanner.forEachElement { scanner in
            guard !found, scanner.enterObject() else {
                scanner.skipValue()
                return
            }
            _ = scanner.forEachMember { scanner, key in
                if found {
                    scanner.skipValue()
                } else if key.hasBytes("delta") || key.hasBytes("message") {
                    found = objectHasContent(&scanner) { key in
                        key.hasBytes("content") || key.hasBytes("reasoning") || key.hasBytes("tool_calls")
                    }
                } else if key.hasBytes("text") {
                    found = nextValueIsNonEmpty(&scanner)
                    scanner.skipValue()
                } else {
                    scanner.skipValue()
                }
            }
        }
        return found
    }

    /// An OpenAI chunk (`data:` of a `/v1/chat/completions` or `/v1/completions` stream) carries content.
    static func openAIChunkHasContent(_ data: UnsafeRawBufferPointer) -> Bool {
        var scanner = JSONScanner(data)
        guard scanner.enterObject() else { return false }
        var found = false
        _ = scanner.forEachMember { scanner, key in
            if !found, key.hasBytes("choices") {
                found = openAIChoicesHaveContent(&scanner)
            } else {
                scanner.skipValue()
            }
        }
        return found
    }
}
