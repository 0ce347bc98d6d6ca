import Foundation
import TesseraCore

/// Independent re-check of a written shard against what the writer reported.
///
/// Reads the tar and its `.idx` from disk and compares them with `ShardInfo`; every problem found is
/// reported as a readable sentence. Damaged or hostile files produce problems, never crashes.
public enum ShardVerifier {
    /// Re-reads the shard tar and its index; checks sha256 against expected, sample count, every sample's
    /// CRC32C, that tar members match the index, that member names are safe. Returns a list of
    /// human-readable problems (empty = OK).
    public static func verify(shardAt url: URL, expected: ShardInfo) -> [String] {
        var problems: [String] = []
        let path = url.path
        let name = url.lastPathComponent

        guard FileManager.default.fileExists(atPath: path) else {
            return ["\(path): shard file is missing"]
        }
        if name != expected.name {
            problems.append("\(path): file name \"\(name)\" differs from expected shard name \"\(expected.name)\"")
        }

        let file: ReadOnlyFile
        do {
            file = try ReadOnlyFile(path: path)
        } catch {
            return problems + ["\(error)"]
        }
        defer { file.close() }
        let fileSize = file.size
        if fileSize != expected.bytes {
            problems.append("\(path): size is \(fileSize) bytes, expected \(expected.bytes) (truncated or extended)")
        }

        do {
            let digest = try SHA256.hexDigest(ofFileAt: path)
            if digest != expected.sha256 {
                problems.append("\(path): SHA-256 mismatch: file has \(digest), expected \(expected.sha256)")
            }
        } catch {
            problems.append("\(error)")
        }

        var members: [TarFormat.Member]?
        do {
            members = try TarFormat.members(ofFileAt: url)
        } catch {
            problems.append("tar structure invalid: \(error)")
        }

        let indexURL = ShardIndex.indexURL(forShardAt: url)
        let index: ShardIndex
        do {
            index = try ShardIndex.load(from: indexURL)
        } catch {
            if !FileManager.default.fileExists(atPath: indexURL.path) {
                problems.append("\(indexURL.path): index file is missing")
            } else {
                problems.append("\(indexURL.path): index cannot be read: \(error)")
            }
            return problems
        }

        if index.version != ShardIndex.currentVersion {
            problems.append("\(indexURL.path): unsupported index version \(index.version)")
        }
        if index.shard != expected.name {
            problems.append("\(indexURL.path): index names shard \"\(index.shard)\", expected \"\(expected.name)\"")
        }
        if index.samples.count != expected.samples {
            problems.append("\(indexURL.path): index lists \(index.samples.count) samples, expected \(expected.samples)")
        }

        problems += checkLayout(index: index, fileSize: fileSize, indexPath: indexURL.path)
        if let members {
            problems += checkMembers(members, against: index, path: path)
        }
        problems += checkCRCs(index: index, file: file)
        return problems
    }

    private static func describe(_ entry: ShardIndexEntry, _ i: Int) -> String {
        "sample #\(i) \"\(entry.key)\""
    }

    /// Samples must tile the archive from byte 0 up to the end-of-archive marker, in order, with unique keys.
    private static func checkLayout(index: ShardIndex, fileSize: Int, indexPath: String) -> [String] {
        var problems: [String] = []
        var expectedOffset = 0
        var keys = Set<String>()
        for (i, entry) in index.samples.enumerated() {
            if entry.key.isEmpty || entry.key.contains(".") || entry.key.contains("/") {
                problems.append("\(indexPath): \(describe(entry, i)) has an invalid key")
            }
            if !keys.insert(entry.key).inserted {
                problems.append("\(indexPath): \(describe(entry, i)) duplicates an earlier key")
            }
            if entry.offset != expectedOffset {
                problems.append("\(indexPath): \(describe(entry, i)) starts at \(entry.offset), expected \(expectedOffset)")
            }
            if entry.length <= 0 || entry.length % TarFormat.blockSize != 0 {
                problems.append("\(indexPath): \(describe(entry, i)) has invalid length \(entry.length)")
            }
            let (end, overflow) = entry.offset.addingReportingOverflow(entry.length)
            expectedOffset = overflow ? Int.max : end
        }
        if !index.samples.isEmpty, expectedOffset != fileSize - 2 * TarFormat.blockSize {
            problems.append("\(indexPath): samples end at \(expectedOffset), but the archive's end marker is expected at \(max(0, fileSize - 2 * TarFormat.blockSize))")
        }
        return problems
    }

