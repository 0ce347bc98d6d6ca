import Foundation
import TesseraCore
@testable import TesseraPipeline
@testable import TesseraShards
import TesseraSlide
import TesseraStain
import TesseraTestSupport
import XCTest

/// `tessera tile --normalize`: every tile normalized on the workers, deterministic, background counted.
final class StainTilingTests: XCTestCase {
    func config(_ out: String, method: StainMethod, stain: String?, workers: Int) -> TileConfig {
        var c = TileConfig()
        c.inputs = [Fixtures.svs, Fixtures.root + "/data/stain/input_near_white.png"]
        c.output = out
        c.quiet = true
        c.tileSize = 128
        c.minTissue = 0.3
        c.assumeMpp = 0.5
        c.normalize = method
        c.stain = stain
        c.workers = workers
        c.thumbnails = false
        return c
    }

    func testNormalizedTilingIsDeterministicAndCountsUnfittableTiles() throws {
        let dir = Fixtures.tempDir(self)
        let stain = dir + "/target.json"
        try StainNormalizer.fit(try StainReference.load(path: Fixtures.root + "/data/stain/input_target.png"), method: .macenko).save(path: stain)
        // The near-white image is kept whole (--min-tissue applies to detected tissue; use none).
        var one = config(dir + "/one", method: .macenko, stain: stain, workers: 1)
        one.tissueMethod = .none
        one.minTissue = 0
        var two = one
        two.output = dir + "/two"
        two.workers = 2
        _ = try TileRun(config: one).run()
        _ = try TileRun(config: two).run()
        let m1 = try DatasetManifest.load(directory: one.output), m2 = try DatasetManifest.load(directory: two.output)
        XCTAssertEqual(m1.shards.map(\.sha256), m2.shards.map(\.sha256), "worker count changed normalized output")
        let white = m1.slides.first { $0.id == "input_near_white" }!
        XCTAssertEqual(white.stainUnchanged, white.samples, "near-white tiles cannot be fitted: all passed through and counted")
        XCTAssertGreaterThan(white.samples, 0)
        let reader = try DatasetReader(directory: one.output)
        var normalized = 0, unchanged = 0
        for i in 0..<reader.count {
            let meta = try TileDecoding.metadata(try reader.record(i))
            if meta.stain == "macenko" { normalized += 1 } else if meta.stain == "macenko:unchanged" { unchanged += 1 } else { XCTFail(meta.stain) }
        }
        // Background tiles of the slide (kept with --tissue none) cannot be fitted either.
        XCTAssertEqual(unchanged, m1.slides.reduce(0) { $0 + ($1.stainUnchanged ?? 0) })
        XCTAssertGreaterThan(normalized, 20)
        // Normalized tiles differ from plain ones; a different target is a different dataset.
        var plain = one
        plain.output = dir + "/plain"
        plain.normalize = .none
        plain.stain = nil
        XCTAssertNotEqual(try plain.hash(), try one.hash())
        var builtin = one
        builtin.stain = nil
        XCTAssertNotEqual(try builtin.hash(), try one.hash(), "the built-in Macenko target differs from the fitted one")
    }

    func testPerSlideFitIsDeterministicAndConsistentWithinASlide() throws {
        let dir = Fixtures.tempDir(self)
        var one = config(dir + "/one", method: .macenko, stain: nil, workers: 1)
        one.stainFit = .slide
        one.readRun = 4   // many units per slide, spread over the workers
        var two = one
        two.output = dir + "/two"
        two.workers = 2
        var perTile = one
        perTile.output = dir + "/tile"
        perTile.stainFit = .tile
        for c in [one, two, perTile] { _ = try TileRun(config: c).run() }
        let m1 = try DatasetManifest.load(directory: one.output), m2 = try DatasetManifest.load(directory: two.output)
        XCTAssertEqual(m1.shards.map(\.sha256), m2.shards.map(\.sha256), "per-slide fits differ between workers")
        XCTAssertNotEqual(m1.shards.map(\.sha256), try DatasetManifest.load(directory: perTile.output).shards.map(\.sha256))
        XCTAssertNotEqual(try one.hash(), try perTile.hash())
        // The slide was fitted once: every tissue tile normalized, none left unchanged.
        let slide = m1.slides.first { $0.id == "CMU-1-Small-Region" }!
        XCTAssertNil(slide.stainUnchanged)
        XCTAssertGreaterThan(slide.samples, 20)
    }

