import Foundation
import TesseraCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One WebDataset sample: files sharing a key, stored as tar members `KEY.EXT` in the given order.
/// `key` must contain no '.' and no '/'; each `ext` must be non-empty, unique within the sample and contain no '/'.
public struct ShardSample: Sendable {
    public var key: String
    public var files: [(ext: String, bytes: [UInt8])]

    public init(key: String, files: [(ext: String, bytes: [UInt8])]) {
        self.key = key
        self.files = files
    }
}

/// A sample or configuration the writer refuses; nothing was written when this is thrown from `append`.
public struct ShardWriterError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Writes WebDataset tar shards with `.idx` sidecars.
///
/// Guarantees: output bytes depend only on the samples and settings (reproducible); a visible
/// `NAME.tar` is always complete and already has its `NAME.idx` (both are written as `.tmp`, fsynced,
/// and renamed index-first); each completed shard except the last is at least `targetBytes` long and
/// every shard holds at least one sample. After any I/O error the writer removes its temporary files
/// and refuses further use. A completed shard replaces any older file of the same name.
/// Not thread-safe: call from one thread (SHA-256 runs internally on a private serial queue so it
/// overlaps the writes).
public final class ShardWriter {
    public let directory: URL
    public let prefix: String
    public let targetBytes: Int

    private static let bufferCapacity = 1 << 20
    private static let bufferCount = 4
    private static let zeroBlock = [UInt8](repeating: 0, count: TarFormat.blockSize)
    private static let endOfArchiveLength = 2 * TarFormat.blockSize

    private var shardNumber: Int
    private var fd: Int32 = -1
    private var tarTmpPath = ""
    private var idxTmpPath = ""
    /// Logical size of the open shard, including bytes still in `buffer`.
    private var position = 0
    private var entries: [ShardIndexEntry] = []
    /// Output buffers used round-robin: while earlier ones are being hashed, the next is filled.
    /// More than two absorbs jitter between the hasher and the writing thread.
    private let buffers: [UnsafeMutableRawPointer]
    /// Signalled by the hasher when it no longer reads the matching buffer.
    private let bufferFree: [DispatchSemaphore]
    private var current = 0
    private var buffered = 0
    private let hasher = BackgroundHasher()
    private var failure: String?

    public init(directory: URL, prefix: String = "shard", targetBytes: Int, firstShardNumber: Int = 0) throws {
        guard !prefix.isEmpty, !prefix.contains("/"), !prefix.utf8.contains(0) else {
            throw ShardWriterError("invalid shard prefix \"\(prefix)\": must be non-empty and contain no '/'")
        }
        guard targetBytes > 0 else {
            throw ShardWriterError("targetBytes must be positive, got \(targetBytes)")
        }
        guard firstShardNumber >= 0 else {
            throw ShardWriterError("firstShardNumber must be non-negative, got \(firstShardNumber)")
        }
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        self.directory = directory
        self.prefix = prefix
        self.targetBytes = targetBytes
        self.shardNumber = firstShardNumber
        self.buffers = (0..<Self.bufferCount).map { _ in UnsafeMutableRawPointer.allocate(byteCount: Self.bufferCapacity, alignment: 64) }
        // Start at 0 and signal up: libdispatch traps if a semaphore is freed below its initial value,
        // which would happen if the writer is dropped while holding a buffer.
        self.bufferFree = (0..<Self.bufferCount).map { _ in DispatchSemaphore(value: 0) }
        bufferFree.forEach { $0.signal() }
        bufferFree[current].wait()
    }

    private var buffer: UnsafeMutableRawPointer { buffers[current] }

    deinit {
        // An unfinished shard is abandoned rather than published half-written.
        if fd >= 0 {
            posixClose(fd)
            unlink(tarTmpPath)
        }
        hasher.drain()
        buffers.forEach { $0.deallocate() }
    }

    /// Number of the shard the next sample goes into: the open shard's, or the one the next shard will get.
    /// After `finish()` it is one past the last completed shard.
    public var nextShardNumber: Int { shardNumber }

    public static func shardName(prefix: String, number: Int) -> String {
        let digits = String(number)
        return "\(prefix)-\(String(repeating: "0", count: max(0, 6 - digits.count)))\(digits).tar"
    }

