@testable import FuzzInvariants

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ count: Int) -> Int32 { FuzzTarget.includeUsage.fuzz(data, count) }
