// The libFuzzer entry points of fuzz-topology (why both: Fuzz/Package.swift).
import CFuzzDriver
import FuzzTargets

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    FuzzTargets.topology(UnsafeBufferPointer(start: data, count: size))
    return 0
}

@_cdecl("fuzz_topology_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv) { data, size in fuzzOne(data, size) }
}
