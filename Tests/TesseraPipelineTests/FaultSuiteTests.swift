import Foundation
import TesseraCore
@testable import TesseraPipeline
import TesseraShards
import TesseraTestSupport
import TesseraTrain
import XCTest

/// The fast part of the fault suite (scripts/fault/kill-resume is the slow one): the built `tessera`
/// binary killed with SIGKILL and rerun, and two processes on one output. Tiling under kills, the
/// watchdog and a full disk are in PassThroughAndFaultTests.
final class FaultSuiteTests: XCTestCase {
    static let binary = Fixtures.binary

    override func setUpWithError() throws {
        guard FileManager.default.isExecutableFile(atPath: Self.binary) else {
            throw XCTSkip("build the tool first (swift build): \(Self.binary) missing")
        }
    }

    /// Starts the tool; the caller kills or waits.
    func start(_ args: [String]) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.binary)
        p.arguments = args
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        return p
    }

    /// Runs `args` and kills it with SIGKILL after each of `delays` seconds (rerunning after each kill),
    /// calling `check` after every kill; returns how many runs were really killed (not finished first).
    func killRepeatedly(_ args: [String], delays: [Double], check: () throws -> Void = {}) throws -> Int {
        var kills = 0
        for d in delays {
            let p = try start(args)
            usleep(UInt32(d * 1_000_000))
            if p.isRunning { kill(p.processIdentifier, SIGKILL); kills += 1 }
            p.waitUntilExit()
            try check()
        }
        return kills
    }

    func seconds(_ body: () throws -> Void) rethrows -> Double {
        let t = Date()
        try body()
        return Date().timeIntervalSince(t)
    }

    func trainPipeline(dataset: String, output: String, checkpointEvery: Int) throws -> String {
        let path = Fixtures.tempDir(self) + "/train.yaml"
        try TrainRunTests.pipelineText(dataset: dataset, output: output, epochs: 3, extra: "  checkpoint_every: \(checkpointEvery)")
            .write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// A real process killed at seeded moments mid-training, resumed with --resume each time, ends with
    /// the uninterrupted run's checkpoint byte for byte and the same log rows; a checkpoint visible
    /// after any kill always loads.
    func testKilledTrainProcessResumesByteIdentically() throws {
        let ds = try TrainRunTests.dataset(self)
        let base = Fixtures.tempDir(self)
        let ref = try trainPipeline(dataset: ds, output: base + "/ref", checkpointEvery: 0)
        var status: Int32 = -1
        let t = try seconds { status = try Fixtures.run(Self.binary, ["train", ref, "--quiet", "--workers", "2"]).status }
        XCTAssertEqual(status, 0)
        let killed = try trainPipeline(dataset: ds, output: base + "/killed", checkpointEvery: 1)
        var rng = SplitMix64(seed: 909)
        let delays = (0..<3).map { _ in t * (0.2 + Double(rng.next() % 1000) / 4000) }
        let kills = try killRepeatedly(["train", killed, "--resume", "--quiet", "--workers", "2"], delays: delays) {
            if FileManager.default.fileExists(atPath: base + "/killed/checkpoint.safetensors") {
                XCTAssertNoThrow(try Checkpoint.read(base + "/killed/checkpoint.safetensors"))
            }
        }
        XCTAssertGreaterThan(kills, 0, "training finished before every kill")
        let final = try Fixtures.run(Self.binary, ["train", killed, "--resume", "--quiet", "--workers", "2"])
        XCTAssertEqual(final.status, 0, final.err)
        XCTAssertEqual(FileManager.default.contents(atPath: base + "/killed/checkpoint.safetensors"),
                       FileManager.default.contents(atPath: base + "/ref/checkpoint.safetensors"))
        func rows(_ dir: String) throws -> [String] {
            try String(contentsOfFile: dir + "/train-log.csv", encoding: .utf8).split(separator: "\n")
                .map { $0.split(separator: ",").dropLast().joined(separator: ",") }
        }
        XCTAssertEqual(try rows(base + "/killed"), try rows(base + "/ref"))
    }

    /// `tessera views` killed mid-materialization never shows a shard under its final name that differs
    /// from the uninterrupted run's, and the rerun ends byte-identical.
    func testKilledViewsRerunIsByteIdenticalAndNeverShowsAPartialShard() throws {
        let ds = try TrainRunTests.dataset(self)
        let base = Fixtures.tempDir(self)
        let recipe = try trainPipeline(dataset: ds, output: base + "/unused", checkpointEvery: 0)
        let args = ["views", ds, "--recipe", recipe, "--epochs", "3", "--workers", "2", "--quiet"]
        var status: Int32 = -1
        let t = try seconds { status = try Fixtures.run(Self.binary, args + ["--out", base + "/ref"]).status }
        XCTAssertEqual(status, 0)
        let refNames = try FileManager.default.contentsOfDirectory(atPath: base + "/ref/shards").filter { !$0.hasPrefix(".") }.sorted()
        XCTAssertGreaterThan(refNames.count, 1)
        var rng = SplitMix64(seed: 77)
        let delays = (0..<3).map { _ in t * (0.3 + Double(rng.next() % 1000) / 1600) }
        var seen = 0
        let kills = try killRepeatedly(args + ["--out", base + "/killed"], delays: delays) {
            for name in (try? FileManager.default.contentsOfDirectory(atPath: base + "/killed/shards")) ?? []
            where name.hasSuffix(".tar") || name.hasSuffix(".idx") {
                seen += 1
                XCTAssertEqual(FileManager.default.contents(atPath: base + "/killed/shards/" + name),
                               FileManager.default.contents(atPath: base + "/ref/shards/" + name), "\(name) visible but incomplete")
            }
        }
        XCTAssertGreaterThan(kills, 0)
        let final = try Fixtures.run(Self.binary, args + ["--out", base + "/killed"])
        XCTAssertEqual(final.status, 0, final.err)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: base + "/killed/shards").filter { !$0.hasPrefix(".") }.sorted(), refNames)
        for name in refNames {
            XCTAssertEqual(FileManager.default.contents(atPath: base + "/killed/shards/" + name),
                           FileManager.default.contents(atPath: base + "/ref/shards/" + name), name)
        }
        XCTAssertEqual(try DatasetManifest.load(directory: base + "/killed").shards, try DatasetManifest.load(directory: base + "/ref").shards)
        XCTAssertEqual(try Fixtures.run(Self.binary, ["verify", base + "/killed"]).status, 0)
    }

    /// Runs the tool under a file-size limit of `kilobytes` (RLIMIT_FSIZE: writes past it fail as on a
    /// full disk).
    func runLimited(_ kilobytes: Int, _ args: [String]) throws -> (status: Int32, out: String, err: String) {
        let quoted = args.map { "'" + $0 + "'" }.joined(separator: " ")
        return try Fixtures.run("bash", ["-c", "ulimit -f \(kilobytes); exec '\(Self.binary)' \(quoted)"])
    }

    /// `tessera views` on a full disk: a "no space" error naming the output, no shard under a final
    /// name that differs from an uninterrupted run's, and a rerun with space ends byte-identical.
    func testViewsOnAFullDiskStopCleanlyAndRerunIdentically() throws {
        try XCTSkipIf(Fixtures.skipFileSizeLimitTests, "ThreadSanitizer's runtime cannot start under a file-size limit")
        let ds = try TrainRunTests.dataset(self)
        let base = Fixtures.tempDir(self)
        let recipe = try trainPipeline(dataset: ds, output: base + "/unused", checkpointEvery: 0)
        let args = ["views", ds, "--recipe", recipe, "--epochs", "2", "--workers", "2", "--quiet", "--shard-size", "64KB"]
        XCTAssertEqual(try Fixtures.run(Self.binary, args + ["--out", base + "/ref"]).status, 0)
        let full = try runLimited(48, args + ["--out", base + "/full"])
        XCTAssertEqual(full.status, 1, full.err)
        XCTAssertTrue(full.err.contains("no space"), full.err)
        XCTAssertTrue(full.err.contains(base + "/full"), full.err)
        for name in try FileManager.default.contentsOfDirectory(atPath: base + "/full/shards") where !name.hasPrefix(".") {
            XCTAssertEqual(FileManager.default.contents(atPath: base + "/full/shards/" + name),
                           FileManager.default.contents(atPath: base + "/ref/shards/" + name), "\(name) visible but incomplete")
        }
        let rerun = try Fixtures.run(Self.binary, args + ["--out", base + "/full"])
        XCTAssertEqual(rerun.status, 0, rerun.err)
        let names = try FileManager.default.contentsOfDirectory(atPath: base + "/ref/shards").filter { !$0.hasPrefix(".") }.sorted()
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: base + "/full/shards").filter { !$0.hasPrefix(".") }.sorted(), names)
        for name in names {
            XCTAssertEqual(FileManager.default.contents(atPath: base + "/full/shards/" + name),
                           FileManager.default.contents(atPath: base + "/ref/shards/" + name), name)
        }
    }

    /// `tessera train` on a full disk: a "no space" error naming the checkpoint, no damaged checkpoint
    /// left behind, the output lock released, and a resumed run with space ends byte-identical.
    func testTrainingOnAFullDiskStopsCleanlyAndResumes() throws {
        try XCTSkipIf(Fixtures.skipFileSizeLimitTests, "ThreadSanitizer's runtime cannot start under a file-size limit")
        let ds = try TrainRunTests.dataset(self)
        let base = Fixtures.tempDir(self)
        let ref = try trainPipeline(dataset: ds, output: base + "/ref", checkpointEvery: 0)
        XCTAssertEqual(try Fixtures.run(Self.binary, ["train", ref, "--quiet"]).status, 0)
        let size = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: base + "/ref/checkpoint.safetensors")[.size] as? Int)
        let full = try trainPipeline(dataset: ds, output: base + "/full", checkpointEvery: 1)
        let r = try runLimited(max(1, size / 2048), ["train", full, "--quiet"])
        XCTAssertEqual(r.status, 1, r.err)
        XCTAssertTrue(r.err.contains("no space"), r.err)
        XCTAssertTrue(r.err.contains(base + "/full/checkpoint.safetensors"), r.err)
        XCTAssertFalse(FileManager.default.fileExists(atPath: base + "/full/checkpoint.safetensors"))
        let resumed = try Fixtures.run(Self.binary, ["train", full, "--resume", "--quiet"])
        XCTAssertEqual(resumed.status, 0, resumed.err)
        XCTAssertEqual(FileManager.default.contents(atPath: base + "/full/checkpoint.safetensors"),
                       FileManager.default.contents(atPath: base + "/ref/checkpoint.safetensors"))
    }

    /// Waits until process `p` holds the lock of `dir` (it writes its pid into the lock file once locked).
    func waitForLock(_ dir: String, _ p: Process) throws {
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline && p.isRunning {
            if let s = try? String(contentsOfFile: dir + "/.tessera.lock", encoding: .utf8), s == "\(p.processIdentifier)\n" { return }
            usleep(20_000)
        }
        XCTFail("the first process never took the lock on \(dir)")
    }

    /// Two processes on one output: the second refuses with a clear message and writes nothing; the
    /// first completes untouched. For `tile` and for `train` (which had no lock before this suite).
    func testSecondProcessOnTheSameOutputRefuses() throws {
        let base = Fixtures.tempDir(self)
        let tileArgs = ["tile", Fixtures.svs, "-o", base + "/ds", "--tile-size", "64", "--stride", "32", "--format", "png",
                        "--min-tissue", "0", "--tissue", "none", "--no-thumbnails", "--workers", "1", "--quiet"]
        let first = try start(tileArgs)
        try waitForLock(base + "/ds", first)
        let second = try Fixtures.run(Self.binary, tileArgs)
        XCTAssertTrue(first.isRunning, "the first run ended too soon for the test to mean anything")
        XCTAssertNotEqual(second.status, 0)
        XCTAssertTrue(second.err.contains("another tessera process"), second.err)
        XCTAssertTrue(second.err.contains(base + "/ds"), second.err)
        first.waitUntilExit()
        XCTAssertEqual(first.terminationStatus, 0)
        XCTAssertEqual(try DatasetVerifier.verify(directory: base + "/ds"), [])
        // The lock died with the first process: a third run on the complete dataset is a no-op, not refused.
        XCTAssertEqual(try Fixtures.run(Self.binary, tileArgs).status, 0)

        let ds = try TrainRunTests.dataset(self)
        let yaml = try trainPipeline(dataset: ds, output: base + "/train", checkpointEvery: 0)
        let trainer = try start(["train", yaml, "--quiet", "--workers", "1", "--epochs", "20"])
        try waitForLock(base + "/train", trainer)
        let other = try Fixtures.run(Self.binary, ["train", yaml, "--resume", "--quiet"])
        XCTAssertTrue(trainer.isRunning)
        XCTAssertNotEqual(other.status, 0)
        XCTAssertTrue(other.err.contains("another tessera process is training"), other.err)
        kill(trainer.processIdentifier, SIGKILL)
        trainer.waitUntilExit()
        // Killed: the kernel released the lock, so the run resumes.
        let resumed = try Fixtures.run(Self.binary, ["train", yaml, "--resume", "--quiet", "--max-steps", "1", "--epochs", "20"])
        XCTAssertEqual(resumed.status, 0, resumed.err)
    }
}
