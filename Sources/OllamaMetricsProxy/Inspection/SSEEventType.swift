/// The type of a server-sent event, by which the compatibility readers decide whether an event is worth
/// parsing at all.
enum SSEEventType {
    /// The event's `event:` field, or, when it had none, the `"type"` member of its JSON data (both
    /// Anthropic and Responses payloads repeat their type there).
    static func name(_ type: UnsafeRawBufferPointer, data: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        guard type.isEmpty else { return type }
        var scanner = JSONScanner(data)
        guard scanner.enterObject() else { return type }
        var isFirst = true
        while let key = scanner.nextKey(isFirst: &isFirst) {
            guard key.hasBytes("type") else {
                scanner.skipValue()
                continue
            }
            guard let raw = scanner.readRawString(), !raw.hasEscapes else { return type }
            return UnsafeRawBufferPointer(rebasing: data[raw.contents])
        }
        return type
    }
}
