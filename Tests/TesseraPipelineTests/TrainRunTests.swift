import Foundation
import TesseraCore
@testable import TesseraPipeline
import TesseraTestSupport
import TesseraTrain
import XCTest

/// `tessera train` end to end on the 96 bundled PBC images: determinism across worker counts,
/// a killed-and-resumed run identical to an uninterrupted one, refusals, and PyTorch loading the checkpoint.
final class TrainRunTests: XCTestCase {
    /// All 96 bundled PBC images, one tile each.
    static func dataset(_ test: XCTestCase) throws -> String {
        try ViewsRunTests.dataset(test, input: "/data/pbc-blood-cells")
    }

    func pipeline(dataset: String, output: String, method: String = "simclr", extra: String = "") throws -> PipelineFile {
        try Self.pipeline(self, dataset: dataset, output: output, method: method, extra: extra)
    }

    /// A tiny SimCLR/DINO/triplet run (ConvNet 8→16 at 24 px, batch 16) as pipeline-file text.
    static func pipelineText(dataset: String, output: String, method: String = "simclr", epochs: Int = 2, extra: String = "") -> String {
        """
        name: train-test
        views:
          crops:
            - {name: view, count: 2, size: 24, scale: [0.3, 1.0], hflip: 0.5, rot90: 0.75,
               jitter: {p: 0.8, brightness: 0.4, contrast: 0.4, saturation: 0.4, hue: 0.1}, grayscale: 0.2}
          normalize: {mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225]}
        train:
          dataset: \(dataset)
          output: \(output)
          method: \(method)
          backbone: "convnet:8,16"
          epochs: \(epochs)
          batch_size: 16
          lr: 0.1
          warmup_epochs: 0.5
          projection_hidden: 16
          projection_dim: 8
          prototypes: 32
          dino_hidden: 16
          bottleneck: 8
          seed: 3
        \(extra)
        """
    }

    static func pipeline(_ test: XCTestCase, dataset: String, output: String, method: String = "simclr", extra: String = "") throws -> PipelineFile {
        let path = Fixtures.tempDir(test) + "/\(UUID().uuidString).yaml"
        try pipelineText(dataset: dataset, output: output, method: method, extra: extra).write(toFile: path, atomically: true, encoding: .utf8)
        return try PipelineFile.load(path: path)
    }

    func run(_ p: PipelineFile, workers: Int, resume: Bool = false, maxSteps: Int? = nil) throws -> TrainRun.Summary {
        var c = try XCTUnwrap(p.train)
        c.workers = workers
        var o = TrainRun.Options()
        o.quiet = true
        o.resume = resume
        o.maxSteps = maxSteps
        return try TrainRun.run(c, recipe: try XCTUnwrap(p.views), options: o)
    }

    func logWithoutTiming(_ dir: String) throws -> [String] {
        try String(contentsOfFile: dir + "/train-log.csv", encoding: .utf8).split(separator: "\n")
            .map { $0.split(separator: ",").dropLast().joined(separator: ",") }
    }

    func testResumedRunEqualsUninterruptedForAnyWorkerCount() throws {
        let ds = try Self.dataset(self)
        let base = Fixtures.tempDir(self)
        let a = try run(try pipeline(dataset: ds, output: base + "/a"), workers: 1)
        XCTAssertEqual(a.steps, 12)   // 96 tiles / 16 per batch × 2 epochs
        XCTAssertTrue(a.finalLoss.isFinite)
        // Killed after 5 steps (mid-epoch, between checkpoints: checkpoint_every 2), then resumed, with 2 workers.
        let pb = try pipeline(dataset: ds, output: base + "/b", extra: "  checkpoint_every: 2")
        var pa = pb
        pa.train?.checkpointEvery = 0
        _ = try run(pb, workers: 2, maxSteps: 5)
        let c = try Checkpoint.read(base + "/b/checkpoint.safetensors")
        XCTAssertEqual(c.metadata["step"], "5")   // maxSteps saves its position
        let b = try run(pb, workers: 2, resume: true)
        XCTAssertEqual(b.steps, 7)
        let bytesA = try Data(contentsOf: URL(fileURLWithPath: base + "/a/checkpoint.safetensors"))
        let bytesB = try Data(contentsOf: URL(fileURLWithPath: base + "/b/checkpoint.safetensors"))
        XCTAssertEqual(bytesA, bytesB, "a resumed run (2 workers) differs from an uninterrupted one (1 worker)")
        XCTAssertEqual(try logWithoutTiming(base + "/a"), try logWithoutTiming(base + "/b"))
        XCTAssertEqual(try logWithoutTiming(base + "/a").count, 13)
        for png in ["loss.png", "lr.png"] { XCTAssertTrue(FileManager.default.fileExists(atPath: base + "/a/" + png)) }
        _ = pa
    }

    func testRefusesToOverwriteOrResumeWithOtherSettings() throws {
        let ds = try Self.dataset(self)
        let out = Fixtures.tempDir(self) + "/run"
        _ = try run(try pipeline(dataset: ds, output: out), workers: 1, maxSteps: 2)
        XCTAssertThrowsError(try run(try pipeline(dataset: ds, output: out), workers: 1)) { e in
            XCTAssertTrue("\(e)".contains("--resume"), "\(e)")
        }
        var other = try pipeline(dataset: ds, output: out)
        other.train?.settings.learningRate = 0.05
        XCTAssertThrowsError(try run(other, workers: 1, resume: true)) { e in
            XCTAssertTrue("\(e)".contains("other training settings"), "\(e)")
        }
        XCTAssertThrowsError(try pipeline(dataset: ds, output: out, extra: "  learning_rate: 0.1")) { e in
            XCTAssertTrue("\(e)".contains("learning_rate"), "\(e)")
        }
        XCTAssertThrowsError(try run(try pipeline(dataset: ds, output: out + "2", extra: "  batch_size: 1000"), workers: 1)) { e in
            XCTAssertTrue("\(e)".contains("batch"), "\(e)")
        }
    }

    func testDINOAndTripletTrain() throws {
        let ds = try Self.dataset(self)
        for method in ["dino", "triplet"] {
            let out = Fixtures.tempDir(self) + "/" + method
            let s = try run(try pipeline(dataset: ds, output: out, method: method), workers: 2, maxSteps: 3)
            XCTAssertEqual(s.steps, 3)
            XCTAssertTrue(s.finalLoss.isFinite, method)
            let c = try Checkpoint.read(out + "/checkpoint.safetensors")
            if method == "dino" {
                XCTAssertNotNil(c.tensors["teacher.backbone.features.0.0.weight"])
                XCTAssertEqual(c.tensors["dino.center"]?.count, 32)
            }
        }
    }
}
