import Foundation
import TesseraCore

/// Reads a Tessera dataset (or a plain list of shards): random access to sample i, and
/// epoch-ordered, partitioned, resumable streams of samples.
///
/// Global sample indices follow manifest order: shard by shard, sample by sample. Samples can be
/// restricted to a set of slide ids (a split), which the manifest maps to contiguous ranges.
public final class DatasetReader: @unchecked Sendable {
    public let directory: String?
    public let manifest: DatasetManifest?
    public let shards: [ShardFile]
    /// Global index of each shard's first sample.
    private let starts: [Int]
    public let count: Int
    /// Slide id of each run of samples, in order: (first global index, slide id).
    private let slideRuns: [(start: Int, id: String)]

    /// Opens the dataset in `directory`; refuses an unfinished one unless `allowIncomplete`.
    public convenience init(directory: String, allowIncomplete: Bool = false) throws {
        let manifest = try DatasetManifest.load(directory: directory)
        if manifest.status != .complete && !allowIncomplete {
            throw TesseraError(.mismatch, path: directory, "the dataset is not complete (status \(manifest.status.rawValue))",
                               hint: "rerun the `tessera tile` command that made it to finish it")
        }
        var files: [ShardFile] = []
        for info in manifest.shards {
            let path = directory + "/shards/" + info.name
            guard FileManager.default.fileExists(atPath: path) else {
                throw TesseraError(.unreadable, path: path, "shard listed in the manifest is missing",
                                   hint: "restore it or re-tile; `tessera verify \(directory)` checks every shard")
            }
            let file = try ShardFile(path: path)
            guard file.count == info.samples else {
                throw TesseraError(.corrupt, path: path, "index holds \(file.count) samples but the manifest lists \(info.samples)")
            }
            files.append(file)
        }
        try self.init(directory: directory, manifest: manifest, shards: files)
    }

    /// Reads shards given by path (no manifest: no slide ids).
    public convenience init(shardPaths: [String]) throws {
        try self.init(directory: nil, manifest: nil, shards: try shardPaths.map { try ShardFile(path: $0) })
    }

    private init(directory: String?, manifest: DatasetManifest?, shards: [ShardFile]) throws {
        self.directory = directory
        self.manifest = manifest
        self.shards = shards
        var starts: [Int] = []
        var n = 0
        for s in shards { starts.append(n); n += s.count }
        self.starts = starts
        self.count = n
        var runs: [(Int, String)] = []
        var g = 0
        for slide in manifest?.slides ?? [] where slide.samples > 0 {
            runs.append((g, slide.id))
            g += slide.samples
        }
        // An unfinished run's shards also hold the first samples of the slide it was writing.
        if let m = manifest, m.status == .inProgress, let r = m.resume, r.samplesDone > 0, r.slide < m.inputs.count {
            runs.append((g, m.inputs[r.slide].id))
            g += r.samplesDone
        }
        if manifest != nil && g != n {
            throw TesseraError(.corrupt, path: directory, "the manifest's slides account for \(g) samples but its shards hold \(n)")
        }
        slideRuns = runs
    }

