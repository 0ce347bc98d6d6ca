// libFuzzer target for the shard reader's parsers (tar headers, index JSON, index-vs-file checks,
// CRC-checked record reads). Built and run by scripts/fuzz-shards; not part of the package.
//
// Input layout: the first 4 bytes (little-endian) give the length L of an index JSON that follows;
// the rest is the tar. Every input must end in a thrown error or a clean read: never a crash,
// hang or out-of-bounds access (AddressSanitizer watches).
import Foundation
import TesseraShards

let workDir: String = {
    let dir = NSTemporaryDirectory() + "tessera-fuzz-\(getpid())"
    try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = UnsafeBufferPointer(start: data, count: size)
    guard size >= 4 else { return 0 }
    let declared = Int(bytes[0]) | Int(bytes[1]) << 8 | Int(bytes[2]) << 16 | Int(bytes[3]) << 24
    let idxLength = min(declared, size - 4)
    let idx = Data(bytes[4..<(4 + idxLength)])
    let tar = Data(bytes[(4 + idxLength)...])
    let tarPath = workDir + "/shard-000000.tar"
    try? tar.write(to: URL(fileURLWithPath: tarPath))
    try? idx.write(to: URL(fileURLWithPath: workDir + "/shard-000000.idx"))
    _ = try? TarFormat.members(ofFileAt: URL(fileURLWithPath: tarPath))
    if let shard = try? ShardFile(path: tarPath) {
        for i in 0..<shard.count { _ = try? shard.record(i) }
    }
    return 0
}
