import Foundation
import TesseraCore
@testable import TesseraPipeline
import TesseraShards
import TesseraTestSupport
import XCTest

/// Partitioned tiling (`--partition I/N`, Slurm array env) and `tessera merge`: N processes plus a
/// merge give the single-machine dataset, byte for byte.
final class PartitionMergeTests: XCTestCase {
    static let binary = Fixtures.binary
    static let pbc = Fixtures.root + "/data/pbc-blood-cells"
    /// Every image gives tiles (no tissue filter), and shards are small so there are many.
    static let options = ["--tile-size", "160", "--tissue", "none", "--min-tissue", "0", "--shard-size", "200KB", "--quiet", "--workers", "1"]

    override func setUpWithError() throws {
        guard FileManager.default.isExecutableFile(atPath: Self.binary) else {
            throw XCTSkip("build the tool first (swift build): \(Self.binary) missing")
        }
    }

    func tile(_ inputs: [String], _ out: String, _ extra: [String] = []) throws -> (status: Int32, out: String, err: String) {
        try Fixtures.run(Self.binary, ["tile"] + inputs + Self.options + ["-o", out] + extra)
    }

    func files(_ dir: String) throws -> [String: Data] {
        var out: [String: Data] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: dir) {
            out[name] = try Data(contentsOf: URL(fileURLWithPath: dir + "/" + name))
        }
        return out
    }

    // MARK: - Merge equals a single machine

    func testThreeProcessesAndMergeGiveTheSingleMachineDataset() throws {
        let dir = Fixtures.tempDir(self)
        let inputs = [Self.pbc, Fixtures.svs, try Fixtures.pyramid(self)]
        let single = dir + "/single", multi = dir + "/multi"
        let s = try tile(inputs, single)
        XCTAssertEqual(s.status, 0, s.err)

        // Three array tasks as three concurrent processes.
        let tasks = try (0..<3).map { i -> Process in
            let p = Process()
            p.executableURL = URL(fileURLWithPath: Self.binary)
            p.arguments = ["tile"] + inputs + Self.options + ["-o", multi, "--partition", "\(i)/3"]
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            return p
        }
        for p in tasks { p.waitUntilExit(); XCTAssertEqual(p.terminationStatus, 0) }
        let merged = try Fixtures.run(Self.binary, ["merge", multi, "--quiet"])
        XCTAssertEqual(merged.status, 0, merged.err)

        // Shards and their indexes: byte-identical files under the same names.
        let a = try files(single + "/shards"), b = try files(multi + "/shards")
        XCTAssertGreaterThan(a.count, 10)
        XCTAssertEqual(a.keys.sorted(), b.keys.sorted())
        for (name, bytes) in a { XCTAssertEqual(bytes, b[name], name) }
        let ma = try DatasetManifest.load(directory: single), mb = try DatasetManifest.load(directory: multi)
        XCTAssertEqual(ma.shards, mb.shards)
        XCTAssertEqual(ma.slides, mb.slides)
        XCTAssertEqual(ma.inputs, mb.inputs)
        XCTAssertEqual(ma.configHash, mb.configHash)
        XCTAssertEqual(mb.merge?.missing, [])
        XCTAssertEqual(try files(single + "/thumbnails"), try files(multi + "/thumbnails"))

        // Same keys in the same order, same bytes per sample, through the reader.
        let ra = try DatasetReader(directory: single), rb = try DatasetReader(directory: multi)
        XCTAssertEqual(ra.count, rb.count)
        for i in 0..<ra.count { XCTAssertEqual(try ra.record(i), try rb.record(i)) }

        // The parts really were different processes' work, balanced by size.
        let parts = try (0..<3).map { try DatasetManifest.load(directory: multi + "/parts/part-000\($0)-of-0003") }
        XCTAssertEqual(parts.map(\.inputs.count).reduce(0, +), ma.inputs.count)
        XCTAssertTrue(parts.allSatisfy { !$0.inputs.isEmpty })

        // The merged dataset works with verify, read and the Python reader; ranks read disjoint sets.
        XCTAssertEqual(try Fixtures.run(Self.binary, ["verify", multi]).status, 0)
        XCTAssertEqual(try Fixtures.run(Self.binary, ["read", multi]).status, 0)
        let py = try Fixtures.run("python3", [Fixtures.root + "/scripts/tessera_dataset.py", multi, "--no-shuffle"])
        XCTAssertEqual(py.status, 0, py.err)
        XCTAssertEqual(py.out.split(separator: "\n").map(String.init), try (0..<rb.count).map { try rb.key(of: $0) })
        var seen: [Set<String>] = []
        for rank in 0..<3 {
            let r = try Fixtures.run("python3", [Fixtures.root + "/scripts/tessera_dataset.py", multi, "--seed", "5",
                                                 "--rank", "\(rank)", "--world-size", "3", "--drop-last"])
            XCTAssertEqual(r.status, 0, r.err)
            let keys = r.out.split(separator: "\n").map(String.init)
            XCTAssertEqual(Set(keys).count, keys.count)
            seen.append(Set(keys))
        }
        for i in 0..<3 { for j in (i + 1)..<3 { XCTAssertTrue(seen[i].isDisjoint(with: seen[j])) } }
        XCTAssertEqual(seen.map(\.count).reduce(0, +), rb.count / 3 * 3)

        // Merging again is a no-op.
        let again = try Fixtures.run(Self.binary, ["merge", multi])
        XCTAssertEqual(again.status, 0, again.err)
        XCTAssertTrue(again.out.contains("already merged"), again.out)
        XCTAssertEqual(try files(multi + "/shards"), b)
    }

    /// Swift readers: rank partitions of the merged dataset are disjoint and together cover it.
    func testRanksReadDisjointSetsCoveringAMergedDataset() throws {
        let dir = Fixtures.tempDir(self)
        let out = dir + "/ds"
        for i in 0..<2 { XCTAssertEqual(try tile([Self.pbc], out, ["--partition", "\(i)/2"]).status, 0) }
        _ = try DatasetMerge.run(directory: out, quiet: true)
        let reader = try DatasetReader(directory: out)
        var all: [Int] = []
        for rank in 0..<4 {
            var o = ReadOrder()
            o.seed = 11; o.rank = rank; o.worldSize = 4; o.dropLast = true
            all += Array(try reader.epoch(0, order: o))
        }
        XCTAssertEqual(Set(all).count, all.count)
        XCTAssertEqual(all.count, reader.count / 4 * 4)
    }

    /// A merge killed after some shards (manifest saved with a resume point, a temporary shard
    /// left behind) continues when rerun and ends byte-identical.
    func testInterruptedMergeContinues() throws {
        let dir = Fixtures.tempDir(self)
        let out = dir + "/ds"
        for i in 0..<2 { XCTAssertEqual(try tile([Self.pbc, Fixtures.svs], out, ["--partition", "\(i)/2"]).status, 0) }
        _ = try DatasetMerge.run(directory: out, quiet: true)
        let complete = try DatasetManifest.load(directory: out)
        let before = try files(out + "/shards")
        XCTAssertGreaterThan(complete.shards.count, 6)

        // The state a kill after the third shard leaves.
        var m = complete
        let kept = 3
        var left = complete.shards.prefix(kept).reduce(0) { $0 + $1.samples }
        var slide = 0
        while slide < complete.slides.count && left >= complete.slides[slide].samples {
            left -= complete.slides[slide].samples
            slide += 1
        }
        m.status = .inProgress
        m.resume = ResumePoint(slide: slide, samplesDone: left, nextShard: kept)
        m.slides = Array(complete.slides.prefix(slide))
        m.shards = Array(complete.shards.prefix(kept))
        try m.save(directory: out)
        for info in complete.shards.dropFirst(kept) {
            try FileManager.default.removeItem(atPath: out + "/shards/" + info.name)
            try FileManager.default.removeItem(atPath: out + "/shards/" + ShardIndex.indexName(forShard: info.name))
        }
        try Data("partial".utf8).write(to: URL(fileURLWithPath: out + "/shards/" + complete.shards[kept].name + ".tmp"))

        var lines: [String] = []
        let lock = NSLock()
        _ = try DatasetMerge.run(directory: out, quiet: true, log: { l in lock.withLock { lines.append(l) } })
        XCTAssertTrue(lines.contains { $0.contains("resuming merge: 3 complete shards") }, "\(lines)")
        XCTAssertEqual(try files(out + "/shards"), before)
        let resumed = try DatasetManifest.load(directory: out)
        XCTAssertEqual(resumed.shards, complete.shards)
        XCTAssertEqual(resumed.slides, complete.slides)
        XCTAssertEqual(resumed.status, .complete)
    }

    // MARK: - Missing, unfinished and killed parts

    func testMergeRefusesMissingPartsUnlessAllowPartial() throws {
        let dir = Fixtures.tempDir(self)
        let out = dir + "/ds"
        let inputs = [Self.pbc, Fixtures.svs]
        for i in [0, 2] { XCTAssertEqual(try tile(inputs, out, ["--partition", "\(i)/3"]).status, 0) }

        let refused = try Fixtures.run(Self.binary, ["merge", out])
        XCTAssertEqual(refused.status, 1)
        XCTAssertTrue(refused.err.contains("part-0001-of-0003: missing"), refused.err)
        XCTAssertTrue(refused.err.contains("--allow-partial"), refused.err)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out + "/manifest.json"))

        // An unfinished part is listed too.
        let started = out + "/parts/part-0001-of-0003"
        try FileManager.default.createDirectory(atPath: started, withIntermediateDirectories: true)
        XCTAssertTrue(try Fixtures.run(Self.binary, ["merge", out]).err.contains("part-0001-of-0003: started, but no manifest yet"))

        let partial = try Fixtures.run(Self.binary, ["merge", out, "--allow-partial", "--quiet"])
        XCTAssertEqual(partial.status, 3, partial.err)  // the missing part's slides count as failed
        XCTAssertTrue(partial.out.contains("left out (--allow-partial): part-0001-of-0003"), partial.out)
        let m = try DatasetManifest.load(directory: out)
        XCTAssertEqual(m.merge?.missing, ["part-0001-of-0003"])
        XCTAssertEqual(m.merge?.merged, ["part-0000-of-0003", "part-0002-of-0003"])
        // Every slide of the collection once, in the collection's order; the missing part's as failed.
        let collection = try SlideDiscovery.find(inputs)
        XCTAssertEqual(m.slides.map(\.id), collection.map(\.id))
        let missing = m.slides.filter { $0.errorKind == "missing-part" }
        XCTAssertEqual(missing.count, SlideAssignment.assign(collection, parts: 3)[1].count)
        XCTAssertTrue(missing.allSatisfy { $0.status == .failed && $0.samples == 0 })
        XCTAssertEqual(try DatasetVerifier.verify(directory: out), [])

        // Once the part is tiled, the merge starts over and completes.
        XCTAssertEqual(try tile(inputs, out, ["--partition", "1/3"]).status, 0)
        let full = try Fixtures.run(Self.binary, ["merge", out, "--quiet"])
        XCTAssertEqual(full.status, 0, full.err)
        let f = try DatasetManifest.load(directory: out)
        XCTAssertEqual(f.merge?.missing, [])
        XCTAssertTrue(f.slides.allSatisfy { $0.status == .done })
        XCTAssertEqual(try DatasetVerifier.verify(directory: out), [])
    }

    /// A part killed mid-way (an array task pre-empted) is rerun with the same command and ends
    /// byte-identical to an uninterrupted part; the part refuses a changed collection.
    func testKilledPartResumesAndRefusesAChangedCollection() throws {
        let dir = Fixtures.tempDir(self)
        let collection = dir + "/slides"
        try FileManager.default.createDirectory(atPath: collection, withIntermediateDirectories: true)
        for f in [Fixtures.svs, Fixtures.fixture("ihc.png")] {
            try FileManager.default.copyItem(atPath: f, toPath: collection + "/" + (f as NSString).lastPathComponent)
        }
        let args = ["tile", collection, "--tile-size", "128", "--stride", "96", "--format", "png", "--tissue", "none", "--min-tissue", "0",
                                        "--shard-size", "300KB", "--quiet", "--workers", "1", "--partition", "0/2"]
        XCTAssertEqual(try Fixtures.run(Self.binary, args + ["-o", dir + "/reference"]).status, 0)

        let killed = dir + "/killed"
        let part = killed + "/parts/part-0000-of-0002"
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.binary)
        p.arguments = args + ["-o", killed]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        // Kill it once it has completed a shard or two, but not the whole part.
        let deadline = Date().addingTimeInterval(60)
        while p.isRunning && Date() < deadline {
            if let m = try? DatasetManifest.load(directory: part), m.shards.count >= 2 { break }
            usleep(5_000)
        }
        let wasRunning = p.isRunning
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        XCTAssertTrue(wasRunning, "the part finished before it could be killed; make it longer")
        XCTAssertEqual(try DatasetManifest.load(directory: part).status, .inProgress)
        XCTAssertEqual(try Fixtures.run(Self.binary, ["merge", killed]).status, 1)  // unfinished: refused

        let rerun = try Fixtures.run(Self.binary, args + ["-o", killed])
        XCTAssertEqual(rerun.status, 0, rerun.err)
        let reference = dir + "/reference/parts/part-0000-of-0002"
        XCTAssertEqual(try files(part + "/shards"), try files(reference + "/shards"))
        XCTAssertEqual(try DatasetManifest.load(directory: part).shards, try DatasetManifest.load(directory: reference).shards)

        // The same command after a slide was added to the folder: this part's own slides are the same,
        // but the partitioning of the collection is not, so the part refuses rather than mixing two.
        try FileManager.default.copyItem(atPath: Fixtures.fixture("BloodImage_00000.jpg"), toPath: collection + "/BloodImage_00000.jpg")
        let changed = try Fixtures.run(Self.binary, args + ["-o", killed])
        XCTAssertEqual(changed.status, 1)
        XCTAssertTrue(changed.err.contains("input slides changed"), changed.err)
    }

    // MARK: - Assignment, partition syntax, Slurm environment

    func testAssignmentIsSizeBalancedDeterministicAndIndependentOfNameOrder() throws {
        var rng = SplitMix64(seed: 42)
        var inputs = (0..<60).map { i in InputFile(id: String(format: "s%02d", i), path: "/x/\(i).svs", bytes: Int(1 + rng.next() % 1_000_000)) }
        inputs.append(InputFile(id: "zz-huge", path: "/x/h.svs", bytes: 3_000_000))
        for parts in [1, 3, 7] {
            let a = SlideAssignment.assign(inputs, parts: parts)
            XCTAssertEqual(a.flatMap { $0 }.sorted(), Array(inputs.indices))
            XCTAssertTrue(a.allSatisfy { $0 == $0.sorted() }, "each part keeps the collection's order")
            let loads = a.map { $0.reduce(0) { $0 + inputs[$1].bytes } }
            // LPT: the heaviest part exceeds the lightest by at most one slide.
            XCTAssertLessThanOrEqual(loads.max()! - loads.min()!, 3_000_000)
            if parts == 3 { XCTAssertLessThan(Double(loads.max()!) / Double(loads.min()!), 1.1) }
            // Same (id, bytes) pairs in another order: same id → part.
            let shuffled = inputs.reversed().map { $0 }
            let b = SlideAssignment.assign(shuffled, parts: parts)
            func byId(_ x: [[Int]], _ xs: [InputFile]) -> [String: Int] {
                Dictionary(uniqueKeysWithValues: x.enumerated().flatMap { p, idx in idx.map { (xs[$0].id, p) } })
            }
            XCTAssertEqual(byId(a, inputs), byId(b, shuffled))
        }
        // Equal sizes: ties go by id, to the lightest part, lowest number first.
        let tied = ["c", "a", "b", "d"].map { InputFile(id: $0, path: $0, bytes: 10) }
        XCTAssertEqual(SlideAssignment.assign(tied, parts: 3), [[1, 3], [2], [0]])  // a, d | b | c
        // Not name order: the two big slides are split even though they sort together.
        let named = [("a", 100), ("b", 100), ("c", 1), ("d", 1)].map { InputFile(id: $0.0, path: $0.0, bytes: $0.1) }
        XCTAssertEqual(SlideAssignment.assign(named, parts: 2), [[0, 2], [1, 3]])
    }

    func testPartitionSyntaxDirectoryNamesAndConfigHash() throws {
        XCTAssertEqual(try Partition.parse("3/8"), try Partition(index: 3, count: 8))
        XCTAssertEqual(try Partition.parse("3/8").directoryName, "part-0003-of-0008")
        XCTAssertEqual(try Partition(index: 12345, count: 20000).directoryName, "part-12345-of-20000")
        XCTAssertEqual(Partition.fromDirectoryName("part-0003-of-0008"), try Partition(index: 3, count: 8))
        XCTAssertNil(Partition.fromDirectoryName("part-3-of-8"))
        for bad in ["8/8", "-1/8", "0/0", "1", "a/b", "1/2/3"] {
            XCTAssertThrowsError(try Partition.parse(bad), bad)
        }
        var c = TileConfig()
        c.inputs = ["x"]
        c.output = "/out"
        let whole = try c.hash()
        c.partition = try Partition.parse("1/4")
        XCTAssertNotEqual(try c.hash(), whole)
        XCTAssertEqual(try c.baseHash(), whole)
        XCTAssertEqual(c.datasetDirectory, "/out/parts/part-0001-of-0004")
        var d = c
        d.partition = try Partition.parse("1/5")
        XCTAssertNotEqual(try d.hash(), try c.hash())
        // Round trip through a config file's JSON.
        let decoded = try JSONDecoder().decode(TileConfig.self, from: JSONEncoder().encode(c))
        XCTAssertEqual(decoded.partition, c.partition)
    }

    func testSlurmArrayEnvironment() throws {
        func part(_ env: [String: String]) throws -> String? { try Partition.fromEnvironment(env)?.description }
        XCTAssertNil(try part([:]))
        XCTAssertNil(try part(["SLURM_JOB_ID": "77"]))  // a plain job, not an array
        XCTAssertEqual(try part(["SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_COUNT": "8"]), "3/8")
        XCTAssertEqual(try part(["SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_COUNT": "8", "SLURM_ARRAY_TASK_MIN": "0"]), "3/8")
        // --array=1-8: tasks 1…8 are parts 0…7.
        XCTAssertEqual(try part(["SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "8", "SLURM_ARRAY_TASK_MIN": "1"]), "0/8")
        XCTAssertEqual(try part(["SLURM_ARRAY_TASK_ID": "8", "SLURM_ARRAY_TASK_COUNT": "8", "SLURM_ARRAY_TASK_MIN": "1"]), "7/8")
        // --array=0-14:2
        XCTAssertEqual(try part(["SLURM_ARRAY_TASK_ID": "6", "SLURM_ARRAY_TASK_COUNT": "8", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_STEP": "2"]), "3/8")
        // Irregular or inconsistent arrays are refused, naming the way out.
        XCTAssertThrowsError(try part(["SLURM_ARRAY_TASK_ID": "9", "SLURM_ARRAY_TASK_COUNT": "3", "SLURM_ARRAY_TASK_MIN": "1"])) {
            XCTAssertTrue("\($0)".contains("--partition"), "\($0)")
        }
        XCTAssertThrowsError(try part(["SLURM_ARRAY_TASK_ID": "2"]))
        XCTAssertThrowsError(try part(["SLURM_ARRAY_TASK_ID": "x", "SLURM_ARRAY_TASK_COUNT": "3"]))

        // An explicit flag wins over the environment; "none" turns partitioning off; else the config file's.
        let env = ["SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_COUNT": "8"]
        let configured = try Partition.parse("1/2")
        XCTAssertEqual(try Partition.resolve(flag: "2/5", environment: env, configured: configured)?.description, "2/5")
        XCTAssertNil(try Partition.resolve(flag: "none", environment: env, configured: configured))
        XCTAssertEqual(try Partition.resolve(flag: nil, environment: env, configured: configured)?.description, "3/8")
        XCTAssertEqual(try Partition.resolve(flag: nil, environment: [:], configured: configured)?.description, "1/2")
    }

    /// The CLI picks the partition up from a Slurm array task's environment.
    func testTileReadsTheArrayTaskFromTheEnvironment() throws {
        let dir = Fixtures.tempDir(self)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.binary)
        p.arguments = ["tile", Self.pbc] + Self.options + ["-o", dir + "/ds"]
        p.environment = ProcessInfo.processInfo.environment.merging(
            ["SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_MIN": "2"]) { $1 }
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0)
        let m = try DatasetManifest.load(directory: dir + "/ds/parts/part-0003-of-0004")
        XCTAssertEqual(m.partition?.index, 3)
        XCTAssertEqual(m.partition?.count, 4)
    }
}
