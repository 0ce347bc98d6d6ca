import Foundation
import TesseraCore
@testable import TesseraPipeline
import TesseraShards
import TesseraTestSupport
import XCTest

/// PyTorch users read Tessera datasets with no Tessera code: the pip package `webdataset` and
/// scripts/tessera_dataset.py must see the same samples, metadata, pixels and epoch order as Swift.
/// Needs python3 with numpy, Pillow and webdataset (scripts/test installs them).
final class PythonInteropTests: XCTestCase {
    func testWebDatasetAndPythonReaderMatchSwift() throws {
        let dataset = ReaderTests.dataset
        let out = Fixtures.tempDir(self)
        let r = try Fixtures.run("python3", [Fixtures.root + "/scripts/check_webdataset.py", dataset, out])
        XCTAssertEqual(r.status, 0, r.err + r.out)
        let reader = try DatasetReader(directory: dataset)
        var maxDiff = 0
        for i in 0..<reader.count {
            let record = try reader.record(i)
            let ours = try TileDecoding.image(record)
            guard let theirs = FileManager.default.contents(atPath: out + "/" + record.key + ".rgb") else {
                XCTFail("webdataset did not produce \(record.key)"); continue
            }
            XCTAssertEqual(theirs.count, ours.pixels.count, record.key)
            for (a, b) in zip(theirs, ours.pixels) { maxDiff = max(maxDiff, abs(Int(a) - Int(b))) }
        }
        // Pillow and libvips both decode with libjpeg-turbo's default IDCT: the same pixels.
        XCTAssertEqual(maxDiff, 0)
        let lines = try String(contentsOfFile: out + "/samples.jsonl", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, reader.count)
    }

    func testPythonReaderReproducesSwiftEpochOrder() throws {
        let dataset = ReaderTests.dataset
        let reader = try DatasetReader(directory: dataset)
        for (rank, world, dropLast, slides) in [(0, 1, false, ""), (1, 3, false, ""), (2, 3, true, ""), (0, 2, false, "ihc,BloodImage_00000"), (5, 1001, false, "")] {
            var o = ReadOrder()
            o.seed = 1234
            o.shuffleBuffer = 37
            o.rank = rank; o.worldSize = world; o.dropLast = dropLast
            let selection: Set<String>? = slides.isEmpty ? nil : Set(slides.split(separator: ",").map(String.init))
            let swift = Array(try reader.epoch(5, order: o, slides: selection))
            var args = [Fixtures.root + "/scripts/tessera_dataset.py", dataset, "--indices", "--seed", "1234", "--epoch", "5",
                        "--shuffle-buffer", "37", "--rank", "\(rank)", "--world-size", "\(world)"]
            if dropLast { args.append("--drop-last") }
            if !slides.isEmpty { args += ["--slides", slides] }
            let r = try Fixtures.run("python3", args)
            XCTAssertEqual(r.status, 0, r.err)
            XCTAssertEqual(r.out.split(separator: "\n").map { Int($0)! }, swift, "rank \(rank)/\(world)")
        }
    }

    /// The Python reader's numpy CRC32C (pairwise combination of word CRCs) against Swift's, and
    /// against its own byte loop, at small, odd and tile-sized lengths; a flipped byte is caught.
    func testPythonNumpyCRC32CMatchesSwift() throws {
        let dir = Fixtures.tempDir(self)
        var rng = SplitMix64(seed: 3)
        let lengths = Array(0..<70) + [127, 128, 129, 1000, 4097, 22_001, 198_144]
        var expected: [String] = []
        for n in lengths {
            let bytes = (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) }
            try Data(bytes).write(to: URL(fileURLWithPath: dir + "/\(n).bin"))
            expected.append("\(n) \(CRC32C.checksum(bytes))")
        }
        let script = """
        import sys, numpy
        sys.path.insert(0, sys.argv[1] + "/scripts")
        import tessera_dataset as t
        fast = t._NumpyCRC32C(numpy)
        for n in [int(a) for a in sys.argv[3:]]:
            data = open(f"{sys.argv[2]}/{n}.bin", "rb").read()
            slow = t._crc32c_python(data)
            if n >= 4:
                assert fast(data) == slow, n
                if n:
                    bad = bytearray(data); bad[n // 2] ^= 1
                    assert fast(bytes(bad)) != slow, n
            assert t.crc32c(data) == slow, n
            print(n, slow)
        """
        let r = try Fixtures.run("python3", ["-c", script, Fixtures.root, dir] + lengths.map(String.init))
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertEqual(r.out.split(separator: "\n").map(String.init), expected)
    }
}
