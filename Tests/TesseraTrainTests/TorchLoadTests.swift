import XCTest
import TesseraCore
import TesseraTestSupport
@testable import TesseraTrain

/// A checkpoint written by the trainer loads into PyTorch (scripts/tessera_torch.py) with
/// `load_state_dict(strict=True)`, and the PyTorch backbone computes the same features.
final class TorchLoadTests: XCTestCase {
    /// The torch venv (scripts/torch-venv; scripts/test creates it). Missing: a skip on a developer
    /// machine, a failure in CI.
    func torchPython() throws -> String {
        let venv = FileManager.default.homeDirectoryForCurrentUser.path + "/.cache/tessera-torch-venv/bin/python"
        if FileManager.default.isExecutableFile(atPath: venv) { return venv }
        if ProcessInfo.processInfo.environment["CI"] != nil { XCTFail("no torch venv: scripts/test should have run scripts/torch-venv") }
        throw XCTSkip("no torch venv (run scripts/torch-venv)")
    }

    func testPyTorchLoadsCheckpointAndReproducesFeatures() throws {
        let py = try torchPython()
        for (backbone, method) in [("resnet:8,16:1,1", PretrainSettings.Method.simclr), ("convnet:8,16", .dino)] {
            var s = PretrainSettings()
            s.method = method
            s.backbone = backbone
            s.batchSize = 4
            s.epochs = 1
            s.projectionHidden = 8
            s.projectionOutput = 4
            s.dinoPrototypes = 16
            s.dinoHidden = 8
            s.dinoBottleneck = 4
            s.freezeLastLayerEpochs = 0
            let trainer = try Pretrainer(settings: s, stepsPerEpoch: 2)
            var g = SplitMix64(seed: 1)
            let images = (0..<(8 * 3 * 16 * 16)).map { _ in Float(g.next() >> 40) / Float(1 << 24) * 2 - 1 }
            // Two steps so batch-norm statistics and weights have moved away from their initial values.
            for _ in 0..<2 { _ = trainer.trainStep(groups: [(images, [8, 3, 16, 16])], batch: 4) }
            let dir = Fixtures.tempDir(self)
            try Checkpoint(tensors: trainer.checkpointTensors, metadata: ["step": "2", "backbone": backbone]).write(to: dir + "/ckpt.safetensors")
            let features = trainer.student.features(images: images, shape: [8, 3, 16, 16])
            try SafeTensors.write(["images": SafeTensor(floats: images, shape: [8, 3, 16, 16]),
                                   "features": SafeTensor(floats: features.data, shape: features.shape)], to: dir + "/expect.safetensors")
            let script = """
            import sys; sys.path.insert(0, sys.argv[1] + "/scripts")
            import torch, tessera_torch
            from safetensors import safe_open
            from safetensors.torch import load_file
            state = load_file(sys.argv[2] + "/ckpt.safetensors")
            meta = safe_open(sys.argv[2] + "/ckpt.safetensors", "pt").metadata()
            net = tessera_torch.backbone(meta["backbone"])
            net.load_state_dict(tessera_torch.part(state, "backbone."), strict=True)
            assert state["backbone." + [k for k in net.state_dict() if k.endswith("num_batches_tracked")][0]].dtype == torch.int64
            expect = load_file(sys.argv[2] + "/expect.safetensors")
            with torch.no_grad():
                got = net.eval()(expect["images"])
            err = (got - expect["features"]).abs().max().item()
            scale = expect["features"].abs().max().item()
            print(f"max abs diff {err:.3g} of {scale:.3g}")
            assert err <= 1e-4 * max(1.0, scale), err
            """
            let r = try Fixtures.run(py, ["-c", script, Fixtures.root, dir])
            XCTAssertEqual(r.status, 0, "\(backbone): \(r.out) \(r.err)")
        }
    }
}
