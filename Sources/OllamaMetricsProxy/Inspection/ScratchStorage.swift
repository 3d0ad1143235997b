import NIOCore

/// The one policy for the inspection readers' reusable buffers (partial lines, captured values, held-back
/// events): emptied for reuse with their capacity kept, so a stream allocates once, unless a rare large
/// value grew them past `retainedCapacityLimit`, which is then given back, so an idle stream holds no more.
enum ScratchStorage {
    static let retainedCapacityLimit = 64 * 1024
}

extension Array where Element == UInt8 {
    /// Empties the array for reuse, following `ScratchStorage`'s policy.
    mutating func emptyForReuse() {
        if capacity > ScratchStorage.retainedCapacityLimit {
            self = []
        } else if !isEmpty {
            removeAll(keepingCapacity: true)
        }
    }
}

extension ByteBuffer {
    /// Empties the buffer for reuse, following `ScratchStorage`'s policy, without allocating when it is
    /// already empty (clearing the shared empty buffer would allocate).
    mutating func emptyForReuse() {
        if capacity > ScratchStorage.retainedCapacityLimit {
            self = ByteBuffer()
        } else if writerIndex > 0 {
            clear()
        }
    }
}
