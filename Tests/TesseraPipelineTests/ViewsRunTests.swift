import Foundation
import TesseraAugment
import TesseraCore
@testable import TesseraPipeline
@testable import TesseraShards
import TesseraSlide
import TesseraTestSupport
import XCTest

/// `tessera views` on real tiles: the 12 bundled platelet images of the PBC collection.
final class ViewsRunTests: XCTestCase {
    func dataset() throws -> String { try Self.dataset(self) }

    /// Tiles bundled PBC images (default: the 12 platelets) whole-image, labelled by folder.
    static func dataset(_ test: XCTestCase, input: String = "/data/pbc-blood-cells/platelet") throws -> String {
        let dir = Fixtures.tempDir(test) + "/pbc"
        var c = TileConfig()
        c.inputs = [Fixtures.root + input]
        c.output = dir
        c.quiet = true
        c.tissueMethod = .none
        c.minTissue = 0
        c.labelsFromFolders = true
        _ = try TileRun(config: c).run()
        return dir
    }

    func testMaterializedViewsAreDeterministicReadableShards() throws {
        let ds = try dataset()
        let recipe = try XCTUnwrap(try PipelineFile.load(path: Fixtures.root + "/pipelines/simclr.yaml").views)
        var o = ViewsRun.Options()
        o.epochs = 2
        o.seed = 5
        o.quiet = true
        o.workers = 1
        let out1 = Fixtures.tempDir(self) + "/v1", out2 = Fixtures.tempDir(self) + "/v2"
        let s = try ViewsRun.materialize(dataset: ds, recipe: recipe, output: out1, options: o)
        XCTAssertEqual(s.samples, 24)
        o.workers = 2
        _ = try ViewsRun.materialize(dataset: ds, recipe: recipe, output: out2, options: o)
        let m1 = try DatasetManifest.load(directory: out1), m2 = try DatasetManifest.load(directory: out2)
        XCTAssertEqual(m1.shards.map(\.sha256), m2.shards.map(\.sha256), "worker count changed the views")
        XCTAssertEqual(try DatasetVerifier.verify(directory: out1), [])
        // Every sample holds its two views; they are exactly what the generator makes for (seed, epoch, sample).
        let reader = try DatasetReader(directory: out1)
        let source = try DatasetReader(directory: ds)
        let generator = try ViewGenerator(recipe: recipe, seed: 5)
        let r = try reader.record(3)   // tile 1, epoch 1
        XCTAssertEqual(r.key, try source.key(of: 1) + "_e1")
        let tile = try TileDecoding.image(try source.record(1))
        let expected = generator.views(of: tile, sample: 1, epoch: 1)
        XCTAssertEqual(try ImageDecoder.decodeRGB(try XCTUnwrap(r.members["v00.png"])), expected[0])
        XCTAssertEqual(try ImageDecoder.decodeRGB(try XCTUnwrap(r.members["v01.png"])), expected[1])
        XCTAssertEqual(reader.slideId(of: 3), source.slideId(of: 1))
        // Leftovers of a killed run (no manifest yet) are cleared, not mixed in.
        let killed = Fixtures.tempDir(self) + "/killed"
        try FileManager.default.createDirectory(atPath: killed + "/shards", withIntermediateDirectories: true)
        for name in ["shard-000000.tar.tmp", "shard-000007.tar", "shard-000007.idx"] {
            try Data("partial".utf8).write(to: URL(fileURLWithPath: killed + "/shards/" + name))
        }
        _ = try ViewsRun.materialize(dataset: ds, recipe: recipe, output: killed, options: o)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: killed + "/shards").sorted(), ["shard-000000.idx", "shard-000000.tar"])
        XCTAssertEqual(try DatasetManifest.load(directory: killed).shards.map(\.sha256), m1.shards.map(\.sha256))
        // The same command rerun on its complete output is a no-op (a kill that came too late);
        // a run with other settings into that directory is refused, not mixed in.
        let again = try ViewsRun.materialize(dataset: ds, recipe: recipe, output: out1, options: o)
        XCTAssertEqual(again.shards, m1.shards.count)
        XCTAssertEqual(try DatasetManifest.load(directory: out1).shards, m1.shards)
        var other = o
        other.seed += 1
        XCTAssertThrowsError(try ViewsRun.materialize(dataset: ds, recipe: recipe, output: out1, options: other)) {
            XCTAssertTrue("\($0)".contains("already holds a dataset"), "\($0)")
        }
    }

    func testBenchmarkRunsAnEpochThroughTheLoaderInAFreshProcess() throws {
        // A process that never opened a slide: worker threads end without libvips having started.
        let ds = try dataset()
        let r = try Fixtures.run(Fixtures.binary, ["views", ds, "--recipe", "simclr", "--benchmark", "--workers", "2", "--batch-size", "5"],
                                 cwd: Fixtures.root)
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertTrue(r.out.contains("\"samples\": 12,"), r.out)
        // It names the kernel build it ran; env caps it to the baseline.
        XCTAssertTrue(["avx512", "avx2", "baseline"].contains { r.out.contains("\"kernels\": \"\($0)\"") }, r.out)
        let capped = try Fixtures.run("/usr/bin/env", ["TESSERA_VIEW_KERNELS=baseline", Fixtures.binary, "views", ds, "--recipe", "simclr",
                                                       "--benchmark", "--workers", "1", "--limit", "5"], cwd: Fixtures.root)
        XCTAssertEqual(capped.status, 0, capped.err)
        XCTAssertTrue(capped.out.contains("\"kernels\": \"baseline\""), capped.out)
    }

    func testPreviewShowsEachTileWithAllItsViews() throws {
        let ds = try dataset()
        let png = Fixtures.tempDir(self) + "/p.png"
        let r = try Fixtures.run(Fixtures.binary, ["views", ds, "--recipe", Fixtures.root + "/pipelines/dino.yaml", "--preview", "2", "--out", png])
        XCTAssertEqual(r.status, 0, r.err)
        let im = try ImageDecoder.readRGB(path: png)
        // Two rows of tile (256) + 2 global (224) + 8 local (96), 6 px apart.
        XCTAssertEqual(im.width, 256 + 2 * 224 + 8 * 96 + 10 * 6)
        XCTAssertEqual(im.height, 2 * 256 + 12)
    }
}

