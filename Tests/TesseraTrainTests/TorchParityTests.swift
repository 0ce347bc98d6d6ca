import XCTest
import TesseraCore
import TesseraTestSupport
@testable import TesseraTrain

/// Forward loss, every parameter gradient and the batch-norm running statistics against PyTorch
/// (float64 autograd) on tiny networks with the same state_dict names
/// (fixtures: scripts/make-train-fixtures → data/train/parity-*.safetensors).
final class TorchParityTests: XCTestCase {
    func load(_ name: String) throws -> [String: SafeTensor] {
        try SafeTensors.read(Fixtures.root + "/data/train/parity-\(name).safetensors").tensors
    }

    /// Loads `param.*` into the network, runs `loss` on the fixture input, backpropagates and
    /// compares loss, gradients and running statistics.
    func compare(_ fixture: String, _ net: Network, file: StaticString = #filePath, line: UInt = #line,
                 loss: (Tensor, [String: SafeTensor]) throws -> (Float, Tensor)) throws {
        let t = try load(fixture)
        var params: [String: [Float]] = [:]
        for (k, v) in t where k.hasPrefix("param.") {
            params[String(k.dropFirst(6))] = v.dtype == .i64 ? try v.int64s.map { Float($0) } : try v.floats
        }
        try net.load(params, source: fixture)
        let input = try XCTUnwrap(t["input"])
        let out = net.forward(images: try input.floats, shape: input.shape, training: true)
        let (value, gradient) = try loss(out, t)
        let expected = try XCTUnwrap(t["loss"]).floats[0]
        XCTAssertEqual(value, expected, accuracy: abs(expected) * 1e-5, "\(fixture): loss", file: file, line: line)
        net.zeroGrad()
        net.backward(gradient)
        var compared = 0
        for (name, p) in net.namedParameters {
            if let ref = t["grad." + name] {
                let r = try ref.floats
                var diff = 0.0, norm = 0.0
                for (a, b) in zip(p.grad, r) {
                    diff += Double(a - b) * Double(a - b)
                    norm += Double(b) * Double(b)
                }
                diff = diff.squareRoot()
                norm = norm.squareRoot()
                XCTAssertLessThanOrEqual(diff, 1e-4 * norm + 1e-9, "\(fixture): gradient of \(name) (rel \(diff / max(norm, 1e-30)))",
                                         file: file, line: line)
                compared += 1
            } else if p.trainable {
                XCTFail("\(fixture): no reference gradient for \(name)", file: file, line: line)
            }
            if let after = t["after." + name] {
                let a = try after.floats
                for (x, y) in zip(p.value, a) { XCTAssertEqual(x, y, accuracy: 1e-5 * max(1, abs(y)), "\(fixture): \(name)", file: file, line: line) }
            }
        }
        XCTAssertGreaterThan(compared, 5, file: file, line: line)
    }

    func testConvNetSimCLR() throws {
        var ini = Initializer(seed: 0)
        let net = Network(backbone: BackboneSpec(kind: .convnet, widths: [4, 8, 8]).build(initializer: &ini),
                          head: Heads.simclr(input: 8, hidden: 8, output: 4, initializer: &ini))
        try compare("convnet-ntxent", net) { z, _ in
            let r = NTXentLoss.evaluate(z, temperature: 0.5)
            return (r.loss, r.gradient)
        }
    }

    func testResNetDINO() throws {
        var ini = Initializer(seed: 0)
        let net = Network(backbone: BackboneSpec(kind: .resnet, widths: [4, 8], blocks: [1, 1]).build(initializer: &ini),
                          head: Heads.dino(input: 8, hidden: 16, bottleneck: 8, prototypes: 32, initializer: &ini))
        try compare("resnet-dino", net) { s, t in
            var loss = DINOLoss(dimension: 32)
            loss.center = try XCTUnwrap(t["center"]).floats
            let teacher = try XCTUnwrap(t["teacher"])
            let r = loss.evaluate(student: s, teacher: Tensor(shape: teacher.shape, data: try teacher.floats), batch: 4, teacherTemperature: 0.04)
            return (r.loss, r.gradient)
        }
    }

    func testResNetTriplet() throws {
        var ini = Initializer(seed: 0)
        let net = Network(backbone: BackboneSpec(kind: .resnet, widths: [4, 8], blocks: [1, 1]).build(initializer: &ini),
                          head: Heads.embedding(input: 8, output: 6, initializer: &ini))
        try compare("resnet-triplet", net) { e, t in
            let labels = try XCTUnwrap(t["labels"]).floats.map { Int($0) }
            let r = TripletLoss.evaluate(e, labels: labels, margin: 0.3)
            return (r.loss, r.gradient)
        }
    }
}
