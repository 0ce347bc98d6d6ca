// One libFuzzer binary, several targets: `TESSERA_FUZZ_TARGET` picks which parser the inputs feed
// (scripts/fuzz sets it; each target keeps its own corpus). Every input must end in a thrown error or
// a clean parse: never a crash, a hang, a leak or an out-of-bounds access (AddressSanitizer watches).
import Foundation

enum FuzzTarget: String, CaseIterable {
    case shards, manifest, pipeline, stain, split, labels
}

let selectedTarget: FuzzTarget = {
    let name = ProcessInfo.processInfo.environment["TESSERA_FUZZ_TARGET"] ?? ""
    guard let t = FuzzTarget(rawValue: name) else {
        FileHandle.standardError.write(Data("set TESSERA_FUZZ_TARGET to one of: \(FuzzTarget.allCases.map(\.rawValue).joined(separator: ", "))\n".utf8))
        exit(2)
    }
    return t
}()

/// A private scratch directory per fuzzing process: the parsers under test read files.
let workDir: String = {
    let dir = NSTemporaryDirectory() + "tessera-fuzz-\(getpid())"
    try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}()

/// Writes `bytes` to `name` inside the scratch directory with POSIX calls (no Foundation buffers
/// that could hide a leak of our own) and returns the path.
func scratchFile(_ name: String, _ bytes: UnsafeRawBufferPointer) -> String {
    let path = workDir + "/" + name
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    if fd >= 0 {
        if let base = bytes.baseAddress, bytes.count > 0 { _ = write(fd, base, bytes.count) }
        close(fd)
    }
    return path
}

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<Int32>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Int32

/// SwiftPM links an executable target's entry point under this name; libFuzzer's own `main` would
/// clash with it, so the harness starts libFuzzer's driver itself.
@_cdecl("TesseraFuzz_main")
func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv, fuzzOne)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let data else { return 0 }
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    switch selectedTarget {
    case .shards: fuzzShards(bytes)
    case .manifest: fuzzManifest(bytes)
    case .pipeline: fuzzPipeline(bytes)
    case .stain: fuzzStain(bytes)
    case .split: fuzzSplit(bytes)
    case .labels: fuzzLabels(bytes)
    }
    return 0
}
