import Foundation
import XCTest
@testable import TesseraCore

final class ChecksumTests: XCTestCase {
    // MARK: CRC32C

    func testCRC32CCheckValue() {
        XCTAssertEqual(CRC32C.checksum(Array("123456789".utf8)), 0xE306_9283)
    }

    func testCRC32CEmptyIsZeroAndContinuationIsIdentity() {
        XCTAssertEqual(CRC32C.checksum([]), 0)
        XCTAssertEqual([UInt8]().withUnsafeBytes { CRC32C.checksum($0, continuing: 0x1234_5678) }, 0x1234_5678)
    }

    /// iSCSI test vectors from RFC 3720, appendix B.4.
    func testCRC32CRFC3720Vectors() {
        XCTAssertEqual(CRC32C.checksum([UInt8](repeating: 0, count: 32)), 0x8A91_36AA)
        XCTAssertEqual(CRC32C.checksum([UInt8](repeating: 0xff, count: 32)), 0x62A8_AB43)
        XCTAssertEqual(CRC32C.checksum((0..<32).map { UInt8($0) }), 0x46DD_794E)
        XCTAssertEqual(CRC32C.checksum((0..<32).map { UInt8(31 - $0) }), 0x113F_DB5C)
    }

    /// Bit-at-a-time reference, independent of the table code.
    private func referenceCRC32C(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xffff_ffff
        for b in bytes {
            crc ^= UInt32(b)
            for _ in 0..<8 { crc = (crc & 1) != 0 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
        }
        return ~crc
    }

    func testCRC32CMatchesBitwiseReferenceAtAllLengthsAndAlignments() {
        var rng = SplitMix64(seed: 42)
        let data = (0..<300).map { _ in UInt8.random(in: 0...255, using: &rng) }
        for start in 0..<9 {
            for length in stride(from: 0, to: 200, by: 7) {
                let slice = Array(data[start..<(start + length)])
                XCTAssertEqual(CRC32C.checksum(slice), referenceCRC32C(slice), "start \(start) length \(length)")
            }
        }
    }

    func testCRC32CContinuationEqualsWhole() {
        var rng = SplitMix64(seed: 7)
        let data = (0..<5000).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let whole = CRC32C.checksum(data)
        for split in [0, 1, 3, 8, 511, 512, 4999, 5000] {
            let first = CRC32C.checksum(Array(data[..<split]))
            let combined = Array(data[split...]).withUnsafeBytes { CRC32C.checksum($0, continuing: first) }
            XCTAssertEqual(combined, whole, "split at \(split)")
        }
    }

    /// Each hardware path (three crc32 chains; VPCLMULQDQ folding) against the software tables, at
    /// every length up to past the folding thresholds (256 B, 64 B steps), odd alignments, lengths
    /// that exercise the 3 × 4 KB interleave, and non-zero starting CRCs.
    func testHardwareCRC32CPathsMatchSoftwareAtOddLengthsAndAlignments() throws {
        guard CRC32C.hardware else { throw XCTSkip("no SSE4.2 CRC32 instruction on this CPU") }
        var rng = SplitMix64(seed: 99)
        let data = (0..<70_000).map { _ in UInt8.random(in: 0...255, using: &rng) }
        var lengths = Array(0..<1100)
        lengths += [4095, 4096, 12_287, 12_288, 12_289, 24_577, 65_537, 69_000]
        data.withUnsafeBytes { all in
            for (n, length) in lengths.enumerated() {
                let start = n % 67
                let slice = UnsafeRawBufferPointer(rebasing: all[start..<(start + length)])
                let seed = n % 3 == 0 ? 0 : UInt32(truncatingIfNeeded: n &* 0x9E37_79B9)
                let expected = CRC32C.software(slice, continuing: seed)
                XCTAssertEqual(CRC32C.interleavedCRC32(slice, continuing: seed), expected, "crc32 chains, start \(start) length \(length)")
                if CRC32C.folding {
                    XCTAssertEqual(CRC32C.folded(slice, continuing: seed), expected, "folding, start \(start) length \(length)")
                }
                XCTAssertEqual(CRC32C.checksum(slice, continuing: seed), expected, "dispatch, start \(start) length \(length)")
            }
        }
        // Folding must see every byte: a single flipped bit anywhere changes the CRC.
        var flipped = Array(data[0..<5000])
        let base = CRC32C.checksum(flipped)
        for i in stride(from: 0, to: 5000, by: 97) {
            flipped[i] ^= 0x10
            XCTAssertNotEqual(CRC32C.checksum(flipped), base, "bit flip at \(i)")
            flipped[i] ^= 0x10
        }
    }

    func testFoldingIsUsedWhereTheCPUHasIt() throws {
        let flags = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        guard flags.contains(" vpclmulqdq"), flags.contains(" avx512f"), flags.contains(" avx512vl") else {
            throw XCTSkip("CPU without AVX-512 VPCLMULQDQ")
        }
        XCTAssertTrue(CRC32C.folding)
    }

    // MARK: SHA-256

    func testSHA256KnownVectors() {
        XCTAssertEqual(SHA256.hexDigest(of: Array("abc".utf8)),
                       "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(SHA256.hexDigest(of: []),
                       "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(SHA256.hexDigest(of: Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)),
                       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        XCTAssertEqual(SHA256.hexDigest(of: [UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000)),
                       "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    func testSHA256PaddingBoundaries() {
        // 55/56/63/64 bytes straddle the one-vs-two padding block boundary.
        let expected: [Int: String] = [
            55: "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318",
            56: "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a",
            63: "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34",
            64: "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb",
        ]
        for (count, digest) in expected {
            XCTAssertEqual(SHA256.hexDigest(of: [UInt8](repeating: UInt8(ascii: "a"), count: count)), digest, "\(count) x 'a'")
        }
    }

    func testSHA256StreamingSplitsAndReuseAfterFinalize() {
        var rng = SplitMix64(seed: 99)
        let data = (0..<10_000).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let oneShot = SHA256.hexDigest(of: data)
        for chunk in [1, 3, 63, 64, 65, 1000, 4096] {
            var hasher = SHA256()
            var i = 0
            while i < data.count {
                let end = min(i + chunk, data.count)
                hasher.update(Array(data[i..<end]))
                i = end
            }
            XCTAssertEqual(SHA256.hex(hasher.finalize()), oneShot, "chunk \(chunk)")
            // finalize() resets, so the same value hashes a fresh message.
            hasher.update(Array("abc".utf8))
            XCTAssertEqual(SHA256.hex(hasher.finalize()),
                           "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        }
    }

    func testSHA256DigestIs32Bytes() {
        var hasher = SHA256()
        hasher.update([1, 2, 3])
        XCTAssertEqual(hasher.finalize().count, 32)
        XCTAssertEqual(SHA256.hex([0x00, 0x0f, 0xa0, 0xff]), "000fa0ff")
    }

    func testSHA256OfFileMatchesSha256sum() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-checksum-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }

        var rng = SplitMix64(seed: 2024)
        // Not a multiple of the 1 MiB read chunk nor of 64, so both tails are exercised.
        var data = [UInt8](repeating: 0, count: 1_000_003)
        for i in data.indices { data[i] = UInt8.random(in: 0...255, using: &rng) }
        let file = dir.appendingPathComponent("random.bin")
        try Data(data).write(to: file)

        let ours = try SHA256.hexDigest(ofFileAt: file.path)
        XCTAssertEqual(ours, SHA256.hexDigest(of: data))

        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
        process.arguments = [file.path]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0)
        let theirs = String(decoding: output, as: UTF8.self).split(separator: " ").first.map(String.init)
        XCTAssertEqual(ours, theirs)
    }

    func testSHA256OfMissingFileThrowsNamingPath() {
        let path = "/nonexistent/tessera-\(UUID().uuidString)"
        XCTAssertThrowsError(try SHA256.hexDigest(ofFileAt: path)) { error in
            let text = String(describing: error)
            XCTAssertTrue(text.contains(path), text)
            XCTAssertTrue(text.lowercased().contains("no such file"), text)
        }
    }
}


final class CRC32CPathTests: XCTestCase {
    /// The hardware and table paths agree on every length and alignment, continuation included.
    func testHardwareAndSoftwareAgree() {
        var bytes = [UInt8](repeating: 0, count: 60_000)
        var x: UInt32 = 12345
        for i in bytes.indices { x = x &* 1_103_515_245 &+ 12345; bytes[i] = UInt8(truncatingIfNeeded: x >> 16) }
        bytes.withUnsafeBytes { raw in
            for (start, length) in [(0, 0), (0, 1), (1, 7), (3, 8), (5, 63), (0, 4099), (17, 4000), (0, 12288), (1, 12289), (7, 36_871), (3, 59_990)] {
                let slice = UnsafeRawBufferPointer(rebasing: raw[start..<(start + length)])
                XCTAssertEqual(CRC32C.checksum(slice), CRC32C.software(slice), "\(start)+\(length)")
                XCTAssertEqual(CRC32C.checksum(slice, continuing: 0xDEADBEEF), CRC32C.software(slice, continuing: 0xDEADBEEF))
            }
        }
        XCTAssertEqual(CRC32C.checksum(Array("123456789".utf8)), 0xE306_9283)
    }
}
