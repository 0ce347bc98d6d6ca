import Foundation
import TesseraCore
import TesseraShards

/// Reads one part's samples in its manifest order (shard by shard), one at a time, CRC-checked,
/// as `ShardSample`s that a `ShardWriter` turns back into the same tar bytes.
///
/// Holds at most one open shard; `close()` releases it so that a merge of many parts keeps few
/// file descriptors (`DatasetMerge` closes the streams it is not reading).
final class PartSampleStream {
    let directory: String
    private let shards: [ShardInfo]
    private var shard = 0
    private var sample = 0
    private var file: ShardFile?
    private let buffer = RecordBuffer()

    init(directory: String, manifest: DatasetManifest) {
        self.directory = directory
        self.shards = manifest.shards
    }

    /// Moves past `n` samples without reading them (resuming a merge).
    func skip(_ n: Int) throws {
        var left = n
        while left > 0 {
            guard shard < shards.count else { throw exhausted() }
            let here = min(left, shards[shard].samples - sample)
            sample += here
            left -= here
            if sample == shards[shard].samples { advanceShard() }
        }
    }

    /// The next sample, which must belong to `slideId` (keys are `<slide id>_<x>_<y>`).
    func next(slideId: String) throws -> ShardSample {
        while shard < shards.count && sample >= shards[shard].samples { advanceShard() }
        guard shard < shards.count else { throw exhausted() }
        if file == nil {
            let path = directory + "/shards/" + shards[shard].name
            let f = try ShardFile(path: path)
            guard f.count == shards[shard].samples else {
                throw TesseraError(.corrupt, path: path, "index holds \(f.count) samples but the part's manifest lists \(shards[shard].samples)")
            }
            file = f
        }
        let s = try file!.withRecord(sample, buffer: buffer) { view in
            ShardSample(key: view.key, files: view.members.map { ($0.ext, Array(view.bytes(of: $0))) })
        }
        guard s.key.hasPrefix(slideId + "_") else {
            throw TesseraError(.corrupt, path: file!.path, "sample \(sample) is \(s.key), expected a tile of \(slideId): the part's shards do not match its manifest",
                               hint: "run `tessera verify` on the part; rerun its array task into a fresh part directory")
        }
        sample += 1
        if sample == shards[shard].samples { advanceShard() }
        return s
    }

    func close() { file = nil }

    private func advanceShard() {
        shard += 1
        sample = 0
        file = nil
    }

    private func exhausted() -> TesseraError {
        TesseraError(.corrupt, path: directory, "the part's shards hold fewer samples than its slides account for")
    }
}
