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
    /// Members of every sample in file order, flattened: sample i owns
    /// `layout[layoutStart[i]..<layoutStart[i + 1]]`, offsets relative to the sample's first byte.
    /// Built once at open so that a read sorts and allocates nothing for it.
    private let layout: [RecordView.Member]
    private let layoutStart: [Int]
    /// Samples whose members overlap in the index (damaged index): reading one is an error.
    private let overlapping: Set<Int>

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
        var layout: [RecordView.Member] = []
        var layoutStart: [Int] = []
        var overlapping = Set<Int>()
        layout.reserveCapacity(index.samples.count * 2)
        layoutStart.reserveCapacity(index.samples.count + 1)
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
            layoutStart.append(layout.count)
            var end = 0
            for (ext, r) in e.members.sorted(by: { $0.value[0] < $1.value[0] }) {
                if r[0] - e.offset < end { overlapping.insert(i) }
                layout.append(RecordView.Member(ext: ext, start: r[0] - e.offset, count: r[1]))
                end = r[0] - e.offset + r[1]
            }
        }
        layoutStart.append(layout.count)
        self.layout = layout
        self.layoutStart = layoutStart
        self.overlapping = overlapping
    }

    deinit { close(fd) }

    static func isSafeKey(_ key: String) -> Bool {
        !key.isEmpty && !key.contains("/") && !key.contains("\\") && key != ".." && !key.hasPrefix(".") && !key.utf8.contains(0)
    }

    /// The `i`-th sample of this shard, CRC-checked, its members copied into arrays of their own.
    public func record(_ i: Int) throws -> ShardRecord {
        let buffer = RecordBuffer()
        return try withRecord(i, buffer: buffer) { view in
            var members: [String: [UInt8]] = [:]
            members.reserveCapacity(view.members.count)
            for m in view.members { members[m.ext] = Array(view.bytes(of: m)) }
            return ShardRecord(key: view.key, members: members)
        }
    }

    /// Reads the `i`-th sample into `buffer` with one positional read, checks its CRC32C over the
    /// bytes just read (still in cache), and passes a view of it to `body`. Nothing is allocated
    /// per sample once the buffer has grown to the largest sample: the fast path for loaders that
    /// consume the bytes in place (decode, copy into a batch). The view is valid only inside `body`.
    public func withRecord<R>(_ i: Int, buffer: RecordBuffer, _ body: (RecordView) throws -> R) throws -> R {
        guard i >= 0 && i < index.samples.count else {
            throw TesseraError(.invalidConfig, path: path, "sample \(i) out of range (shard holds \(index.samples.count))")
        }
        let e = index.samples[i]
        guard !overlapping.contains(i) else {
            throw TesseraError(.corrupt, path: path, "sample \(i) (\(e.key)): members overlap in the index: the index is damaged",
                               hint: "restore or re-tile this shard; `tessera verify` lists every damaged shard")
        }
        let base = buffer.reserve(e.length)
        var done = 0
        while done < e.length {
            let n = pread(fd, base + done, e.length - done, off_t(e.offset + done))
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                throw TesseraError(.corrupt, path: path, "sample \(i) (\(e.key)): read failed at byte \(e.offset + done): \(n == 0 ? "unexpected end of file (truncated shard)" : String(cString: strerror(errno)))")
            }
            done += n
        }
        let bytes = UnsafeRawBufferPointer(start: base, count: e.length)
        let crc = CRC32C.checksum(bytes)
        guard crc == e.crc32c else {
            throw TesseraError(.corrupt, path: path, "sample \(i) (\(e.key)) fails its CRC32C check (stored \(hex(e.crc32c)), read \(hex(crc))): the shard is damaged",
                               hint: "restore or re-tile this shard; `tessera verify` lists every damaged shard")
        }
        return try body(RecordView(key: e.key, sample: bytes, members: layout[layoutStart[i]..<layoutStart[i + 1]]))
    }

    private func hex(_ v: UInt32) -> String { String(format: "%08x", v) }
}

/// A sample read in place: its whole byte range (tar headers, data, padding) and where each
/// member's data lies in it. Valid only inside the `withRecord` closure that handed it out.
public struct RecordView {
    public struct Member: Sendable {
        public let ext: String
        /// Offset of the member's data from the sample's first byte.
        public let start: Int
        public let count: Int
    }

    public let key: String
    /// All bytes of the sample, CRC-checked.
    public let sample: UnsafeRawBufferPointer
    /// Members in file order.
    public let members: ArraySlice<Member>

    public func bytes(of member: Member) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: sample[member.start..<(member.start + member.count)])
    }

    /// The data of the member with extension `ext` ("jpg", "json"...), if the sample has one.
    public subscript(ext: String) -> UnsafeRawBufferPointer? {
        for m in members where m.ext == ext { return bytes(of: m) }
        return nil
    }
}

/// Memory that `ShardFile.withRecord` reads samples into, reused from sample to sample; it grows
/// to the largest sample read. One per thread: not safe to share while a read uses it.
public final class RecordBuffer: @unchecked Sendable {
    private var base: UnsafeMutableRawPointer?
    private var capacity = 0

    public init() {}
    deinit { base?.deallocate() }

    func reserve(_ count: Int) -> UnsafeMutableRawPointer {
        if count > capacity || base == nil {
            base?.deallocate()
            capacity = max(count, 1)
            base = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 64)
        }
        return base!
    }
}