    /// Shard number and position within it of global sample `i`.
    public func locate(_ i: Int) throws -> (shard: Int, sample: Int) {
        guard i >= 0 && i < count else {
            throw TesseraError(.invalidConfig, path: directory, "sample \(i) is out of range (dataset holds \(count))")
        }
        var lo = 0, hi = starts.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if starts[mid] <= i { lo = mid } else { hi = mid - 1 }
        }
        return (lo, i - starts[lo])
    }

    /// Global sample `i`, CRC-checked.
    public func record(_ i: Int) throws -> ShardRecord {
        let (s, j) = try locate(i)
        return try shards[s].record(j)
    }

    /// Global sample `i`, CRC-checked, read into `buffer` and viewed in place (see `ShardFile.withRecord`).
    public func withRecord<R>(_ i: Int, buffer: RecordBuffer, _ body: (RecordView) throws -> R) throws -> R {
        let (s, j) = try locate(i)
        return try shards[s].withRecord(j, buffer: buffer, body)
    }

    /// The slide id of global sample `i`, from the manifest (nil without one).
    public func slideId(of i: Int) -> String? {
        guard !slideRuns.isEmpty else { return nil }
        var lo = 0, hi = slideRuns.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if slideRuns[mid].start <= i { lo = mid } else { hi = mid - 1 }
        }
        return slideRuns[lo].id
    }

    /// Global indices per shard, restricted to the given slides when `slides` is set, and to the
    /// given sample keys when `keys` is set (a tile-counted few-label subset).
    func selection(slides: Set<String>?, keys: Set<String>? = nil) throws -> [[Int]] {
        if let keys {
            let bySlide = try selection(slides: slides)
            return bySlide.enumerated().map { s, indices in
                indices.filter { keys.contains(shards[s].index.samples[$0 - starts[s]].key) }
            }
        }
        guard let slides else { return shards.indices.map { Array(starts[$0]..<(starts[$0] + shards[$0].count)) } }
        guard manifest != nil else {
            throw TesseraError(.invalidConfig, "selecting slides needs a dataset directory with a manifest, not bare shards")
        }
        let known = Set(slideRuns.map(\.id))
        // A split may cover a larger collection than this dataset; naming none of its slides is an error.
        let present = slides.intersection(known).union(slides.intersection(Set(manifest!.slides.map(\.id))))
        if present.isEmpty && !slides.isEmpty {
            throw TesseraError(.invalidConfig, path: directory, "the selection names no slide of this dataset (e.g. \(slides.sorted().prefix(5).joined(separator: ", ")))",
                               hint: "check that the split was made for this dataset; `tessera inspect` lists its slide ids")
        }
        return shards.indices.map { s in (starts[s]..<(starts[s] + shards[s].count)).filter { slides.contains(slideId(of: $0)!) } }
    }

    /// The order of `epoch` for one participant, optionally restricted to some slides (a split) and
    /// to some sample keys (a tile-counted subset).
    public func epoch(_ epoch: Int, order: ReadOrder, slides: Set<String>? = nil, keys: Set<String>? = nil) throws -> EpochOrder {
        try order.validate()
        return EpochOrder(shards: try selection(slides: slides, keys: keys), order: order, epoch: epoch)
    }

    /// A stream of records for one participant, continuing from `state`.
    public func stream(order: ReadOrder, state: ReaderState, slides: Set<String>? = nil, keys: Set<String>? = nil) throws -> RecordStream {
        RecordStream(reader: self, order: try epoch(state.epoch, order: order, slides: slides, keys: keys), state: state)
    }

    /// The key of global sample `i` (from the index; nothing is read from the shard).
    public func key(of i: Int) throws -> String {
        let (s, j) = try locate(i)
        return shards[s].index.samples[j].key
    }
}

/// Records of one participant's epoch, in order; `state` is where it stands (save it with a checkpoint).
/// Use from one thread at a time (it may be handed to another thread).
public struct RecordStream: @unchecked Sendable {
    let reader: DatasetReader
    public let order: EpochOrder
    public private(set) var state: ReaderState
    private var indices: AnyIterator<Int>

    init(reader: DatasetReader, order: EpochOrder, state: ReaderState) {
        self.reader = reader
        self.order = order
        self.state = state
        self.indices = order.makeIterator(from: state.position)
    }

    /// The next (global index, record); throws on a damaged sample, naming shard and sample.
    public mutating func nextRecord() throws -> (index: Int, record: ShardRecord)? {
        guard let i = indices.next() else { return nil }
        let r = try reader.record(i)
        state.position += 1
        return (i, r)
    }

    /// Reads the next sample into `buffer` and passes (global index, view) to `body`; nil at the
    /// end of the epoch. The allocation-free form of `nextRecord()`; the view is valid only inside `body`.
    public mutating func nextRecord<R>(buffer: RecordBuffer, _ body: (Int, RecordView) throws -> R) throws -> R? {
        guard let i = indices.next() else { return nil }
        let r = try reader.withRecord(i, buffer: buffer) { try body(i, $0) }
        state.position += 1
        return r
    }
}
