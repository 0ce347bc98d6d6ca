import XCTest
import TesseraCore
@testable import TesseraTrain

/// Finite-difference checks of every backward pass: for a random direction v over the parameters
/// and the input, the central difference (L(θ+εv) − L(θ−εv)) / 2ε must match ∇L·v, where L = Σ w⊙f(x)
/// for a fixed random w (so every output element carries gradient).
final class GradientCheckTests: XCTestCase {
    struct Rand {
        var g: SplitMix64
        init(_ seed: UInt64) { g = SplitMix64(seed: seed) }
        mutating func values(_ n: Int, scale: Float = 1) -> [Float] {
            (0..<n).map { _ in (Float(g.next() >> 40) / Float(1 << 24) * 2 - 1) * scale }
        }
    }

    func check(_ name: String, _ layer: Layer, input shape: [Int], seed: UInt64 = 7, tolerance: Double = 2e-2, eps: Float = 1e-3,
               file: StaticString = #filePath, line: UInt = #line) {
        var r = Rand(seed)
        let x = Tensor(shape: shape, data: r.values(shape.reduce(1, *)))
        let y0 = layer.forward(x, training: true)
        let w = r.values(y0.count)
        layer.zeroGrad()
        let dx = layer.backward(Tensor(shape: y0.shape, data: w))
        let params = layer.namedParameters.map(\.parameter).filter(\.trainable)
        let dirs = params.map { r.values($0.value.count) }
        let dxDir = r.values(x.count)
        var analytic = 0.0
        for (p, v) in zip(params, dirs) { for i in v.indices { analytic += Double(p.grad[i]) * Double(v[i]) } }
        let inputGradient = dx.count == x.count
        if inputGradient { for i in dxDir.indices { analytic += Double(dx.data[i]) * Double(dxDir[i]) } }

        func loss(_ eps: Float) -> Double {
            let saved = params.map(\.value)
            for (p, v) in zip(params, dirs) { for i in v.indices { p.value[i] += eps * v[i] } }
            var xe = x
            if inputGradient { for i in xe.data.indices { xe.data[i] += eps * dxDir[i] } }
            let y = layer.forward(xe, training: true)
            for (p, s) in zip(params, saved) { p.value = s }
            return zip(y.data, w).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        }
        let numeric = (loss(eps) - loss(-eps)) / (2 * Double(eps))
        let rel = abs(numeric - analytic) / max(1e-3, abs(numeric), abs(analytic))
        XCTAssertLessThan(rel, tolerance, "\(name): numeric \(numeric) vs analytic \(analytic)", file: file, line: line)
    }

    func testConvolutions() {
        var ini = Initializer(seed: 3)
        check("conv3x3", Conv2d(3, 5, kernel: 3, padding: 1, bias: true, initializer: &ini), input: [3, 2, 7, 6])
        check("conv3x3 stride 2", Conv2d(4, 3, kernel: 3, stride: 2, padding: 1, initializer: &ini), input: [4, 3, 9, 8])
        check("conv1x1 stride 2", Conv2d(4, 6, kernel: 1, stride: 2, initializer: &ini), input: [4, 2, 6, 6])
        check("conv1x1", Conv2d(4, 6, kernel: 1, bias: true, initializer: &ini), input: [4, 2, 5, 5])
        check("conv5x5 no padding", Conv2d(2, 3, kernel: 5, initializer: &ini), input: [2, 2, 7, 7])
        // Chunked unfolding (budget of one image) must give the same gradients.
        let small = Conv2d(3, 4, kernel: 3, padding: 1, initializer: &ini)
        small.columnBudget = 3 * 9 * 36
        check("conv chunked", small, input: [3, 4, 6, 6])
    }

    func testNormalizationActivationsPooling() {
        check("batchnorm2d", BatchNorm(3), input: [3, 4, 3, 3])
        check("batchnorm1d", BatchNorm(5), input: [6, 5])
        check("gelu", GELU(), input: [4, 7])
        check("l2normalize", L2Normalize(), input: [4, 6])
        check("maxpool", MaxPool2d(2), input: [2, 3, 6, 6])
        check("global avg pool", GlobalAvgPool(), input: [3, 2, 4, 5])
        var ini = Initializer(seed: 5)
        check("linear", Linear(6, 4, initializer: &ini), input: [3, 6])
        check("weight-norm linear", WeightNormLinear(6, 5, initializer: &ini), input: [3, 6])
    }