    /// Appends a sample to the open shard (opening one if needed). Returns the info of the shard this
    /// append completed: a shard is closed as soon as its finished size (including the 1 KiB
    /// end-of-archive marker) reaches `targetBytes`. Invalid samples throw `ShardWriterError` before
    /// anything is written and leave the writer usable; I/O errors end it and throw the user-facing
    /// `TesseraError` naming the file (`.noSpace` for a full disk or a file-size limit).
    public func append(_ sample: ShardSample) throws -> ShardInfo? {
        try checkUsable()
        let headers = try Self.prepareHeaders(for: sample)

        do {
            if fd < 0 { try openShard() }
            let start = position
            var crc: UInt32 = 0
            var members: [String: [Int]] = [:]
            for (index, file) in sample.files.enumerated() {
                headers[index].withUnsafeBytes { emit($0, crc: &crc) }
                try flushIfFull()
                let dataOffset = position
                try file.bytes.withUnsafeBytes { try emitLarge($0, crc: &crc) }
                let padding = TarFormat.paddingLength(forSize: file.bytes.count)
                Self.zeroBlock.withUnsafeBytes { emit(UnsafeRawBufferPointer(rebasing: $0[0..<padding]), crc: &crc) }
                try flushIfFull()
                members[file.ext] = [dataOffset, file.bytes.count]
            }
            entries.append(ShardIndexEntry(key: sample.key, offset: start, length: position - start,
                                           crc32c: crc, members: members))
            if position + Self.endOfArchiveLength >= targetBytes {
                return try completeShard()
            }
            return nil
        } catch {
            abandon(after: error)
            throw (error as? ShardIOError)?.userError ?? error
        }
    }

    /// Completes the open shard if it holds any sample; returns its info, or nil when nothing was open.
    public func finish() throws -> ShardInfo? {
        try checkUsable()
        guard fd >= 0, !entries.isEmpty else { return nil }
        do {
            return try completeShard()
        } catch {
            abandon(after: error)
            throw (error as? ShardIOError)?.userError ?? error
        }
    }

    // MARK: - Validation

    private func checkUsable() throws {
        if let failure {
            throw ShardWriterError("shard writer is unusable after an earlier error: \(failure)")
        }
    }

    /// Builds every header up front so an invalid sample is rejected before any byte is written.
    private static func prepareHeaders(for sample: ShardSample) throws -> [[UInt8]] {
        let key = sample.key
        guard !key.isEmpty, !key.contains("."), !key.contains("/"), !key.utf8.contains(0) else {
            throw ShardWriterError("invalid sample key \"\(key)\": must be non-empty and contain no '.', '/' or NUL")
        }
        guard !sample.files.isEmpty else {
            throw ShardWriterError("sample \"\(key)\" has no files")
        }
        var seen = Set<String>()
        var headers: [[UInt8]] = []
        headers.reserveCapacity(sample.files.count)
        for file in sample.files {
            let ext = file.ext
            guard !ext.isEmpty, !ext.contains("/"), !ext.utf8.contains(0),
                  !ext.split(separator: ".", omittingEmptySubsequences: false).contains("") else {
                throw ShardWriterError("sample \"\(key)\": invalid extension \"\(ext)\"")
            }
            guard seen.insert(ext).inserted else {
                throw ShardWriterError("sample \"\(key)\": duplicate extension \"\(ext)\"")
            }
            do {
                headers.append(try TarFormat.header(name: "\(key).\(ext)", size: file.bytes.count))
            } catch {
                throw ShardWriterError("sample \"\(key)\": \(error)")
            }
        }
        return headers
    }

    // MARK: - Buffered output

