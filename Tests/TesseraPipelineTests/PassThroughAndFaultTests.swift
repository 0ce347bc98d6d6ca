import Foundation
import TesseraCore
@testable import TesseraPipeline
import TesseraShards
import TesseraSlide
import TesseraTestSupport
import XCTest

final class PassThroughAndFaultTests: XCTestCase {
    /// Every sample of every shard in a dataset: key → member bytes by extension.
    func samples(_ dir: String) throws -> [String: [String: [UInt8]]] {
        let m = try DatasetManifest.load(directory: dir)
        var out: [String: [String: [UInt8]]] = [:]
        for s in m.shards {
            let url = URL(fileURLWithPath: dir + "/shards/" + s.name)
            let data = try Data(contentsOf: url)
            for e in try ShardIndex.load(from: ShardIndex.indexURL(forShardAt: url)).samples {
                out[e.key] = e.members.mapValues { [UInt8](data[$0[0]..<($0[0] + $0[1])]) }
            }
        }
        return out
    }

    func tile(_ input: String, _ out: String, size: Int, passThrough: Bool) throws {
        var c = TileConfig()
        c.inputs = [input]
        c.output = out
        c.tileSize = size
        c.quiet = true
        c.passThrough = passThrough
        c.minTissue = 0.3
        _ = try TileRun(config: c).run()
    }

    /// Where the grid is the slide's own JPEG tile grid, tiles are copied undecoded and still decode
    /// to exactly the pixels libvips gives; re-encoding (the other path) cannot be exact.
    func testAlignedJPEGTilesPassThroughAndDecodeExactly() throws {
        let dir = Fixtures.tempDir(self)
        let cases: [(String, Int)] = [(Fixtures.svs, 240), (try Fixtures.pyramid(self), 256)]  // Aperio RGB JPEG, libvips YCbCr JPEG
        for (n, (input, size)) in cases.enumerated() {
            try tile(input, dir + "/pt\(n)", size: size, passThrough: true)
            try tile(input, dir + "/re\(n)", size: size, passThrough: false)
            let pt = try samples(dir + "/pt\(n)"), re = try samples(dir + "/re\(n)")
            XCTAssertEqual(Set(pt.keys), Set(re.keys))
            XCTAssertGreaterThan(pt.count, 10)
            let slide = try Slide.open(path: input)
            var reencodedExact = 0
            for key in pt.keys.sorted() {
                let meta = try JSONDecoder().decode(SampleMetadata.self, from: Data(pt[key]!["json"]!))
                let truth = try slide.readRegion(x: meta.x, y: meta.y, width: size, height: size)
                XCTAssertEqual(try ImageDecoder.decodeRGB(pt[key]!["jpg"]!), truth, "\(input) \(key)")
                if try ImageDecoder.decodeRGB(re[key]!["jpg"]!) == truth { reencodedExact += 1 }
                XCTAssertEqual(pt[key]!["json"], re[key]!["json"])
            }
            XCTAssertLessThan(reencodedExact, pt.count, "re-encoding was lossless, so the exactness check proves nothing")
        }
    }

    func testUnalignedGridDoesNotPassThrough() throws {
        let dir = Fixtures.tempDir(self)
        try tile(Fixtures.svs, dir + "/a", size: 256, passThrough: true)
        try tile(Fixtures.svs, dir + "/b", size: 256, passThrough: false)
        XCTAssertEqual(try samples(dir + "/a"), try samples(dir + "/b"))
    }

    /// The real thing: `tessera tile` killed with SIGKILL at seeded random moments, rerun each time,
    /// ends byte-identical to an uninterrupted run, and `verify` passes.
    func testSigkillAndRerunGivesIdenticalDataset() throws {
        let binary = Fixtures.binary
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            return XCTFail("build the tool first (swift build): \(binary) missing")
        }
        let dir = Fixtures.tempDir(self)
        let inputs = [Fixtures.svs, Fixtures.fixture("ihc.png"), Fixtures.fixture("BloodImage_00000.jpg")]
        let args = ["tile"] + inputs + ["--tile-size", "256", "--stride", "96", "--format", "png", "--min-tissue", "0.1",
                             "--shard-size", "300KB", "--quiet", "--assume-mpp", "0.5", "--mpp", "0.5"]
        let reference = dir + "/reference"
        XCTAssertEqual(try Fixtures.run(binary, args + ["-o", reference]).status, 0)

