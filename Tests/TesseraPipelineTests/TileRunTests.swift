import Foundation
import TesseraCore
@testable import TesseraPipeline
import TesseraShards
import TesseraSlide
import TesseraTestSupport
import XCTest

final class TileRunTests: XCTestCase {
    func config(_ inputs: [String], _ out: String, _ edit: (inout TileConfig) -> Void = { _ in }) -> TileConfig {
        var c = TileConfig()
        c.inputs = inputs
        c.output = out
        c.quiet = true
        c.workers = 2
        edit(&c)
        return c
    }

    func shardBytes(_ dir: String) throws -> [String: Data] {
        var out: [String: Data] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: dir + "/shards") {
            out[name] = try Data(contentsOf: URL(fileURLWithPath: dir + "/shards/" + name))
        }
        return out
    }

    func testTilesRealSlideIntoVerifiedShardsWithMetadata() throws {
        let out = Fixtures.tempDir(self) + "/ds"
        let summary = try TileRun(config: config([Fixtures.svs], out) { $0.mpp = 0.5; $0.format = .png }).run()
        XCTAssertEqual(summary.failed, 0)
        XCTAssertGreaterThan(summary.samples, 10)
        let manifest = try DatasetManifest.load(directory: out)
        XCTAssertEqual(manifest.status, .complete)
        XCTAssertEqual(manifest.slides.count, 1)
        XCTAssertEqual(manifest.slides[0].sha256, "ed92d5a9f2e86df67640d6f92ce3e231419ce127131697fbbce42ad5e002c8a7")
        XCTAssertEqual(manifest.slides[0].samples, summary.samples)
        XCTAssertEqual(manifest.slides[0].mppSource, "openslide.mpp-x")
        XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/" + (manifest.slides[0].thumbnail ?? "none")))
        XCTAssertEqual(try DatasetVerifier.verify(directory: out), [])

        // GNU tar lists every sample as KEY.png + KEY.json.
        let shard = out + "/shards/" + manifest.shards[0].name
        let listing = try Fixtures.run("tar", ["tf", shard]).out.split(separator: "\n")
        XCTAssertEqual(listing.count, 2 * manifest.shards[0].samples)
        XCTAssertTrue(listing[0].hasSuffix(".png"))
        XCTAssertTrue(listing[1].hasSuffix(".json"))

        // A stored tile decodes to exactly the pixels at its recorded level-0 position.
        let index = try ShardIndex.load(from: ShardIndex.indexURL(forShardAt: URL(fileURLWithPath: shard)))
        let entry = index.samples[index.samples.count / 2]
        let data = try Data(contentsOf: URL(fileURLWithPath: shard))
        func member(_ ext: String) -> [UInt8] {
            let r = entry.members[ext]!
            return [UInt8](data[r[0]..<(r[0] + r[1])])
        }
        let meta = try JSONDecoder().decode(SampleMetadata.self, from: Data(member("json")))
        XCTAssertEqual(meta.key, entry.key)
        XCTAssertEqual(meta.slideId, "CMU-1-Small-Region")
        XCTAssertEqual(meta.mpp ?? 0, 0.499, accuracy: 1e-9)
        XCTAssertGreaterThanOrEqual(meta.tissueFraction, 0.5)
        let tile = try ImageDecoder.decodeRGB(member("png"))
        let truth = try Slide.open(path: Fixtures.svs).readRegion(x: meta.x, y: meta.y, width: 256, height: 256)
        XCTAssertEqual(tile, truth)
    }

    func testOutputIsByteIdenticalForOneAndTwoWorkers() throws {
        let base = Fixtures.tempDir(self)
        let pyramid = try Fixtures.pyramid(self)
        for w in [1, 2] {
            _ = try TileRun(config: config([Fixtures.svs, pyramid], base + "/w\(w)") {
                $0.workers = w; $0.mpp = 0.75; $0.shardSize = 100_000; $0.stride = 192; $0.minTissue = 0.3
            }).run()
        }
        let one = try shardBytes(base + "/w1"), two = try shardBytes(base + "/w2")
        XCTAssertGreaterThan(one.count, 4)
        XCTAssertEqual(one, two)
        let m1 = try DatasetManifest.load(directory: base + "/w1"), m2 = try DatasetManifest.load(directory: base + "/w2")
        XCTAssertEqual(m1.shards, m2.shards)
        XCTAssertEqual(m1.configHash, m2.configHash)
        // The pyramid was downsampled (0.75 µm/px lies between its levels).
        XCTAssertEqual(m1.slides[1].level0PerPixel ?? 0, 0.75 / 0.499, accuracy: 1e-3)
    }

    /// Simulates a run killed after its second shard: later shards, a half-written temporary shard
    /// and a shard completed after the last manifest update are on disk. Rerunning the same command
    /// ends byte-identical to an uninterrupted run.
    func testResumeAfterKillIsByteIdentical() throws {
        let base = Fixtures.tempDir(self)
        let inputs = [Fixtures.svs, Fixtures.fixture("ihc.png"), Fixtures.fixture("BloodImage_00000.jpg")]
        let edit: (inout TileConfig) -> Void = { $0.shardSize = 60_000; $0.minTissue = 0.2; $0.stride = 200 }
        _ = try TileRun(config: config(inputs, base + "/full", edit)).run()
        let full = try shardBytes(base + "/full")
        let manifest = try DatasetManifest.load(directory: base + "/full")
        XCTAssertGreaterThan(manifest.shards.count, 5)

        // Build the killed state from a fresh run interrupted through the manifest's own resume record.
        let killed = base + "/killed"
        _ = try TileRun(config: config(inputs, killed, edit)).run()
        var m = try DatasetManifest.load(directory: killed)
        let keep = 2
        // The resume point after shard 2: the slide and sample at which shard 3 started.
        var counted = 0, slide = m.slides.count, done = 0
        let keptSamples = m.shards.prefix(keep).reduce(0) { $0 + $1.samples }
        for (i, s) in m.slides.enumerated() {
            if counted + s.samples > keptSamples { slide = i; done = keptSamples - counted; break }
            counted += s.samples
        }
        m.status = .inProgress
        m.resume = ResumePoint(slide: slide, samplesDone: done, nextShard: keep)
        m.slides = Array(m.slides.prefix(slide))
        let extra = m.shards[keep].name
        m.shards = Array(m.shards.prefix(keep))
        try m.save(directory: killed)
        // Shard 3 complete on disk but not in the manifest, shard 4 half-written as .tmp, later ones gone.
        for name in try FileManager.default.contentsOfDirectory(atPath: killed + "/shards") {
            let n = Int(name.dropFirst(6).prefix(6)) ?? 0
            if n > keep { try FileManager.default.removeItem(atPath: killed + "/shards/" + name) }
        }
        XCTAssertTrue(FileManager.default.fileExists(atPath: killed + "/shards/" + extra))
        try Data(repeating: 7, count: 1000).write(to: URL(fileURLWithPath: killed + "/shards/shard-000003.tar.tmp"))

        let resumed = try TileRun(config: config(inputs, killed, edit)).run()
        XCTAssertFalse(resumed.alreadyComplete)
        XCTAssertEqual(try shardBytes(killed), full)
        let after = try DatasetManifest.load(directory: killed)
        XCTAssertEqual(after.shards, manifest.shards)
        XCTAssertEqual(after.slides, manifest.slides)
        XCTAssertEqual(try DatasetVerifier.verify(directory: killed), [])
        // A second rerun is a no-op.
        XCTAssertTrue(try TileRun(config: config(inputs, killed, edit)).run().alreadyComplete)
    }

    func testBadSlidesAreRecordedAndTheRestComplete() throws {
        let dir = Fixtures.tempDir(self)
        let inputs = Fixtures.tempDir(self)
        for name in ["broken.svs", "unopenable.tiff", "unreadable.svs", "ihc.png"] {
            try FileManager.default.copyItem(atPath: Fixtures.fixture(name), toPath: inputs + "/" + name)
        }
        try FileManager.default.copyItem(atPath: Fixtures.svs, toPath: inputs + "/cmu.svs")
        FileManager.default.createFile(atPath: inputs + "/zero.svs", contents: Data())
        let data = try Data(contentsOf: URL(fileURLWithPath: Fixtures.svs))
        try data.prefix(data.count / 3).write(to: URL(fileURLWithPath: inputs + "/truncated.svs"))
        let summary = try TileRun(config: config([inputs], dir + "/ds") { $0.mpp = 0.5 }).run()
        let m = try DatasetManifest.load(directory: dir + "/ds")
        let status = Dictionary(uniqueKeysWithValues: m.slides.map { ($0.id, $0.status) })
        XCTAssertEqual(status["cmu"], .done)
        for bad in ["broken", "unopenable", "unreadable", "zero", "truncated"] {
            XCTAssertEqual(status[bad], .failed, bad)
            let r = m.slides.first { $0.id == bad }!
            XCTAssertTrue(r.reason?.contains(r.path) ?? false, "\(bad): \(r.reason ?? "")")
        }
        // ihc.png has no µm/px: failed with the hint, not silently tiled at the wrong scale.
        XCTAssertEqual(status["ihc"], .failed)
        XCTAssertEqual(m.slides.first { $0.id == "ihc" }?.errorKind, "missing-resolution")
        XCTAssertEqual(summary.failed, 6)
        XCTAssertGreaterThan(m.slides.first { $0.id == "cmu" }!.samples, 0)
        XCTAssertEqual(try DatasetVerifier.verify(directory: dir + "/ds"), [])
    }

    func testMicroscopyFolderAtNativeResolution() throws {
        let out = Fixtures.tempDir(self) + "/ds"
        let inputs = Fixtures.tempDir(self)
        for name in ["img2d.tif", "TUM-AACHEHDV.tif", "BloodImage_00000.jpg", "he-source-rgba.png", "small.svs"] {
            try FileManager.default.createDirectory(atPath: inputs + "/sub", withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: Fixtures.fixture(name), toPath: inputs + "/sub/" + name)
        }
        let s = try TileRun(config: config([inputs], out) { $0.tissueMethod = .none; $0.minTissue = 0; $0.tileSize = 224 }).run()
        let m = try DatasetManifest.load(directory: out)
        XCTAssertEqual(s.failed, 0)
        let byId = Dictionary(uniqueKeysWithValues: m.slides.map { ($0.id, $0) })
        XCTAssertEqual(byId["sub__img2d"]?.samples, 4)  // 512² → 2×2 tiles of 224
        XCTAssertEqual(byId["sub__TUM-AACHEHDV"]?.samples, 1)
        XCTAssertEqual(byId["sub__small"]?.status, .skipped)  // 16×16 is smaller than a tile
        XCTAssertTrue(byId["sub__small"]?.reason?.contains("smaller") ?? false)
    }

    func testSettingsAndOutputProtection() throws {
        let dir = Fixtures.tempDir(self)
        XCTAssertThrowsError(try TileRun(config: config([Fixtures.svs], dir + "/a") { $0.minTissue = 1.5 }).run()) {
            XCTAssertTrue("\($0)".contains("min-tissue"))
        }
        XCTAssertThrowsError(try TileRun(config: config([Fixtures.svs], dir + "/a") { $0.tileSize = 0 }).run())
        XCTAssertThrowsError(try ByteSize.parse("lots"))
        XCTAssertEqual(try ByteSize.parse("64MB"), 64_000_000)
        XCTAssertEqual(try ByteSize.parse("1GiB"), 1 << 30)
        _ = try TileRun(config: config([Fixtures.svs], dir + "/b") { $0.mpp = 0.5 }).run()
        // The same output with other settings is refused rather than mixed.
        XCTAssertThrowsError(try TileRun(config: config([Fixtures.svs], dir + "/b") { $0.mpp = 1.0 }).run()) {
            XCTAssertEqual(($0 as? TesseraError)?.kind, .mismatch)
        }
        // workers do not change the output, so they are not a different setting.
        XCTAssertTrue(try TileRun(config: config([Fixtures.svs], dir + "/b") { $0.mpp = 0.5; $0.workers = 1 }).run().alreadyComplete)
        // A second writer on the same directory is refused while the first holds the lock.
        let lock = try DirectoryLock(directory: dir + "/b", purpose: "writing")
        XCTAssertThrowsError(try DirectoryLock(directory: dir + "/b", purpose: "writing")) {
            XCTAssertEqual(($0 as? TesseraError)?.kind, .busy)
        }
        withExtendedLifetime(lock) {}
    }

    func testPipelineFileRejectsUnknownKeysAndWrongTypes() throws {
        let dir = Fixtures.tempDir(self)
        try "tile:\n  inputs: [a]\n  output: b\n  tile_sise: 256\n".write(toFile: dir + "/typo.yaml", atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try PipelineFile.load(path: dir + "/typo.yaml")) { XCTAssertTrue("\($0)".contains("tile_sise")) }
        try "tile:\n  inputs: [a]\n  output: b\n  tile_size: big\n".write(toFile: dir + "/type.yaml", atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try PipelineFile.load(path: dir + "/type.yaml")) { XCTAssertTrue("\($0)".contains("tile_size")) }
        let demo = try PipelineFile.load(path: Fixtures.root + "/pipelines/slide-demo.yaml")
        XCTAssertEqual(demo.tile?.mpp, 0.5)
        XCTAssertEqual(demo.tile?.shardSize, 64_000_000)
    }

    func testUserMaskSelectsTiles() throws {
        let dir = Fixtures.tempDir(self)
        try FileManager.default.createDirectory(atPath: dir + "/masks", withIntermediateDirectories: true)
        // A 222×297 mask (1/10 of the slide): only the block x 100–160, y 100–160 (level 0: 1000–1600) is tissue.
        var mask = RGBImage(width: 222, height: 297)
        for y in 100..<160 { for x in 100..<160 { for c in 0..<3 { mask.pixels[(y * 222 + x) * 3 + c] = 255 } } }
        try PNGWriter.write(mask, to: dir + "/masks/CMU-1-Small-Region.png")
        _ = try TileRun(config: config([Fixtures.svs], dir + "/ds") { $0.maskDir = dir + "/masks"; $0.minTissue = 0.99; $0.tileSize = 200 }).run()
        let m = try DatasetManifest.load(directory: dir + "/ds")
        // Whole 200-px tiles inside [1000, 1600)²: x, y ∈ {1000, 1200, 1400}.
        XCTAssertEqual(m.slides[0].samples, 9)
    }

    func testBlankSlideIsFlaggedAndSkipped() throws {
        let dir = Fixtures.tempDir(self)
        // A pyramid of pure glass: white with faint noise, no stain.
        XCTAssertEqual(try Fixtures.run("vips", ["gaussnoise", dir + "/noise.v", "1200", "900", "--mean", "245", "--sigma", "2"]).status, 0)
        XCTAssertEqual(try Fixtures.run("vips", ["cast", dir + "/noise.v", dir + "/grey.v", "uchar"]).status, 0)
        XCTAssertEqual(try Fixtures.run("vips", ["bandjoin", "\(dir)/grey.v \(dir)/grey.v \(dir)/grey.v", dir + "/glass.tif[tile,pyramid,compression=jpeg]"]).status, 0)
        _ = try TileRun(config: config([dir + "/glass.tif"], dir + "/ds") { $0.assumeMpp = 0.5 }).run()
        let record = try DatasetManifest.load(directory: dir + "/ds").slides[0]
        XCTAssertEqual(record.status, .skipped)
        XCTAssertTrue(record.flags.contains("almost-no-tissue"), "\(record.flags)")
        XCTAssertTrue(record.reason?.contains("tissue") ?? false)
    }

    func testInspectAndVerifyReportRealProblems() throws {
        let dir = Fixtures.tempDir(self) + "/ds"
        _ = try TileRun(config: config([Fixtures.svs, Fixtures.fixture("broken.svs")], dir) { $0.mpp = 0.5; $0.shardSize = 200_000 }).run()
        let report = try DatasetInspector.report(directory: dir)
        let m = try DatasetManifest.load(directory: dir)
        XCTAssertTrue(report.contains("CMU-1-Small-Region"))
        XCTAssertTrue(report.contains("\(m.samples) samples in \(m.shards.count) shards"))
        XCTAssertTrue(report.contains("1 done, 0 skipped, 1 failed"))
        XCTAssertEqual(try DatasetVerifier.verify(directory: dir), [])
        // Flip one byte inside the second shard's image data: verify names the shard and the sample.
        let shard = dir + "/shards/" + m.shards[1].name
        var data = try Data(contentsOf: URL(fileURLWithPath: shard))
        data[5000] ^= 0xFF
        try data.write(to: URL(fileURLWithPath: shard))
        let problems = try DatasetVerifier.verify(directory: dir)
        XCTAssertFalse(problems.isEmpty)
        XCTAssertTrue(problems.joined().contains(m.shards[1].name), problems.joined(separator: "\n"))
        // A stray file in shards/ is reported too.
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: dir + "/shards/shard-000099.tar"))
        XCTAssertTrue(try DatasetVerifier.verify(directory: dir).joined().contains("shard-000099.tar"))
    }

    /// A JPEG above the in-memory limit but small on disk goes the "whole" way too: every tile row
    /// must hold its own pixels.
    func testLargeMicroscopyJPEGTilesMatchTheImage() throws {
        let dir = Fixtures.tempDir(self)
        let big = dir + "/big.jpg"
        XCTAssertEqual(try Fixtures.run("vips", ["resize", Fixtures.fixture("ihc.png"), big + "[Q=85]", "5"]).status, 0)  // 2560², 6.5 MP
        _ = try TileRun(config: config([big], dir + "/ds") { $0.tissueMethod = .none; $0.minTissue = 0; $0.format = .png }).run()
        let reader = try DatasetReader(directory: dir + "/ds")
        XCTAssertEqual(reader.count, 100)
        let slide = try Slide.open(path: big)
        for i in [0, 11, 57, 99] {
            let r = try reader.record(i)
            let meta = try TileDecoding.metadata(r)
            XCTAssertEqual(try TileDecoding.image(r), try slide.readRegion(x: meta.x, y: meta.y, width: 256, height: 256), "tile \(i)")
        }
    }

    func testDuplicateNamesGetDistinctIds() throws {
        let dir = Fixtures.tempDir(self)
        for sub in ["a", "b", "c"] { try FileManager.default.createDirectory(atPath: dir + "/" + sub, withIntermediateDirectories: true) }
        for path in ["a/x.png", "b/x.png", "c/x_2.png"] {
            try FileManager.default.copyItem(atPath: Fixtures.fixture("ihc.png"), toPath: dir + "/" + path)
        }
        let ids = try SlideDiscovery.find([dir + "/a/x.png", dir + "/b/x.png", dir + "/c/x_2.png"]).map(\.id)
        XCTAssertEqual(ids, ["x", "x_2", "x_2_2"])
        XCTAssertEqual(Set(ids).count, 3)
    }

    func testSlideIdsAreSafeKeys() throws {
        XCTAssertEqual(SlideDiscovery.id(forRelativePath: "a/b/CMU-1.v2.svs"), "a__b__CMU-1_v2")
        XCTAssertEqual(SlideDiscovery.id(forRelativePath: "../../etc/passwd.png"), "etc__passwd")
        XCTAssertEqual(SlideDiscovery.id(forRelativePath: "Präparat 3.tif"), "Pr_parat_3")
    }
}