    /// Caller guarantees the bytes fit: at most one block, which `flushIfFull` always leaves free.
    private func emit(_ bytes: UnsafeRawBufferPointer, crc: inout UInt32) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        crc = CRC32C.checksum(bytes, continuing: crc)
        (buffer + buffered).copyMemory(from: base, byteCount: bytes.count)
        buffered += bytes.count
        position += bytes.count
    }

    private func emitLarge(_ bytes: UnsafeRawBufferPointer, crc: inout UInt32) throws {
        guard var base = bytes.baseAddress else { return }
        var remaining = bytes.count
        while remaining > 0 {
            let take = min(remaining, Self.bufferCapacity - buffered)
            emit(UnsafeRawBufferPointer(start: base, count: take), crc: &crc)
            base += take
            remaining -= take
            try flushIfFull()
        }
    }

    /// Keeps at least one block free so headers and padding can always be emitted without a check.
    private func flushIfFull() throws {
        if Self.bufferCapacity - buffered < TarFormat.blockSize { try flush() }
    }

    /// Hands the filled buffer to the hasher, writes it meanwhile, then switches to the other buffer.
    private func flush() throws {
        guard buffered > 0 else { return }
        let chunk = UnsafeRawBufferPointer(start: buffer, count: buffered)
        hasher.update(HashChunk(bytes: chunk), then: bufferFree[current])
        try Self.writeAll(fd: fd, chunk, path: tarTmpPath)
        current = (current + 1) % Self.bufferCount
        bufferFree[current].wait()
        buffered = 0
    }

    private static func writeAll(fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws {
        guard var p = bytes.baseAddress else { return }
        var remaining = bytes.count
        while remaining > 0 {
            let n = write(fd, p, remaining)
            if n < 0 {
                if errno == EINTR { continue }
                throw ShardIOError(path: path, operation: "write", code: errno)
            }
            // write(2) returning 0 for a non-empty request means no progress is possible.
            if n == 0 { throw ShardIOError(path: path, operation: "write", code: EIO) }
            p += n
            remaining -= n
        }
    }

    // MARK: - Shard lifecycle

    private func path(_ name: String) -> String {
        directory.appendingPathComponent(name).path
    }

    private func openShard() throws {
        let name = Self.shardName(prefix: prefix, number: shardNumber)
        tarTmpPath = path(name + ".tmp")
        idxTmpPath = path(ShardIndex.indexName(forShard: name) + ".tmp")
        let newFD = open(tarTmpPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        if newFD < 0 { throw ShardIOError(path: tarTmpPath, operation: "open", code: errno) }
        fd = newFD
        position = 0
        buffered = 0
        hasher.reset()
        entries = []
    }

    private func completeShard() throws -> ShardInfo {
        let name = Self.shardName(prefix: prefix, number: shardNumber)
        let idxName = ShardIndex.indexName(forShard: name)
        let tarPath = path(name)
        let idxPath = path(idxName)

        var ignored: UInt32 = 0
        Self.zeroBlock.withUnsafeBytes { emit($0, crc: &ignored) }
        try flushIfFull()
        Self.zeroBlock.withUnsafeBytes { emit($0, crc: &ignored) }
        try flush()
        if fsync(fd) != 0 { throw ShardIOError(path: tarTmpPath, operation: "fsync", code: errno) }
        let closeResult = close(fd)
        fd = -1
        if closeResult != 0 { throw ShardIOError(path: tarTmpPath, operation: "close", code: errno) }

        let sha256 = hasher.finalizeHex()
        let indexData = try ShardIndex(shard: name, samples: entries).encoded()
        try Self.writeFileDurably(indexData, path: idxTmpPath)

        // Index first: whoever sees NAME.tar can rely on NAME.idx being there.
        if rename(idxTmpPath, idxPath) != 0 {
            throw ShardIOError(path: idxTmpPath, operation: "rename to \(idxName)", code: errno)
        }
        if rename(tarTmpPath, tarPath) != 0 {
            let code = errno
            unlink(idxPath)
            throw ShardIOError(path: tarTmpPath, operation: "rename to \(name)", code: code)
        }
        try Self.syncDirectory(directory.path)

        let info = ShardInfo(name: name, samples: entries.count, bytes: position, sha256: sha256)
        entries = []
        position = 0
        tarTmpPath = ""
        idxTmpPath = ""
        shardNumber += 1
        return info
    }

    private static func writeFileDurably(_ data: Data, path: String) throws {
        let out = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        if out < 0 { throw ShardIOError(path: path, operation: "open", code: errno) }
        do {
            try data.withUnsafeBytes { try writeAll(fd: out, $0, path: path) }
            if fsync(out) != 0 { throw ShardIOError(path: path, operation: "fsync", code: errno) }
        } catch {
            posixClose(out)
            throw error
        }
        if close(out) != 0 { throw ShardIOError(path: path, operation: "close", code: errno) }
    }

    /// Makes the renames themselves durable.
    private static func syncDirectory(_ path: String) throws {
        let dirFD = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dirFD < 0 { throw ShardIOError(path: path, operation: "open directory", code: errno) }
        defer { posixClose(dirFD) }
        if fsync(dirFD) != 0 { throw ShardIOError(path: path, operation: "fsync directory", code: errno) }
    }

    /// Drops the partial shard so a failed run leaves no `.tmp` debris (and frees space after ENOSPC).
    private func abandon(after error: Error) {
        failure = String(describing: error)
        if fd >= 0 {
            posixClose(fd)
            fd = -1
        }
        if !tarTmpPath.isEmpty { unlink(tarTmpPath) }
        if !idxTmpPath.isEmpty { unlink(idxTmpPath) }
        buffered = 0
        entries = []
    }
}

/// Raw bytes handed to the hasher queue. The writer guarantees they stay valid and unmodified until
/// the paired semaphore is signalled, which is what makes sending the pointer sound.
private struct HashChunk: @unchecked Sendable {
    let bytes: UnsafeRawBufferPointer
}

/// Runs SHA-256 over flushed buffers on a serial queue, so hashing (the costliest step) overlaps the
/// CRC, copying and write(2) done on the writer's thread. Updates are applied in submission order.
private final class BackgroundHasher: @unchecked Sendable {
    // `sha` is only touched on `queue`; that confinement is why the unchecked Sendable is sound.
    private let queue = DispatchQueue(label: "tessera.shard-writer.sha256")
    private var sha = SHA256()

    func update(_ chunk: HashChunk, then release: DispatchSemaphore) {
        queue.async {
            self.sha.update(chunk.bytes)
            release.signal()
        }
    }

    /// Waits for all submitted chunks, returns the digest and starts a new message.
    func finalizeHex() -> String {
        queue.sync { SHA256.hex(sha.finalize()) }
    }

    func reset() {
        queue.sync { sha = SHA256() }
    }

    func drain() {
        queue.sync {}
    }
}