        let killed = dir + "/killed"
        var rng = SplitMix64(seed: 20261122)
        var kills = 0
        for _ in 0..<4 {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: binary)
            p.arguments = args + ["-o", killed]
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            usleep(UInt32(200_000 + rng.next() % 1_500_000))
            if p.isRunning { kill(p.processIdentifier, SIGKILL); kills += 1 }
            p.waitUntilExit()
        }
        XCTAssertGreaterThan(kills, 0, "the run finished before any kill; make the job longer")
        let final = try Fixtures.run(binary, args + ["-o", killed])
        XCTAssertEqual(final.status, 0, final.err)
        let names = try FileManager.default.contentsOfDirectory(atPath: reference + "/shards").sorted()
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: killed + "/shards").sorted(), names)
        XCTAssertGreaterThan(names.count, 4)
        for name in names {
            XCTAssertEqual(FileManager.default.contents(atPath: killed + "/shards/" + name),
                           FileManager.default.contents(atPath: reference + "/shards/" + name), name)
        }
        XCTAssertEqual(try Fixtures.run(binary, ["verify", killed]).status, 0)
        let a = try DatasetManifest.load(directory: reference), b = try DatasetManifest.load(directory: killed)
        XCTAssertEqual(a.shards, b.shards)
        XCTAssertEqual(a.slides, b.slides)
    }

    /// A slide whose opening or reading hangs is stopped by the watchdog and marked failed; the
    /// others complete and the exit status says some failed.
    func testWatchdogStopsHangingSlides() throws {
        let binary = Fixtures.binary
        let dir = Fixtures.tempDir(self)
        for stage in ["open", "read"] {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: binary)
            p.arguments = ["tile", Fixtures.svs, Fixtures.fixture("ihc.png"), Fixtures.fixture("BloodImage_00000.jpg"),
                           "-o", dir + "/" + stage, "--tissue", "none", "--min-tissue", "0", "--slide-timeout", "2", "--quiet"]
            p.environment = ProcessInfo.processInfo.environment.merging(["TESSERA_FAULT_HANG": "\(stage):ihc"]) { $1 }
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            p.waitUntilExit()
            XCTAssertEqual(p.terminationStatus, 3, stage)
            let m = try DatasetManifest.load(directory: dir + "/" + stage)
            XCTAssertEqual(m.status, .complete)
            let ihc = m.slides.first { $0.id == "ihc" }
            XCTAssertEqual(ihc?.status, .failed)
            XCTAssertEqual(ihc?.errorKind, "timeout")
            XCTAssertTrue(ihc?.reason?.contains("watchdog") ?? false)
            XCTAssertEqual(m.slides.filter { $0.status == .done }.count, 2)
            XCTAssertEqual(try DatasetVerifier.verify(directory: dir + "/" + stage), [])
        }
    }

    /// Under a file-size limit (as on a full disk) the run stops with a "no space" error naming the
    /// file, leaves no incomplete shard under a final name, and a rerun with space completes.
    func testFullDiskStopsCleanlyAndResumes() throws {
        try XCTSkipIf(Fixtures.skipFileSizeLimitTests, "ThreadSanitizer's runtime cannot start under a file-size limit")
        let binary = Fixtures.binary
        let dir = Fixtures.tempDir(self)
        let args = "tile '\(Fixtures.svs)' -o '\(dir)/ds' --shard-size 300KB --tile-size 128 --format png --no-thumbnails --quiet"
        let limited = try Fixtures.run("bash", ["-c", "ulimit -f 200; exec '\(binary)' \(args)"])
        XCTAssertEqual(limited.status, 1)
        XCTAssertTrue(limited.err.contains("no space"), limited.err)
        XCTAssertTrue(limited.err.contains(dir + "/ds/shards/"), limited.err)
        let visible = try FileManager.default.contentsOfDirectory(atPath: dir + "/ds/shards").filter { $0.hasSuffix(".tar") }
        let m = try DatasetManifest.load(directory: dir + "/ds")
        XCTAssertEqual(Set(visible), Set(m.shards.map(\.name)))
        let rerun = try Fixtures.run("bash", ["-c", "exec '\(binary)' \(args)"])
        XCTAssertEqual(rerun.status, 0, rerun.err)
        XCTAssertEqual(try DatasetVerifier.verify(directory: dir + "/ds"), [])
        XCTAssertGreaterThan(try DatasetManifest.load(directory: dir + "/ds").shards.count, 5)
    }

    func testPipesAndDirectoriesAreNotSlides() throws {
        let dir = Fixtures.tempDir(self)
        XCTAssertEqual(mkfifo(dir + "/pipe.svs", 0o644), 0)
        XCTAssertThrowsError(try Slide.open(path: dir + "/pipe.svs")) {
            XCTAssertEqual(($0 as? TesseraError)?.kind, .unsupportedFormat)
        }
    }
}

