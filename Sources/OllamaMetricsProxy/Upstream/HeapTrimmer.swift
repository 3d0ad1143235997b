#if canImport(Glibc)
import Glibc
#endif

/// Gives freed heap memory back to the system. glibc keeps what a burst of requests freed in its arenas
/// (one per event-loop thread), so without this the resident size stays at its peak for good.
enum HeapTrimmer {
    #if canImport(Glibc)
    private typealias MallocTrim = @convention(c) (Int) -> Int32
    /// `malloc_trim` is glibc's (declared in `malloc.h`, which Swift's Glibc module leaves out); looked up
    /// once, and absent on other C libraries, where trimming is simply skipped.
    private static let mallocTrim: MallocTrim? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_trim") else { return nil }
        return unsafeBitCast(symbol, to: MallocTrim.self)
    }()
    #endif

    static func trim() {
        #if canImport(Glibc)
        _ = Self.mallocTrim?(0)
        #endif
    }
}