    /// Compositions. Residual blocks stack enough ReLUs that some units sit within ε of their kink,
    /// which biases central differences by a few percent; blocks and whole ResNets are checked
    /// exactly against PyTorch instead (TorchParityTests).
    func testCompositions() {
        var ini = Initializer(seed: 3)
        check("conv-bn", Sequential(indexed: [Conv2d(3, 4, kernel: 3, padding: 1, initializer: &ini), BatchNorm(4)]), input: [3, 2, 5, 5])
        check("conv-relu", Sequential(indexed: [Conv2d(3, 4, kernel: 3, padding: 1, initializer: &ini), ReLU()]), input: [3, 2, 5, 5])
        check("bn-relu", Sequential(indexed: [BatchNorm(4), ReLU()]), input: [4, 2, 5, 5])
        check("lin-gelu-lin", Sequential(indexed: [Linear(5, 4, initializer: &ini), GELU(), Linear(4, 3, initializer: &ini)]), input: [3, 5])
        check("lin-norm-wn", Sequential(indexed: [Linear(5, 4, initializer: &ini), L2Normalize(), WeightNormLinear(4, 6, initializer: &ini)]), input: [3, 5])
        check("pool-lin", Sequential(indexed: [GlobalAvgPool(), Linear(3, 4, initializer: &ini)]), input: [3, 2, 4, 4])
        check("conv-maxpool", Sequential(indexed: [Conv2d(3, 4, kernel: 3, padding: 1, initializer: &ini), MaxPool2d(2)]), input: [3, 2, 6, 6])
        check("convnet", BackboneSpec(kind: .convnet, widths: [4, 6, 8]).build(initializer: &ini), input: [3, 4, 12, 12])
        check("simclr head with bn", Heads.simclr(input: 8, hidden: 8, output: 4, batchNorm: true, initializer: &ini), input: [16, 8])
        // DINO's head at its real initialisation (std 0.02) has a bottleneck norm of ~1e-5, where the
        // L2 normalization is too curved for finite differences: check it at a larger scale.
        let dino = Heads.dino(input: 6, hidden: 10, bottleneck: 5, prototypes: 12, initializer: &ini)
        for (name, p) in dino.namedParameters where name.hasPrefix("mlp.") && name.hasSuffix("weight") {
            p.value = ini.uniform(count: p.value.count, bound: 0.6)
        }
        check("dino head", dino, input: [3, 6])
    }

    /// A loss's gradient against central differences in its input.
    func checkLoss(_ name: String, shape: [Int], seed: UInt64 = 9, _ f: (Tensor) -> (Float, Tensor)) {
        var r = Rand(seed)
        let z = Tensor(shape: shape, data: r.values(shape.reduce(1, *)))
        let (_, g) = f(z)
        let v = r.values(z.count)
        let analytic = zip(g.data, v).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        func at(_ e: Float) -> Double {
            var ze = z
            for i in ze.data.indices { ze.data[i] += e * v[i] }
            return Double(f(ze).0)
        }
        let eps: Float = 1e-3
        let numeric = (at(eps) - at(-eps)) / (2 * Double(eps))
        let rel = abs(numeric - analytic) / max(1e-4, abs(numeric), abs(analytic))
        XCTAssertLessThan(rel, 2e-2, "\(name): numeric \(numeric) vs analytic \(analytic)")
    }

    func testLosses() {
        checkLoss("nt-xent", shape: [8, 5]) { z in
            let r = NTXentLoss.evaluate(z, temperature: 0.5)
            return (r.loss, r.gradient)
        }
        var r = Rand(1)
        let teacher = Tensor(shape: [2 * 3, 7], data: r.values(42))
        checkLoss("dino", shape: [4 * 3, 7]) { s in
            var loss = DINOLoss(dimension: 7)
            loss.center = (0..<7).map { Float($0) * 0.01 }
            let out = loss.evaluate(student: s, teacher: teacher, batch: 3, teacherTemperature: 0.07)
            return (out.loss, out.gradient)
        }
        checkLoss("cross-entropy", shape: [5, 4]) { z in
            let r = CrossEntropyLoss.evaluate(z, targets: [0, 3, 1, 1, 2])
            return (r.loss, r.gradient)
        }
        checkLoss("triplet", shape: [8, 4]) { e in
            let out = TripletLoss.evaluate(e, labels: [0, 1, 2, 3, 0, 1, 2, 3], margin: 0.5)
            return (out.loss, out.gradient)
        }
    }

    func testNTXentMatchesClosedForm() {
        // Two samples, identical views: each row's partner has similarity 1, the others cos θ.
        let z = Tensor(shape: [4, 2], data: [1, 0, 0, 1, 1, 0, 0, 1])
        let r = NTXentLoss.evaluate(z, temperature: 1)
        // Row 0: positive row 2 (s = 1), negatives rows 1, 3 (s = 0): −log(e / (e + 2)).
        XCTAssertEqual(r.loss, Float(-log(M_E / (M_E + 2))), accuracy: 1e-5)
        XCTAssertEqual(r.top1, 1)
    }
}
