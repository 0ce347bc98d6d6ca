import Foundation
import XCTest
import TesseraCore
@testable import TesseraShards
#if canImport(Glibc)
import Glibc
#endif

final class ShardWriterTests: XCTestCase {
    private var tempDir: URL!
    private let target = 64 * 1024

    override func setUpWithError() throws {
        tempDir = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-shards-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tempDir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: tempDir)
    }

    // MARK: Helpers

    private func makeSamples(count: Int = 50, seed: UInt64 = 1) -> [ShardSample] {
        var rng = SplitMix64(seed: seed)
        return (0..<count).map { i in
            let imageSize = Int.random(in: 1000...6000, using: &rng)
            let image = (0..<imageSize).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let label = Array("\(i % 7)".utf8)
            let meta = Array("{\"index\":\(i)}".utf8)
            return ShardSample(key: String(format: "sample%06d", i),
                               files: [(ext: "jpg", bytes: image), (ext: "cls", bytes: label), (ext: "json", bytes: meta)])
        }
    }

    @discardableResult
    private func writeShards(_ samples: [ShardSample], to dir: URL, target: Int? = nil) throws -> [ShardInfo] {
        let writer = try ShardWriter(directory: dir, prefix: "train", targetBytes: target ?? self.target)
        var infos: [ShardInfo] = []
        for sample in samples {
            if let info = try writer.append(sample) { infos.append(info) }
        }
        if let info = try writer.finish() { infos.append(info) }
        XCTAssertEqual(writer.nextShardNumber, infos.count)
        XCTAssertNil(try writer.finish(), "a second finish has nothing to complete")
        return infos
    }

    private struct Run {
        var status: Int32
        var stdout: Data
        var stderr: String
        var text: String { String(decoding: stdout, as: UTF8.self) }
    }

    private func run(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) throws -> Run {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        // stderr goes to a file so a chatty child cannot block on a second full pipe.
        let errURL = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-stderr-\(UUID().uuidString).txt")
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: errURL) }
        let errHandle = try FileHandle(forWritingTo: errURL)
        let out = Pipe()
        process.standardOutput = out
        process.standardError = errHandle
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        try errHandle.close()
        let stderr = String(decoding: try Data(contentsOf: errURL), as: UTF8.self)
        return Run(status: process.terminationStatus, stdout: stdout, stderr: stderr)
    }

    private func findPython() throws -> String {
        for candidate in ["/usr/bin/python3", "/usr/local/bin/python3"] where FileManager.default.isExecutableFile(atPath: candidate) {
            return candidate
        }
        let which = try run("/usr/bin/env", ["sh", "-c", "command -v python3"])
        let path = which.text.trimmingCharacters(in: .whitespacesAndNewlines)
        if which.status != 0 || path.isEmpty { throw XCTSkip("python3 not available") }
        return path
    }

    private func url(_ name: String, in dir: URL? = nil) -> URL {
        (dir ?? tempDir).appendingPathComponent(name)
    }

    private func bytes(of url: URL) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: url))
    }

    // MARK: Layout

    func testShardSizesCountsAndFiles() throws {
        let samples = makeSamples()
        let infos = try writeShards(samples, to: tempDir)

        XCTAssertGreaterThanOrEqual(infos.count, 3, "50 samples of ~5 KB at a 64 KiB target should make several shards")
        XCTAssertEqual(infos.map(\.samples).reduce(0, +), samples.count)
        XCTAssertEqual(infos.map(\.name), (0..<infos.count).map { ShardWriter.shardName(prefix: "train", number: $0) })
        for (i, info) in infos.enumerated() {
            XCTAssertGreaterThanOrEqual(info.samples, 1)
            if i < infos.count - 1 {
                XCTAssertGreaterThanOrEqual(info.bytes, target, "\(info.name) completed below target")
            }
            let attributes = try FileManager.default.attributesOfItem(atPath: url(info.name).path)
            XCTAssertEqual((attributes[.size] as? NSNumber)?.intValue, info.bytes)
            XCTAssertEqual(info.bytes % 512, 0)
            XCTAssertTrue(FileManager.default.fileExists(atPath: url(ShardIndex.indexName(forShard: info.name)).path))
        }

        let listing = try FileManager.default.contentsOfDirectory(atPath: tempDir.path).sorted()
        XCTAssertEqual(listing, infos.flatMap { [ShardIndex.indexName(forShard: $0.name), $0.name] }.sorted())
        XCTAssertFalse(listing.contains { $0.hasSuffix(".tmp") }, "temporary files left behind: \(listing)")
    }

    func testShardNameFormat() {
        XCTAssertEqual(ShardWriter.shardName(prefix: "shard", number: 0), "shard-000000.tar")
        XCTAssertEqual(ShardWriter.shardName(prefix: "val", number: 42), "val-000042.tar")
        XCTAssertEqual(ShardWriter.shardName(prefix: "x", number: 1_234_567), "x-1234567.tar")
    }

    func testOpenShardIsOnlyVisibleAsTmpUntilCompleted() throws {
        let writer = try ShardWriter(directory: tempDir, prefix: "p", targetBytes: 1 << 30, firstShardNumber: 7)
        XCTAssertNil(try writer.append(ShardSample(key: "a", files: [(ext: "txt", bytes: Array("hello".utf8))])))
        XCTAssertEqual(writer.nextShardNumber, 7)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: tempDir.path), ["p-000007.tar.tmp"])

        let info = try XCTUnwrap(try writer.finish())
        XCTAssertEqual(info.name, "p-000007.tar")
        XCTAssertEqual(info.samples, 1)
        XCTAssertEqual(info.bytes, 512 + 512 + 1024, "header + padded data + end marker")
        XCTAssertEqual(writer.nextShardNumber, 8)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: tempDir.path).sorted(), ["p-000007.idx", "p-000007.tar"])
    }

    func testSampleLargerThanTargetFormsItsOwnShard() throws {
        var rng = SplitMix64(seed: 5)
        let big = (0..<(3 * 1024 * 1024 + 17)).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let samples = [
            ShardSample(key: "small", files: [(ext: "bin", bytes: [1, 2, 3])]),
            ShardSample(key: "big", files: [(ext: "bin", bytes: big), (ext: "txt", bytes: Array("x".utf8))]),
        ]
        let infos = try writeShards(samples, to: tempDir, target: 1 << 20)
        XCTAssertEqual(infos.map(\.samples), [2])
        XCTAssertTrue(ShardVerifier.verify(shardAt: url(infos[0].name), expected: infos[0]).isEmpty)

        // The multi-buffer member must come back intact from its indexed range.
        let index = try ShardIndex.load(from: url(ShardIndex.indexName(forShard: infos[0].name)))
        let range = try XCTUnwrap(index.samples[1].members["bin"])
        let file = try bytes(of: url(infos[0].name))
        XCTAssertEqual(Array(file[range[0]..<(range[0] + range[1])]), big)
    }

    // MARK: Interoperability

    func testGNUTarListsExpectedNames() throws {
        let samples = makeSamples()
        let infos = try writeShards(samples, to: tempDir)
        var listed: [String] = []
        for info in infos {
            let result = try run("/bin/tar", ["tf", url(info.name).path])
            XCTAssertEqual(result.status, 0, result.stderr)
            XCTAssertEqual(result.stderr, "", "tar should not warn")
            listed += result.text.split(separator: "\n").map(String.init)

            let verbose = try run("/bin/tar", ["--full-time", "-tvf", url(info.name).path], environment: ["TZ": "UTC"])
            XCTAssertEqual(verbose.status, 0, verbose.stderr)
            for line in verbose.text.split(separator: "\n") {
                XCTAssertTrue(line.hasPrefix("-rw-r--r-- 0/0"), "unexpected tar tvf line: \(line)")
                XCTAssertTrue(line.contains(" 1970-01-01 00:00:00 "), "mtime should be 0: \(line)")
            }
        }
        XCTAssertEqual(listed, samples.flatMap { s in s.files.map { "\(s.key).\($0.ext)" } })
    }

    func testPythonTarfileReadsWrittenBytes() throws {
        let python = try findPython()
        let samples = makeSamples()
        let infos = try writeShards(samples, to: tempDir)
        let script = """
        import hashlib, json, sys, tarfile
        out = []
        for path in sys.argv[1:]:
            with tarfile.open(path, mode="r:", errorlevel=2) as tar:
                for m in tar.getmembers():
                    data = tar.extractfile(m).read()
                    out.append([m.name, hashlib.sha256(data).hexdigest(), len(data), m.mode, m.uid, m.gid,
                                m.mtime, m.uname, m.gname, m.isreg()])
        print(json.dumps(out))
        """
        let result = try run(python, ["-c", script] + infos.map { url($0.name).path })
        XCTAssertEqual(result.status, 0, result.stderr)
        let rows = try XCTUnwrap(JSONSerialization.jsonObject(with: result.stdout) as? [[Any]])

        let expected = samples.flatMap { s in s.files.map { ("\(s.key).\($0.ext)", $0.bytes) } }
        XCTAssertEqual(rows.count, expected.count)
        for (row, (name, data)) in zip(rows, expected) {
            XCTAssertEqual(row[0] as? String, name)
            XCTAssertEqual(row[1] as? String, SHA256.hexDigest(of: data), "bytes of \(name) differ")
            XCTAssertEqual(row[2] as? Int, data.count)
            XCTAssertEqual(row[3] as? Int, 0o644)
            XCTAssertEqual(row[4] as? Int, 0)
            XCTAssertEqual(row[5] as? Int, 0)
            XCTAssertEqual(row[6] as? Int, 0)
            XCTAssertEqual(row[7] as? String, "")
            XCTAssertEqual(row[8] as? String, "")
            XCTAssertEqual(row[9] as? Bool, true)
        }
    }

    func testReportedSHA256MatchesSha256sum() throws {
        let infos = try writeShards(makeSamples(), to: tempDir)
        for info in infos {
            let result = try run("/usr/bin/sha256sum", [url(info.name).path])
            XCTAssertEqual(result.status, 0)
            XCTAssertEqual(result.text.split(separator: " ").first.map(String.init), info.sha256)
            XCTAssertEqual(info.sha256.count, 64)
        }
    }

    func testIndexOffsetsAndCRCsMatchFileContents() throws {
        let samples = makeSamples()
        let infos = try writeShards(samples, to: tempDir)
        var sampleIterator = samples.makeIterator()
        for info in infos {
            let file = try bytes(of: url(info.name))
            let index = try ShardIndex.load(from: url(ShardIndex.indexName(forShard: info.name)))
            XCTAssertEqual(index.version, 1)
            XCTAssertEqual(index.shard, info.name)
            XCTAssertEqual(index.samples.count, info.samples)
            XCTAssertEqual(index.samples.first?.offset, 0)
            var expectedOffset = 0
            for entry in index.samples {
                let sample = try XCTUnwrap(sampleIterator.next())
                XCTAssertEqual(entry.key, sample.key)
                XCTAssertEqual(entry.offset, expectedOffset, "samples must be contiguous")
                let sampleBytes = Array(file[entry.offset..<(entry.offset + entry.length)])
                XCTAssertEqual(CRC32C.checksum(sampleBytes), entry.crc32c, "CRC of \(entry.key)")
                XCTAssertEqual(Set(entry.members.keys), Set(sample.files.map(\.ext)))
                for member in sample.files {
                    let range = try XCTUnwrap(entry.members[member.ext])
                    XCTAssertEqual(range.count, 2)
                    XCTAssertEqual(Array(file[range[0]..<(range[0] + range[1])]), member.bytes)
                }
                expectedOffset += entry.length
            }
            XCTAssertEqual(expectedOffset + 1024, file.count, "only the end marker follows the last sample")
            XCTAssertEqual(Array(file[expectedOffset...]), [UInt8](repeating: 0, count: 1024))
        }
        XCTAssertNil(sampleIterator.next(), "every sample is indexed")
    }

    func testOutputIsByteIdenticalAcrossRuns() throws {
        let samples = makeSamples()
        let dirA = url("a"), dirB = url("b")
        let infosA = try writeShards(samples, to: dirA)
        let infosB = try writeShards(samples, to: dirB)
        XCTAssertEqual(infosA, infosB)
        for info in infosA {
            XCTAssertEqual(try bytes(of: url(info.name, in: dirA)), try bytes(of: url(info.name, in: dirB)))
            let idx = ShardIndex.indexName(forShard: info.name)
            XCTAssertEqual(try bytes(of: url(idx, in: dirA)), try bytes(of: url(idx, in: dirB)))
        }
    }

    // MARK: Verifier

    func testVerifierAcceptsGoodShards() throws {
        let infos = try writeShards(makeSamples(), to: tempDir)
        for info in infos {
            XCTAssertEqual(ShardVerifier.verify(shardAt: url(info.name), expected: info), [])
        }
    }

    func testVerifierReportsTruncatedShard() throws {
        let infos = try writeShards(makeSamples(), to: tempDir)
        let info = infos[0]
        let handle = try FileHandle(forWritingTo: url(info.name))
        try handle.truncate(atOffset: UInt64(info.bytes - 3000))
        try handle.close()

        let problems = ShardVerifier.verify(shardAt: url(info.name), expected: info)
        let text = problems.joined(separator: "\n")
        XCTAssertTrue(text.contains("SHA-256 mismatch"), text)
        XCTAssertTrue(text.contains("size is \(info.bytes - 3000) bytes"), text)
        XCTAssertTrue(text.contains("truncated"), text)
        XCTAssertTrue(text.contains("extends past the end"), "the last sample's range is cut off: \(text)")
    }

    func testVerifierNamesSampleWithFlippedByte() throws {
        let infos = try writeShards(makeSamples(), to: tempDir)
        let info = infos[1]
        let index = try ShardIndex.load(from: url(ShardIndex.indexName(forShard: info.name)))
        let victim = 2
        let entry = index.samples[victim]
        let position = try XCTUnwrap(entry.members["jpg"])[0] + 100

        var file = try bytes(of: url(info.name))
        file[position] ^= 0x01
        try Data(file).write(to: url(info.name))

        let problems = ShardVerifier.verify(shardAt: url(info.name), expected: info)
        let text = problems.joined(separator: "\n")
        XCTAssertTrue(text.contains("SHA-256 mismatch"), text)
        let crcProblems = problems.filter { $0.contains("CRC32C mismatch") }
        XCTAssertEqual(crcProblems.count, 1, text)
        XCTAssertTrue(crcProblems.first?.contains("sample #\(victim) \"\(entry.key)\"") ?? false, text)
        XCTAssertFalse(text.contains("tar structure invalid"), "a data byte flip keeps the tar structure intact: \(text)")
    }

    func testVerifierReportsFlippedHeaderByte() throws {
        let infos = try writeShards(makeSamples(), to: tempDir)
        let info = infos[0]
        let index = try ShardIndex.load(from: url(ShardIndex.indexName(forShard: info.name)))
        let headerOffset = index.samples[1].offset
        var file = try bytes(of: url(info.name))
        file[headerOffset + 3] ^= 0x20
        try Data(file).write(to: url(info.name))

        let text = ShardVerifier.verify(shardAt: url(info.name), expected: info).joined(separator: "\n")
        XCTAssertTrue(text.contains("header checksum mismatch"), text)
        XCTAssertTrue(text.contains("at byte offset \(headerOffset)"), text)
        XCTAssertTrue(text.contains("sample #1 \"\(index.samples[1].key)\" CRC32C mismatch"), text)
    }

    func testVerifierReportsMissingIndex() throws {
        let infos = try writeShards(makeSamples(), to: tempDir)
        let info = infos[0]
        try FileManager.default.removeItem(at: url(ShardIndex.indexName(forShard: info.name)))
        let text = ShardVerifier.verify(shardAt: url(info.name), expected: info).joined(separator: "\n")
        XCTAssertTrue(text.contains("index file is missing"), text)
    }

    func testVerifierReportsMissingShard() throws {
        let info = ShardInfo(name: "nope-000000.tar", samples: 1, bytes: 2048, sha256: String(repeating: "0", count: 64))
        let problems = ShardVerifier.verify(shardAt: url(info.name), expected: info)
        XCTAssertEqual(problems.count, 1)
        XCTAssertTrue(problems[0].contains("shard file is missing"), problems[0])
    }

    func testVerifierReportsSampleCountMismatch() throws {
        let infos = try writeShards(makeSamples(), to: tempDir)
        var info = infos[0]
        info.samples += 1
        let text = ShardVerifier.verify(shardAt: url(info.name), expected: info).joined(separator: "\n")
        XCTAssertTrue(text.contains("index lists \(infos[0].samples) samples, expected \(infos[0].samples + 1)"), text)

        // An index that lost an entry disagrees with both the expectation and the tar contents.
        let idxURL = url(ShardIndex.indexName(forShard: info.name))
        var index = try ShardIndex.load(from: idxURL)
        let dropped = index.samples.removeLast()
        try index.encoded().write(to: idxURL)
        let problems = ShardVerifier.verify(shardAt: url(info.name), expected: infos[0])
        let text2 = problems.joined(separator: "\n")
        XCTAssertTrue(text2.contains("index lists \(infos[0].samples - 1) samples, expected \(infos[0].samples)"), text2)
        XCTAssertTrue(text2.contains("tar member \"\(dropped.key).jpg\""), text2)
    }

    func testVerifierSurvivesGarbageIndex() throws {
        let infos = try writeShards(makeSamples(), to: tempDir)
        let info = infos[0]
        let idxURL = url(ShardIndex.indexName(forShard: info.name))

        try Data("{not json".utf8).write(to: idxURL)
        XCTAssertTrue(ShardVerifier.verify(shardAt: url(info.name), expected: info).joined().contains("index cannot be read"))

        // Hostile numbers must be reported, not trap on overflow or out-of-range access.
        let hostile = ShardIndex(shard: info.name, samples: [
            ShardIndexEntry(key: "a", offset: Int.max, length: Int.max, crc32c: 0, members: ["jpg": [Int.max, Int.max]]),
            ShardIndexEntry(key: "b", offset: -5, length: 10, crc32c: 0, members: ["jpg": [512, Int.max], "x": [1]]),
        ])
        try hostile.encoded().write(to: idxURL)
        let problems = ShardVerifier.verify(shardAt: url(info.name), expected: info)
        XCTAssertTrue(problems.contains { $0.contains("extends past the end") }, problems.joined(separator: "\n"))
        XCTAssertTrue(problems.contains { $0.contains("must be [dataOffset, length]") }, problems.joined(separator: "\n"))

        // Random bytes in place of the tar: reported, not a crash.
        var rng = SplitMix64(seed: 77)
        try Data((0..<5000).map { _ in UInt8.random(in: 0...255, using: &rng) }).write(to: url(info.name))
        let garbage = ShardVerifier.verify(shardAt: url(info.name), expected: info).joined(separator: "\n")
        XCTAssertTrue(garbage.contains("tar structure invalid"), garbage)
        XCTAssertTrue(garbage.contains("SHA-256 mismatch"), garbage)
    }

    // MARK: TarFormat

    /// Builds a header byte-for-byte like TarFormat would, but with an arbitrary (possibly unsafe) name,
    /// because `TarFormat.header` itself refuses such names.
    private func craftedTar(name: String, data: [UInt8]) throws -> [UInt8] {
        var header = try TarFormat.header(name: "placeholder", size: data.count)
        for i in 0..<100 { header[i] = 0 }
        for (i, b) in name.utf8.enumerated() { header[i] = b }
        for i in 148..<156 { header[i] = UInt8(ascii: " ") }
        let sum = header.reduce(0) { $0 + Int($1) }
        let digits = Array(String(sum, radix: 8).utf8)
        let field = [UInt8](repeating: UInt8(ascii: "0"), count: 6 - digits.count) + digits + [0, UInt8(ascii: " ")]
        for (i, b) in field.enumerated() { header[148 + i] = b }
        let padding = [UInt8](repeating: 0, count: TarFormat.paddingLength(forSize: data.count))
        return header + data + padding + [UInt8](repeating: 0, count: 1024)
    }

    func testCraftedTarHelperProducesReadableArchive() throws {
        // Guards the unsafe-name test below: the same helper with a safe name must parse.
        let file = url("ok.tar")
        try Data(try craftedTar(name: "fine.txt", data: Array("data".utf8))).write(to: file)
        XCTAssertEqual(try TarFormat.members(ofFileAt: file), [TarFormat.Member(name: "fine.txt", dataOffset: 512, size: 4)])
    }

    func testUnsafeMemberNamesAreRejected() throws {
        for name in ["../evil.txt", "/etc/passwd", "a/../../b", ".."] {
            let file = url("unsafe.tar")
            try Data(try craftedTar(name: name, data: Array("payload".utf8))).write(to: file)
            XCTAssertThrowsError(try TarFormat.members(ofFileAt: file), name) { error in
                let text = String(describing: error)
                XCTAssertTrue(text.contains("unsafe member name"), text)
                XCTAssertTrue(text.contains(file.path), text)
                XCTAssertTrue(text.contains("byte offset 0"), text)
            }
            XCTAssertThrowsError(try TarFormat.header(name: name, size: 1), name)
        }
    }

    func testTarMembersReportsBadChecksumAndTruncation() throws {
        let infos = try writeShards(makeSamples(count: 5), to: tempDir, target: 1 << 30)
        let good = url(infos[0].name)
        let members = try TarFormat.members(ofFileAt: good)
        XCTAssertEqual(members.count, 15)
        XCTAssertEqual(members.first, TarFormat.Member(name: "sample000000.jpg", dataOffset: 512, size: members[0].size))

        var file = try bytes(of: good)
        let secondHeader = members[1].dataOffset - 512
        file[secondHeader + 130] ^= 0x01   // inside the size field
        let damaged = url("damaged.tar")
        try Data(file).write(to: damaged)
        XCTAssertThrowsError(try TarFormat.members(ofFileAt: damaged)) { error in
            let text = String(describing: error)
            XCTAssertTrue(text.contains("checksum mismatch"), text)
            XCTAssertTrue(text.contains("at byte offset \(secondHeader):"), text)
            XCTAssertTrue(text.contains(damaged.path), text)
        }

        let original = try bytes(of: good)
        for cut in [original.count - 512, original.count - 1024, members[3].dataOffset + 10, members[3].dataOffset - 200] {
            let truncated = url("truncated.tar")
            try Data(original[..<cut]).write(to: truncated)
            XCTAssertThrowsError(try TarFormat.members(ofFileAt: truncated), "cut at \(cut)") { error in
                XCTAssertTrue(String(describing: error).contains("truncated"), String(describing: error))
            }
        }
    }

    func testLongNamesUseUstarPrefix() throws {
        let directory = String(repeating: "d", count: 120)
        let longName = "\(directory)/\(String(repeating: "f", count: 90)).bin"
        let header = try TarFormat.header(name: longName, size: 3)
        XCTAssertEqual(header.count, 512)
        XCTAssertEqual(Array(header[345..<465]), Array(directory.utf8))

        let file = url("long.tar")
        try Data(header + [7, 8, 9] + [UInt8](repeating: 0, count: 509 + 1024)).write(to: file)
        XCTAssertEqual(try TarFormat.members(ofFileAt: file).map(\.name), [longName])
        let listing = try run("/bin/tar", ["tf", file.path])
        XCTAssertEqual(listing.status, 0, listing.stderr)
        XCTAssertEqual(listing.text, longName + "\n")

        XCTAssertThrowsError(try TarFormat.header(name: String(repeating: "n", count: 101), size: 0))
        XCTAssertThrowsError(try TarFormat.header(name: String(repeating: "p", count: 156) + "/x", size: 0))
        XCTAssertNoThrow(try TarFormat.header(name: String(repeating: "n", count: 100), size: 0))
        XCTAssertThrowsError(try TarFormat.header(name: "ok", size: TarFormat.maxMemberSize + 1))
    }

    // MARK: Writer errors

    func testInvalidSamplesAreRejectedWithoutPoisoningWriter() throws {
        let writer = try ShardWriter(directory: tempDir, targetBytes: 1 << 20)
        let bad: [ShardSample] = [
            ShardSample(key: "has.dot", files: [(ext: "jpg", bytes: [1])]),
            ShardSample(key: "has/slash", files: [(ext: "jpg", bytes: [1])]),
            ShardSample(key: "", files: [(ext: "jpg", bytes: [1])]),
            ShardSample(key: "nofiles", files: []),
            ShardSample(key: "dup", files: [(ext: "jpg", bytes: [1]), (ext: "jpg", bytes: [2])]),
            ShardSample(key: "badext", files: [(ext: "a/b", bytes: [1])]),
            ShardSample(key: "emptyext", files: [(ext: "", bytes: [1])]),
            ShardSample(key: String(repeating: "k", count: 100), files: [(ext: "jpg", bytes: [1])]),
        ]
        for sample in bad {
            XCTAssertThrowsError(try writer.append(sample), sample.key)
        }
        XCTAssertNil(try writer.append(ShardSample(key: "good", files: [(ext: "seg.png", bytes: [1, 2])])))
        let info = try XCTUnwrap(try writer.finish())
        XCTAssertEqual(info.samples, 1)
        XCTAssertEqual(try TarFormat.members(ofFileAt: url(info.name)).map(\.name), ["good.seg.png"])
        XCTAssertEqual(ShardVerifier.verify(shardAt: url(info.name), expected: info), [])
    }

    func testWriteFailureNamesFileAndReason() throws {
        // A file-size limit makes write(2) fail with EFBIG, standing in for a full disk. SIGXFSZ would
        // otherwise kill the test process, so it is ignored just for the duration of this test.
        var oldLimit = rlimit()
        XCTAssertEqual(getrlimit(Int32(RLIMIT_FSIZE.rawValue), &oldLimit), 0)
        let oldHandler = signal(SIGXFSZ, SIG_IGN)
        var limit = oldLimit
        limit.rlim_cur = 256 * 1024
        XCTAssertEqual(setrlimit(Int32(RLIMIT_FSIZE.rawValue), &limit), 0)
        defer {
            _ = setrlimit(Int32(RLIMIT_FSIZE.rawValue), &oldLimit)
            _ = signal(SIGXFSZ, oldHandler)
        }

        let writer = try ShardWriter(directory: tempDir, targetBytes: 1 << 30)
        let chunk = [UInt8](repeating: 0xab, count: 200 * 1024)
        var thrown: Error?
        do {
            for i in 0..<20 {
                _ = try writer.append(ShardSample(key: "s\(i)", files: [(ext: "bin", bytes: chunk)]))
            }
            _ = try writer.finish()
        } catch {
            thrown = error
        }
        let text = String(describing: try XCTUnwrap(thrown, "writing past RLIMIT_FSIZE must fail"))
        XCTAssertTrue(text.contains(url("shard-000000.tar.tmp").path), text)
        XCTAssertTrue(text.lowercased().contains("file too large"), text)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: tempDir.path), [], "partial shard must be removed")
        XCTAssertThrowsError(try writer.append(ShardSample(key: "after", files: [(ext: "bin", bytes: [1])])))
    }

    func testIOErrorDescriptionUsesStrerror() {
        let error = ShardIOError(path: "/data/shard-000001.tar.tmp", operation: "write", code: ENOSPC)
        XCTAssertTrue(error.description.contains("/data/shard-000001.tar.tmp"))
        XCTAssertTrue(error.description.lowercased().contains("no space left on device"), error.description)
    }
}

