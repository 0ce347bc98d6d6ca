import Foundation
import TesseraCore
@testable import TesseraPipeline
import TesseraSplits
import TesseraTestSupport
import TesseraTrain
import XCTest

/// `tessera eval` plumbing on the bundled PBC images and the committed PBC split.
final class EvalRunTests: XCTestCase {
    func testEmbeddingsAreDeterministicAndProbesScore() throws {
        let ds = try TrainRunTests.dataset(self)
        let out = Fixtures.tempDir(self) + "/run"
        let p = try TrainRunTests.pipeline(self, dataset: ds, output: out)
        let c = try XCTUnwrap(p.train)
        var o = TrainRun.Options()
        o.quiet = true
        o.maxSteps = 2
        _ = try TrainRun.run(c, recipe: try XCTUnwrap(p.views), options: o)
        let ckpt = out + "/checkpoint.safetensors"
        let model = try EvalRun.model(checkpoint: ckpt)
        XCTAssertEqual(model.inputSize, 24)
        let split = try SplitFile.read(path: Fixtures.root + "/splits/pbc-blood-cells.csv")
        let train = try EvalRun.images(dataset: ds, split: split, selector: "train")
        let test = try EvalRun.images(dataset: ds, split: split, selector: "test")
        XCTAssertEqual(train.count + test.count + (try EvalRun.images(dataset: ds, split: split, selector: "val")).count, 96)
        XCTAssertEqual(Set(train.labels).count, 8)
        let f1 = try EvalRun.embed(train, model: model, workers: 1, batch: 7)
        let f2 = try EvalRun.embed(train, model: model, workers: 2, batch: 32)
        XCTAssertEqual(f1.count, train.count * 16)
        XCTAssertTrue(f1.allSatisfy(\.isFinite))
        // Batch norm in evaluation mode: a sample's features do not depend on its batch.
        for (a, b) in zip(f1, f2) { XCTAssertEqual(a, b, accuracy: 1e-4 * max(1, abs(a))) }
        // Scored on its own training images, the nearest neighbour of each is itself.
        let names = Array(Set(train.labels)).sorted()
        let y = train.labels.map { names.firstIndex(of: $0)! }
        let knn = try KNNClassifier(features: f1, labels: y, dimension: 16, classes: 8, k: 1)
        XCTAssertEqual(knn.predict(f1), y)
        let s = try EvalRun.score(trainFeatures: f1, trainLabels: y, testFeatures: try EvalRun.embed(test, model: model, workers: 2),
                                  testLabels: test.labels.map { names.firstIndex(of: $0)! }, dimension: 16, classNames: names, perClass: nil)
        XCTAssertTrue((0...1).contains(s.probe.balancedAccuracy) && (0...1).contains(s.knn.balancedAccuracy))
        // The supervised baseline trains the same architecture from scratch on the labelled subset.
        let sup = try EvalRun.supervised(train: train, subset: Array(0..<train.count), labels: y, test: test,
                                         testLabels: test.labels.map { names.firstIndex(of: $0)! }, classNames: names, model: model,
                                         steps: 3, batch: 16, workers: 2)
        XCTAssertEqual(sup.total, test.count)
        // A random-init baseline of the same architecture loads without the checkpoint's weights.
        let random = try EvalRun.model(checkpoint: ckpt, randomInit: true)
        XCTAssertNotEqual(random.network.namedParameters[0].parameter.value, model.network.namedParameters[0].parameter.value)
        // Folder mode: one sub-folder per class.
        let folder = try EvalRun.images(folderOrCSV: Fixtures.root + "/data/pbc-blood-cells")
        XCTAssertEqual(folder.count, 96)
        XCTAssertEqual(try folder.load(0).width, 360)
        XCTAssertThrowsError(try EvalRun.images(folderOrCSV: Fixtures.root + "/no/such/folder"))
    }
}