    /// Every tar member must belong to exactly one index entry, with matching name, data offset and size.
    private static func checkMembers(_ members: [TarFormat.Member], against index: ShardIndex, path: String) -> [String] {
        var problems: [String] = []
        var byDataOffset: [Int: TarFormat.Member] = [:]
        for member in members {
            byDataOffset[member.dataOffset] = member
            if member.typeflag != UInt8(ascii: "0") {
                problems.append("\(path): member \"\(member.name)\" is not a regular file")
            }
        }
        var claimed = Set<Int>()
        for (i, entry) in index.samples.enumerated() {
            for (ext, range) in entry.members.sorted(by: { $0.key < $1.key }) {
                let memberName = "\(entry.key).\(ext)"
                guard range.count == 2 else {
                    problems.append("\(path): index entry for \(memberName) must be [dataOffset, length], got \(range)")
                    continue
                }
                let (offset, length) = (range[0], range[1])
                guard let member = byDataOffset[offset] else {
                    problems.append("\(path): \(describe(entry, i)): no tar member has data at offset \(offset) for \(memberName)")
                    continue
                }
                claimed.insert(offset)
                if member.name != memberName {
                    problems.append("\(path): member at data offset \(offset) is named \"\(member.name)\", index says \"\(memberName)\"")
                }
                if member.size != length {
                    problems.append("\(path): member \"\(memberName)\" holds \(member.size) bytes, index says \(length)")
                }
                // offset is a real member's data offset here, but length and the entry range come from
                // the untrusted index, so guard the arithmetic.
                let (end, overflow) = entry.offset.addingReportingOverflow(entry.length)
                let (memberEnd, memberOverflow) = offset.addingReportingOverflow(length)
                if offset - TarFormat.blockSize < entry.offset || overflow || memberOverflow || memberEnd > end {
                    problems.append("\(path): member \"\(memberName)\" lies outside its sample's byte range")
                }
            }
        }
        for member in members where !claimed.contains(member.dataOffset) {
            problems.append("\(path): tar member \"\(member.name)\" at data offset \(member.dataOffset) is not in the index")
        }
        return problems
    }

    private static func checkCRCs(index: ShardIndex, file: ReadOnlyFile) -> [String] {
        var problems: [String] = []
        let chunk = 1 << 20
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: chunk, alignment: 64)
        defer { buffer.deallocate() }

        for (i, entry) in index.samples.enumerated() {
            guard entry.offset >= 0, entry.length >= 0,
                  entry.offset <= file.size, entry.length <= file.size - entry.offset else {
                problems.append("\(file.path): \(describe(entry, i)) range \(entry.offset)+\(entry.length) extends past the end of the \(file.size)-byte file")
                continue
            }
            var crc: UInt32 = 0
            var done = 0
            do {
                while done < entry.length {
                    let take = min(chunk, entry.length - done)
                    try file.read(into: buffer, count: take, at: entry.offset + done)
                    crc = CRC32C.checksum(UnsafeRawBufferPointer(start: buffer, count: take), continuing: crc)
                    done += take
                }
            } catch {
                problems.append("\(describe(entry, i)): cannot read bytes for CRC check: \(error)")
                continue
            }
            if crc != entry.crc32c {
                problems.append("\(file.path): \(describe(entry, i)) CRC32C mismatch: stored \(hex32(entry.crc32c)), computed \(hex32(crc))")
            }
        }
        return problems
    }

    private static func hex32(_ v: UInt32) -> String {
        let s = String(v, radix: 16)
        return "0x" + String(repeating: "0", count: 8 - s.count) + s
    }
}
