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
}
