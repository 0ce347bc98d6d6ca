// Shard reader: tar headers, index JSON, index-vs-file checks, CRC-checked record reads.
// Input layout: the first 4 bytes (little-endian) give the length L of an index JSON that follows;
// the rest is the tar.
import Foundation
import TesseraShards

func fuzzShards(_ bytes: UnsafeRawBufferPointer) {
    guard bytes.count >= 4 else { return }
    let declared = Int(bytes[0]) | Int(bytes[1]) << 8 | Int(bytes[2]) << 16 | Int(bytes[3]) << 24
    let idxLength = min(declared, bytes.count - 4)
    let tarPath = scratchFile("shard-000000.tar", UnsafeRawBufferPointer(rebasing: bytes[(4 + idxLength)...]))
    _ = scratchFile("shard-000000.idx", UnsafeRawBufferPointer(rebasing: bytes[4..<(4 + idxLength)]))
    _ = try? TarFormat.members(ofFileAt: URL(fileURLWithPath: tarPath))
    if let shard = try? ShardFile(path: tarPath) {
        for i in 0..<shard.count { _ = try? shard.record(i) }
    }
}

/// Dataset manifest (`manifest.json`): what `tessera read`, `verify`, `merge` and a resumed run
/// trust first. The directory holds only the manifest, so an accepted manifest must still fail
/// cleanly on its missing shards.
func fuzzManifest(_ bytes: UnsafeRawBufferPointer) {
    let dir = workDir + "/dataset"
    try? FileManager.default.createDirectory(atPath: dir + "/shards", withIntermediateDirectories: true)
    _ = scratchFile("dataset/manifest.json", bytes)
    _ = try? DatasetManifest.load(directory: dir)
    _ = try? DatasetReader(directory: dir, allowIncomplete: true)
}