final class ViewBatchLoaderTests: XCTestCase {
    func testBatchesAreStableAcrossWorkerCountsAndLaidOutViewMajor() throws {
        let ds = try ViewsRunTests.dataset(self)
        let recipe = try XCTUnwrap(try PipelineFile.load(path: Fixtures.root + "/pipelines/dino.yaml").views)
        func all(_ workers: Int) throws -> [ViewBatch] {
            let loader = try ViewsRun.loader(dataset: ds, recipe: recipe, seed: 9, epoch: 1, batchSize: 5, workers: workers)
            var out: [ViewBatch] = []
            while let b = try loader.next() { out.append(b) }
            return out
        }
        let one = try all(1), two = try all(2)
        XCTAssertEqual(one.map(\.samples), [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9], [10, 11]])
        XCTAssertEqual(one.map(\.tensors), two.map(\.tensors), "worker count changed the batches")
        XCTAssertEqual(one[0].shapes, [[10, 3, 224, 224], [40, 3, 96, 96]])
        XCTAssertEqual(one[0].tensors[0].count, 10 * 3 * 224 * 224)
        // View-major: row v·B + s of a group tensor is view v of sample s.
        let reader = try DatasetReader(directory: ds)
        let gen = try ViewGenerator(recipe: recipe, seed: 9)
        let t = gen.tensors(of: try TileDecoding.image(try reader.record(3)), sample: 3, epoch: 1)
        let per = 3 * 224 * 224
        XCTAssertEqual(Array(one[0].tensors[0][((1 * 5 + 3) * per)..<((1 * 5 + 4) * per)]), t[1])
        let perLocal = 3 * 96 * 96
        XCTAssertEqual(Array(one[0].tensors[1][((7 * 5 + 3) * perLocal)..<((7 * 5 + 4) * perLocal)]), t[2 + 7])
    }

    /// A sample that cannot be read fails its own batch with the reader's error (after the samples
    /// before it were rendered); the batches around it are unaffected and in order.
    func testAnUnreadableSampleFailsOnlyItsBatch() throws {
        let ds = try ViewsRunTests.dataset(self)
        let recipe = try XCTUnwrap(try PipelineFile.load(path: Fixtures.root + "/pipelines/simclr.yaml").views)
        let reader = try DatasetReader(directory: ds)
        let loader = try ViewBatchLoader(samples: Array(0..<9), epoch: 0, generator: try ViewGenerator(recipe: recipe, seed: 3),
                                         batchSize: 3, workers: 2) { i in
            if i == 4 { throw TesseraError(.corrupt, "sample \(i): truncated JPEG") }
            return try TileDecoding.image(try reader.record(i))
        }
        XCTAssertEqual(try loader.next()?.samples, [0, 1, 2])
        XCTAssertThrowsError(try loader.next()) { error in
            XCTAssertTrue("\(error)".contains("sample 4: truncated JPEG"), "\(error)")
        }
        let last = try XCTUnwrap(try loader.next())
        XCTAssertEqual(last.samples, [6, 7, 8])
        let gen = try ViewGenerator(recipe: recipe, seed: 3)
        let t = gen.tensors(of: try TileDecoding.image(try reader.record(7)), sample: 7, epoch: 0)
        let per = 3 * 224 * 224
        XCTAssertEqual(Array(last.tensors[0][(1 * per)..<(2 * per)]), t[0], "sample 7 (second of its batch), view 0")
        XCTAssertNil(try loader.next())
    }

    /// A loader dropped (or cancelled) before the end of its epoch ends its worker threads instead
    /// of leaving them blocked on a queue nobody reads.
    func testADroppedOrCancelledLoaderStopsItsThreads() throws {
        let ds = try ViewsRunTests.dataset(self)
        let recipe = try XCTUnwrap(try PipelineFile.load(path: Fixtures.root + "/pipelines/simclr.yaml").views)
        let reader = try DatasetReader(directory: ds)
        for dropInsteadOfCancel in [true, false] {
            let exited = ExitCounter()
            var loader: ViewBatchLoader? = try ViewBatchLoader(samples: Array(0..<12), epoch: 0,
                                                               generator: try ViewGenerator(recipe: recipe, seed: 5), batchSize: 1,
                                                               workers: 2, prefetch: 2, threadExit: { exited.add() }) { i in
                try TileDecoding.image(try reader.record(i))
            }
            XCTAssertEqual(try loader?.next()?.samples, [0])
            if dropInsteadOfCancel { loader = nil } else {
                loader?.cancel()
                XCTAssertNil(try loader?.next(), "a cancelled loader serves nothing more")
            }
            // The cancelled loader is kept alive until its workers are seen to end, so that its
            // deinit cannot be what stopped them.
            withExtendedLifetime(loader) {
                let deadline = Date().addingTimeInterval(60)
                while exited.count < 2 && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
                XCTAssertEqual(exited.count, 2, dropInsteadOfCancel ? "workers still running after the loader was dropped" : "after cancel()")
            }
        }
    }
}

/// Counts worker-thread exits (called from the workers).
final class ExitCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    func add() { lock.lock(); n += 1; lock.unlock() }
    var count: Int { lock.lock(); defer { lock.unlock() }; return n }
}