    func testStainCommandLine() throws {
        let dir = Fixtures.tempDir(self)
        let bin = Fixtures.binary, data = Fixtures.root + "/data/stain/"
        var r = try Fixtures.run(bin, ["stain", "fit", data + "input_target.png", "--method", "reinhard", "--out", dir + "/r.json"])
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertEqual(try StainTarget.load(path: dir + "/r.json").method, .reinhard)
        r = try Fixtures.run(bin, ["stain", "apply", data + "input_source.png", "--stain", dir + "/r.json", "--out", dir + "/a.png"])
        XCTAssertEqual(r.status, 0, r.err)
        // The CLI gives what the library gives.
        let lib = try StainNormalizer(target: try StainTarget.load(path: dir + "/r.json")).normalize(try ImageDecoder.readRGB(path: data + "input_source.png")).image
        XCTAssertEqual(try ImageDecoder.readRGB(path: dir + "/a.png"), lib)
        r = try Fixtures.run(bin, ["stain", "apply", data + "input_near_white.png", "--method", "macenko", "--out", dir + "/w.png"])
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertTrue(r.out.contains("unchanged"), r.out)
        r = try Fixtures.run(bin, ["stain", "show", data + "input_source.png", "--reference", data + "input_target.png", "--method", "macenko", "--out", dir + "/s.png"])
        XCTAssertEqual(r.status, 0, r.err)
        let fig = try ImageDecoder.readRGB(path: dir + "/s.png")
        XCTAssertEqual(fig.width, 584 + 587 + 584 + 16)   // source | reference | normalized, 8 px apart
        r = try Fixtures.run(bin, ["stain", "augment", data + "input_TUM-AACHEHDV.png", "--count", "2", "--out", dir + "/g.png"])
        XCTAssertEqual(r.status, 0, r.err)
        r = try Fixtures.run(bin, ["stain", "fit", data + "input_target.png", "--method", "macenco", "--out", dir + "/x.json"])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.err.contains("unknown stain method `macenco`") && r.err.contains("macenko-staintools"), r.err)
    }

    func testStainConfigErrorsNameTheProblem() throws {
        let dir = Fixtures.tempDir(self)
        var c = config(dir + "/x", method: .reinhard, stain: nil, workers: 1)
        XCTAssertThrowsError(try c.validate()) { XCTAssertTrue("\($0)".contains("needs a fitted target"), "\($0)") }
        try StainNormalizer.fit(try StainReference.load(path: Fixtures.root + "/data/stain/input_target.png"), method: .macenko).save(path: dir + "/m.json")
        c.stain = dir + "/m.json"
        XCTAssertThrowsError(try c.validate()) { XCTAssertTrue("\($0)".contains("holds a macenko target but normalize is reinhard") && "\($0)".contains("m.json"), "\($0)") }
        // Through the CLI and a pipeline file.
        let yaml = dir + "/p.yaml"
        try "tile:\n  inputs: [\(Fixtures.svs)]\n  output: \(dir)/y\n  normalize: macenko\n  stain: \(dir)/m.json\n  tile_size: 128\n  assume_mpp: 0.5\n"
            .write(toFile: yaml, atomically: true, encoding: .utf8)
        let r = try Fixtures.run(Fixtures.binary, ["run", yaml, "--quiet"])
        XCTAssertEqual(r.status, 0, r.err)
        let meta = try TileDecoding.metadata(try DatasetReader(directory: dir + "/y").record(0))
        XCTAssertEqual(meta.stain, "macenko")
    }

    /// A run resumed in the middle of a slide keeps counting that slide's unchanged (unfittable) tiles
    /// from where the killed run's last complete shard left them: the manifest equals an uninterrupted
    /// run's. (Before, the count restarted at zero for the resumed part.)
    func testResumedSlideKeepsItsUnchangedStainCount() throws {
        let dir = Fixtures.tempDir(self)
        var c = config(dir + "/full", method: .macenko, stain: nil, workers: 1)
        c.inputs = [Fixtures.svs]
        c.tissueMethod = .none
        c.minTissue = 0
        c.shardSize = 120_000
        c.stainFit = .tile
        _ = try TileRun(config: c).run()
        let full = try DatasetManifest.load(directory: c.output)
        let slide = try XCTUnwrap(full.slides.first)
        XCTAssertGreaterThan(slide.stainUnchanged ?? 0, 0, "background tiles cannot be fitted per tile")
        XCTAssertGreaterThan(full.shards.count, 3)

        // The state a kill after shard 2 leaves: the resume point the assembler writes at that shard.
        var k = c
        k.output = dir + "/killed"
        _ = try TileRun(config: k).run()
        var m = try DatasetManifest.load(directory: k.output)
        let keep = 2
        let reader = try DatasetReader(shardPaths: m.shards.prefix(keep).map { k.output + "/shards/" + $0.name })
        var unchanged = 0
        for i in 0..<reader.count where try TileDecoding.metadata(try reader.record(i)).stain.hasSuffix(":unchanged") { unchanged += 1 }
        XCTAssertGreaterThan(unchanged, 0, "pick a cut after some background tiles")
        m.status = .inProgress
        m.resume = ResumePoint(slide: 0, samplesDone: reader.count, nextShard: keep, stainUnchangedDone: unchanged)
        m.slides = []
        m.shards = Array(m.shards.prefix(keep))
        try m.save(directory: k.output)
        for name in try FileManager.default.contentsOfDirectory(atPath: k.output + "/shards") where Int(name.dropFirst(6).prefix(6)) ?? 0 >= keep {
            try FileManager.default.removeItem(atPath: k.output + "/shards/" + name)
        }
        _ = try TileRun(config: k).run()
        let resumed = try DatasetManifest.load(directory: k.output)
        XCTAssertEqual(resumed.slides.first?.stainUnchanged, slide.stainUnchanged)
        XCTAssertEqual(resumed.slides, full.slides)
        XCTAssertEqual(resumed.shards, full.shards)
    }
}
