import Foundation
import TesseraCore
#if canImport(Glibc)
import Glibc
#endif

/// One sample read back from a shard: its key and the bytes of each member by extension.
public struct ShardRecord: Sendable, Equatable {
    public var key: String
    public var members: [String: [UInt8]]
    public init(key: String, members: [String: [UInt8]]) {
        self.key = key
        self.members = members
    }
}

/// A complete shard opened for reading: the tar open, its index loaded and checked against it.
///
/// Guarantees: every record returned has passed its CRC32C check and lies inside the file;
/// a damaged, truncated or hostile shard gives a `TesseraError` naming the shard and the sample,
/// never a crash and never wrong bytes. Safe to share between threads (positional reads only).
public final class ShardFile: @unchecked Sendable {
    public let path: String
    public let index: ShardIndex
    private let fd: Int32
    private let size: Int

    public var count: Int { index.samples.count }

    public init(path: String) throws {
        self.path = path
        let idxPath = ShardIndex.indexURL(forShardAt: URL(fileURLWithPath: path)).path
        guard let idxData = AtomicFile.read(idxPath) else {
            throw TesseraError(.unreadable, path: idxPath, "index sidecar missing or unreadable",
                               hint: "run `tessera verify` on the dataset; re-tile if the index was lost")
        }
        do { index = try ShardIndex.decode(idxData) } catch {
            throw TesseraError(.corrupt, path: idxPath, "index is not valid JSON for a shard index: \(error)")
        }
        guard index.version <= ShardIndex.currentVersion else {
            throw TesseraError(.unsupportedFormat, path: idxPath, "index version \(index.version) is newer than this reader", hint: "upgrade tessera")
        }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw AtomicFile.ioError(path: path, "cannot open shard") }
        var st = stat()
        guard fstat(fd, &st) == 0 else { close(fd); throw AtomicFile.ioError(path: path, "cannot stat shard") }
        self.fd = fd
        size = Int(st.st_size)
        // Check the index against the file once, so that reads need only the CRC.
        for (i, e) in index.samples.enumerated() {
            guard e.offset >= 0, e.length > 0, e.offset <= size, e.length <= size - e.offset else {
                throw TesseraError(.corrupt, path: path, "sample \(i) (\(e.key)) lies outside the file (\(size) bytes): the shard is truncated",
                                   hint: "re-tile or restore this shard; `tessera verify` lists every damaged shard")
            }
            guard Self.isSafeKey(e.key) else {
                throw TesseraError(.corrupt, path: path, "sample \(i) has an unsafe key \"\(e.key)\" (path separators or '..')")
            }
            for (ext, r) in e.members {
                guard r.count == 2, r[0] >= e.offset, r[1] >= 0, r[0] <= e.offset + e.length, r[1] <= e.offset + e.length - r[0],
                      !ext.isEmpty, !ext.contains("/") else {
                    throw TesseraError(.corrupt, path: path, "sample \(i) (\(e.key)): member .\(ext) has an invalid range in the index")
                }
            }
        }
    }

    deinit { close(fd) }

    static func isSafeKey(_ key: String) -> Bool {
        !key.isEmpty && !key.contains("/") && !key.contains("\\") && key != ".." && !key.hasPrefix(".") && !key.utf8.contains(0)
    }

    /// The `i`-th sample of this shard, CRC-checked.
    public func record(_ i: Int) throws -> ShardRecord {
        guard i >= 0 && i < index.samples.count else {
            throw TesseraError(.invalidConfig, path: path, "sample \(i) out of range (shard holds \(index.samples.count))")
        }
        let e = index.samples[i]
        // Each member's data is read straight into its own array and the bytes between members
        // (tar headers, padding) into a scratch buffer, the CRC running over the pieces in file
        // order: one copy per byte. pread also avoids a page fault per 4 KB of a memory map.
        let ranges = e.members.sorted { $0.value[0] < $1.value[0] }
        var crc: UInt32 = 0
        var cursor = e.offset
        var members: [String: [UInt8]] = [:]
        members.reserveCapacity(ranges.count)
        var scratch = [UInt8](repeating: 0, count: 2048)
        func readGap(upTo end: Int) throws {
            while cursor < end {
                let n = min(end - cursor, scratch.count)
                try readFully(into: &scratch, count: n, at: cursor, sample: i, key: e.key)
                crc = scratch.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[..<n]), continuing: crc) }
                cursor += n
            }
        }
        for (ext, r) in ranges {
            try readGap(upTo: r[0])
            var data = [UInt8](repeating: 0, count: r[1])
            try readFully(into: &data, count: r[1], at: r[0], sample: i, key: e.key)
            crc = data.withUnsafeBytes { CRC32C.checksum($0, continuing: crc) }
            cursor = r[0] + r[1]
            members[ext] = data
        }
        try readGap(upTo: e.offset + e.length)
        guard crc == e.crc32c else {
            throw TesseraError(.corrupt, path: path, "sample \(i) (\(e.key)) fails its CRC32C check (stored \(hex(e.crc32c)), read \(hex(crc))): the shard is damaged",
                               hint: "restore or re-tile this shard; `tessera verify` lists every damaged shard")
        }
        return ShardRecord(key: e.key, members: members)
    }

    private func readFully(into buffer: inout [UInt8], count: Int, at offset: Int, sample i: Int, key: String) throws {
        var done = 0
        while done < count {
            let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + done, count - done, off_t(offset + done)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                throw TesseraError(.corrupt, path: path, "sample \(i) (\(key)): read failed at byte \(offset + done): \(n == 0 ? "unexpected end of file (truncated shard)" : String(cString: strerror(errno)))")
            }
            done += n
        }
    }

    private func hex(_ v: UInt32) -> String { String(format: "%08x", v) }
}
