import Foundation
import TesseraCore
@testable import TesseraPipeline
@testable import TesseraShards
import TesseraSplits
import TesseraTestSupport
import XCTest

/// Splits over real tiled data: the bundled PBC subset (96 blood-cell images, 8 classes), tiled with labels.
final class SplitPipelineTests: XCTestCase {
    static let pbcRoot = Fixtures.root + "/data/pbc-blood-cells"
    static let binary = Fixtures.binary

    func tile(_ inputs: [String], labels: String? = pbcRoot + "/labels.csv", fromFolders: Bool = false) throws -> String {
        let dir = Fixtures.tempDir(self) + "/ds"
        var c = TileConfig()
        c.inputs = inputs
        c.output = dir
        c.quiet = true
        c.tissueMethod = .none
        c.minTissue = 0
        c.shardSize = 300_000
        c.labels = labels
        c.labelsFromFolders = fromFolders
        let s = try TileRun(config: c).run()
        XCTAssertEqual(s.failed, 0)
        return dir
    }

    func testTilesCarryLabelsAndInspectBreaksThemDown() throws {
        let dir = try tile([Self.pbcRoot])
        let reader = try DatasetReader(directory: dir)
        XCTAssertEqual(reader.count, 96)
        XCTAssertGreaterThan(reader.shards.count, 2)
        for i in [0, 40, 95] {
            let meta = try TileDecoding.metadata(try reader.record(i))
            XCTAssertEqual(meta.label, String(meta.slideId.split(separator: "_").first!), "label from labels.csv is the class folder")
        }
        let m = try DatasetManifest.load(directory: dir)
        XCTAssertEqual(Set(m.slides.compactMap(\.label)).count, 8)
        let split = try SplitFile.read(path: Fixtures.root + "/splits/pbc-blood-cells.csv")
        let report = try DatasetInspector.report(directory: dir, split: split)
        let row = report.split(separator: "\n").first { $0.hasPrefix("platelet ") }.map(String.init)
        XCTAssertNotNil(row, report)
        // 12 platelets; their tiles per side add up to 12.
        let numbers = row!.split(separator: " ").compactMap { Int($0) }
        XCTAssertEqual(numbers[0], 12)
        XCTAssertEqual(numbers[1], 12)
        XCTAssertEqual(numbers[2] + numbers[3] + numbers[4], 12)
        XCTAssertEqual(numbers[5], 0, "every bundled image is in the reference split")
    }

    func testFolderLabelsSplitAndReadersSelectBySplitName() throws {
        let dir = try tile([Self.pbcRoot], labels: nil, fromFolders: true)
        let out = Fixtures.tempDir(self) + "/splits/pbc.csv"
        let r = try Fixtures.run(Self.binary, ["split", dir, "-o", out, "--group", "slide", "--assign", "balanced", "--test", "0.25", "--val", "0", "--folds", "3", "--subsets", "1,2,4"])
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertTrue(r.out.contains("platelet"), r.out)
        let file = try SplitFile.read(path: out)
        XCTAssertEqual(file.rows.count, 96)
        XCTAssertEqual(file.rows.filter { $0.side == .test }.count, 24)
        let reader = try DatasetReader(directory: dir)
        var order = ReadOrder()
        order.seed = 3
        for selector in ["train", "test", "trainval,fold!=1", "fold=1", "train,subset=2"] {
            let sel = try file.select(selector)
            let swift = Array(try reader.epoch(0, order: order, slides: sel.slides))
            XCTAssertEqual(Set(swift.map { reader.slideId(of: $0)! }), sel.slides, selector)
            // The Python reader selects the same samples in the same order by split name.
            let py = try Fixtures.run("python3", [Fixtures.root + "/scripts/tessera_dataset.py", dir, "--indices", "--seed", "3",
                                                  "--split", out + ":" + selector])
            XCTAssertEqual(py.status, 0, py.err)
            XCTAssertEqual(py.out.split(separator: "\n").map { Int($0)! }, swift, selector)
            // And the CLI reads exactly that many.
            let cli = try Fixtures.run(Self.binary, ["read", dir, "--json", "--split", out + ":" + selector])
            XCTAssertEqual(cli.status, 0, cli.err)
            XCTAssertTrue(cli.out.contains("\"samples\": \(sel.slides.count),"), cli.out)
        }
        XCTAssertEqual(try file.select("train,subset=2").slides.count, 16)
    }

    func testTileCountedSubsets() throws {
        let dir = try tile([Self.pbcRoot, Fixtures.svs], labels: nil, fromFolders: true)
        var o = DatasetSplitting.Options()
        o.labelsFromFolders = true
        o.rule.group = .slide
        o.rule.test = 0
        o.rule.val = 0
        o.rule.subsets = [1, 3]
        o.rule.subsetUnit = .tile
        let out = Fixtures.tempDir(self) + "/t.csv"
        let (file, _) = try DatasetSplitting.make(dataset: dir, output: out, options: o, tool: "t")
        try file.write()
        let back = try SplitFile.read(path: out)
        XCTAssertNotNil(back.tileSubsets)
        // The slide (label "sample", its folder) has many tiles: 3 of them, not 3 slides.
        let three = try back.select("subset=3")
        XCTAssertEqual(three.keys?.count, 9 * 3)
        XCTAssertTrue(try back.select("subset=1").keys!.isSubset(of: three.keys!))
        let reader = try DatasetReader(directory: dir)
        let picked = Array(try reader.epoch(0, order: ReadOrder(), slides: three.slides, keys: three.keys))
        XCTAssertEqual(Set(try picked.map { try reader.key(of: $0) }), three.keys)
    }

