import Foundation

/// In a part's manifest: which part of which collection it is, so that `tessera merge` can put
/// its slides back in the collection's order and refuse parts that do not belong together.
public struct PartitionRecord: Codable, Sendable, Equatable {
    /// Part number, from 0, and the number of parts.
    public var index: Int
    public var count: Int
    /// Positions of this part's `inputs` in the whole collection's order (ascending).
    public var positions: [Int]
    /// Slides in the whole collection, and a hash of their ids, paths and sizes.
    public var collectionSize: Int
    public var collectionHash: String
    /// Hash of the config without the partition: equal for all parts and for a single-machine run.
    public var baseConfigHash: String

    public init(index: Int, count: Int, positions: [Int], collectionSize: Int, collectionHash: String, baseConfigHash: String) {
        self.index = index
        self.count = count
        self.positions = positions
        self.collectionSize = collectionSize
        self.collectionHash = collectionHash
        self.baseConfigHash = baseConfigHash
    }
}

/// In a merged dataset's manifest: what `tessera merge` combined.
public struct MergeRecord: Codable, Sendable, Equatable {
    public var parts: Int
    /// Part directories (under `parts/`) whose slides are in this dataset.
    public var merged: [String]
    /// Part directories left out with `--allow-partial` (missing or unfinished); empty for a full merge.
    public var missing: [String]
    /// Fingerprint of the merged parts' manifests: a rerun with the same parts continues or is a no-op.
    public var partsHash: String

    public init(parts: Int, merged: [String], missing: [String], partsHash: String) {
        self.parts = parts
        self.merged = merged
        self.missing = missing
        self.partsHash = partsHash
    }
}
