import Foundation
import TesseraCore

/// Summary of one completed shard: its file name, sample count, exact byte size and SHA-256 (lowercase hex)
/// of the whole tar file as it sits on disk.
public struct ShardInfo: Codable, Sendable, Equatable {
    public var name: String
    public var samples: Int
    public var bytes: Int
    public var sha256: String

    public init(name: String, samples: Int, bytes: Int, sha256: String) {
        self.name = name
        self.samples = samples
        self.bytes = bytes
        self.sha256 = sha256
    }
}

/// Where one sample lives inside its shard tar.
///
/// `offset` is the byte offset of the sample's first member header; `length` covers all of the
/// sample's members (headers, data and padding) and `crc32c` is computed over exactly those bytes.
/// `members` maps each extension to `[dataOffset, dataLength]` of that member's data bytes, so a reader
/// can fetch one member with a single ranged read.
public struct ShardIndexEntry: Codable, Sendable, Equatable {
    public var key: String
    public var offset: Int
    public var length: Int
    public var crc32c: UInt32
    public var members: [String: [Int]]

    public init(key: String, offset: Int, length: Int, crc32c: UInt32, members: [String: [Int]]) {
        self.key = key
        self.offset = offset
        self.length = length
        self.crc32c = crc32c
        self.members = members
    }
}

/// The `.idx` sidecar of a shard: samples in tar order. Encoding is deterministic (sorted keys), so
/// identical shards have byte-identical indexes.
public struct ShardIndex: Codable, Sendable, Equatable {
    public static let currentVersion = 1

    public var version: Int
    public var shard: String
    public var samples: [ShardIndexEntry]

    public init(version: Int = ShardIndex.currentVersion, shard: String, samples: [ShardIndexEntry]) {
        self.version = version
        self.shard = shard
        self.samples = samples
    }

    public func encoded() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return try encoder.encode(self)
    }

    public static func decode(_ data: Data) throws -> ShardIndex {
        try JSONDecoder().decode(ShardIndex.self, from: data)
    }

    public static func load(from url: URL) throws -> ShardIndex {
        // POSIX read: Foundation's file readers leak their buffer on some paths (an empty file).
        guard let data = AtomicFile.read(url.path) else {
            throw TesseraError(.unreadable, path: url.path, "cannot read the shard index (missing, not a regular file, or unreadable)",
                               hint: "rerun the command that wrote the dataset; `tessera verify` lists every damaged shard")
        }
        return try decode(data)
    }

    /// `shard-000001.tar` -> `shard-000001.idx`.
    public static func indexName(forShard name: String) -> String {
        (name.hasSuffix(".tar") ? String(name.dropLast(4)) : name) + ".idx"
    }

    public static func indexURL(forShardAt url: URL) -> URL {
        url.deletingLastPathComponent().appendingPathComponent(indexName(forShard: url.lastPathComponent))
    }
}