    func testSplitCheckFindsDuplicateImagesOnTwoSides() throws {
        // The same blood-cell image under two names (a copy in another folder).
        let input = Fixtures.tempDir(self)
        let names = ["lymphocyte", "monocyte", "copy"]
        for n in names { try FileManager.default.createDirectory(atPath: input + "/" + n, withIntermediateDirectories: true) }
        let lymph = try FileManager.default.contentsOfDirectory(atPath: Self.pbcRoot + "/lymphocyte").sorted()
        let mono = try FileManager.default.contentsOfDirectory(atPath: Self.pbcRoot + "/monocyte").sorted()
        for f in lymph.prefix(4) { try FileManager.default.copyItem(atPath: Self.pbcRoot + "/lymphocyte/" + f, toPath: input + "/lymphocyte/" + f) }
        for f in mono.prefix(4) { try FileManager.default.copyItem(atPath: Self.pbcRoot + "/monocyte/" + f, toPath: input + "/monocyte/" + f) }
        try FileManager.default.copyItem(atPath: Self.pbcRoot + "/lymphocyte/" + lymph[0], toPath: input + "/copy/dup.jpg")
        let dir = try tile([input], labels: nil, fromFolders: true)
        let original = "lymphocyte__" + (lymph[0] as NSString).deletingPathExtension
        // A split that puts the copy on test and the original on train.
        let slides = try DatasetSplitting.slides(dataset: dir, options: { var o = DatasetSplitting.Options(); o.labelsFromFolders = true; return o }())
        let rows = slides.map { s in
            SplitRow(slide: s, group: s.slideId, side: s.slideId == "copy__dup" ? .test : .train, fold: nil, minSubset: nil)
        }
        let path = Fixtures.tempDir(self) + "/leaky.csv"
        try SplitFile(path: path, rule: SplitRule(), tool: "t", rows: rows).write()
        let r = try Fixtures.run(Self.binary, ["split", "check", path, "--dataset", dir])
        XCTAssertEqual(r.status, 2, r.out + r.err)
        for kind in ["slide-file", "tile-coordinates", "tile-pixels"] {
            XCTAssertTrue(r.out.contains("leak: \(kind)"), kind + ": " + r.out)
        }
        XCTAssertTrue(r.out.contains(original) && r.out.contains("copy__dup"), r.out)
        // Without the copy on another side: clean.
        let clean = slides.map { SplitRow(slide: $0, group: $0.slideId, side: .train, fold: nil, minSubset: nil) }
        try SplitFile(path: path, rule: SplitRule(), tool: "t", rows: clean).write()
        let ok = try Fixtures.run(Self.binary, ["split", "check", path, "--dataset", dir])
        XCTAssertEqual(ok.status, 0, ok.out + ok.err)
    }

    func testSplitRejectsLabelTablesThatDoNotMatch() throws {
        let dir = try tile([Self.pbcRoot + "/platelet"], labels: nil)
        let out = Fixtures.tempDir(self) + "/s.csv"
        // The full table names 1,988 images this dataset does not have.
        let r = try Fixtures.run(Self.binary, ["split", dir, "-o", out, "--labels", Self.pbcRoot + "/labels.csv", "--group", "slide"])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.err.contains("name slides the dataset does not have") && r.err.contains("--ignore-unknown"), r.err)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
        // Slide ids of a folder tiled on its own have no class prefix, so `path` rows match by file name.
        let ok = try Fixtures.run(Self.binary, ["split", dir, "-o", out, "--labels", Self.pbcRoot + "/labels.csv", "--group", "slide", "--ignore-unknown"])
        XCTAssertEqual(ok.status, 0, ok.err)
        XCTAssertEqual(try SplitFile.read(path: out).rows.compactMap(\.slide.label), Array(repeating: "platelet", count: 12))
        // A table missing slides.
        let partial = Fixtures.tempDir(self) + "/partial.csv"
        try "path,label\nplatelet/\(try FileManager.default.contentsOfDirectory(atPath: Self.pbcRoot + "/platelet").sorted()[0]),platelet\n"
            .write(toFile: partial, atomically: true, encoding: .utf8)
        let missing = try Fixtures.run(Self.binary, ["split", dir, "-o", out, "--labels", partial, "--group", "slide"])
        XCTAssertEqual(missing.status, 1)
        XCTAssertTrue(missing.err.contains("11 dataset slide(s) have no row") && missing.err.contains("partial.csv"), missing.err)
    }
}
