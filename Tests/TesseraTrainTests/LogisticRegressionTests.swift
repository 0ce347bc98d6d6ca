import XCTest
import Foundation
import TesseraCore
@testable import TesseraTrain

final class LogisticRegressionTests: XCTestCase {
    func testSeparatesGaussianClusters() throws {
        let train = gaussianClusters(seed: 1, classes: 4, dimension: 16, perClass: 100)
        let test = gaussianClusters(seed: 2, classes: 4, dimension: 16, perClass: 100, centres: train.centres)
        let model = try LogisticRegression.fit(features: train.features, labels: train.labels, dimension: 16, classes: 4)
        XCTAssertTrue(model.converged, "\(model.iterations) iterations")
        let predicted = model.predict(features: test.features)
        let accuracy = Double(zip(predicted, test.labels).filter { $0 == $1 }.count) / Double(test.labels.count)
        XCTAssertGreaterThanOrEqual(accuracy, 0.95)
        let p = model.probabilities(features: test.features)
        for r in 0..<test.labels.count { XCTAssertEqual(p[(r * 4)..<(r * 4 + 4)].reduce(0, +), 1, accuracy: 1e-5) }
        // Deterministic: the same data give the same model, bit for bit.
        let again = try LogisticRegression.fit(features: train.features, labels: train.labels, dimension: 16, classes: 4)
        XCTAssertEqual(again.weights, model.weights)
        XCTAssertEqual(again.bias, model.bias)
    }

    /// The objective's gradient, recomputed with plain loops in Double: Σ (P − Y) xᵀ + W / C and Σ (P − Y).
    private func gradientNorm(_ x: [Float], _ y: [Int], d: Int, k: Int, c: Double, mean: [Float], std: [Float], w: [Double], b: [Double]) -> Double {
        var gw = [Double](repeating: 0, count: d * k), gb = [Double](repeating: 0, count: k)
        for i in 0..<y.count {
            let xs = (0..<d).map { (Double(x[i * d + $0]) - Double(mean[$0])) / Double(std[$0]) }
            let z = (0..<k).map { j in b[j] + (0..<d).reduce(0.0) { $0 + xs[$1] * w[$1 * k + j] } }
            let top = z.max()!, sum = z.reduce(0.0) { $0 + exp($1 - top) }
            for j in 0..<k {
                let r = exp(z[j] - top) / sum - (j == y[i] ? 1 : 0)
                gb[j] += r
                for f in 0..<d { gw[f * k + j] += r * xs[f] }
            }
        }
        for i in 0..<(d * k) { gw[i] += w[i] / c }
        return (gw.reduce(0) { $0 + $1 * $1 } + gb.reduce(0) { $0 + $1 * $1 }).squareRoot()
    }

    func testGradientVanishesAtTheOptimum() throws {
        // Overlapping clusters, so the optimum is interior and the penalty matters.
        let data = gaussianClusters(seed: 3, classes: 4, dimension: 16, perClass: 60, spread: 1, noise: 2)
        for c in [0.05, 1.0] {
            let m = try LogisticRegression.fit(features: data.features, labels: data.labels, dimension: 16, classes: 4, c: c)
            XCTAssertTrue(m.converged, "C = \(c): stopped after \(m.iterations) iterations")
            let g = gradientNorm(data.features, data.labels, d: 16, k: 4, c: c, mean: m.mean, std: m.std,
                                 w: m.weights.map(Double.init), b: m.bias.map(Double.init))
            let g0 = gradientNorm(data.features, data.labels, d: 16, k: 4, c: c, mean: m.mean, std: m.std,
                                  w: [Double](repeating: 0, count: 64), b: [0, 0, 0, 0])
            XCTAssertLessThan(g / g0, 1e-3, "C = \(c): ‖∇f‖ = \(g), at zero \(g0), \(m.iterations) iterations")
        }
    }

    func testTinyCLeavesOnlyTheBiasAtClassFrequencies() throws {
        var data = gaussianClusters(seed: 4, classes: 3, dimension: 8, perClass: 40)
        // Imbalance the classes: keep 10 of class 0, 30 of class 1, all 40 of class 2.
        var seen = [0, 0, 0], keep: [Int] = []
        for (i, y) in data.labels.enumerated() where seen[y] < [10, 30, 40][y] { seen[y] += 1; keep.append(i) }
        data.features = keep.flatMap { data.features[($0 * 8)..<($0 * 8 + 8)] }
        data.labels = keep.map { data.labels[$0] }
        let m = try LogisticRegression.fit(features: data.features, labels: data.labels, dimension: 8, classes: 3, c: 1e-6)
        XCTAssertLessThan(m.weights.map(abs).max()!, 1e-3)
        XCTAssertEqual(Set(m.predict(features: data.features)), [2])
        let p = m.probabilities(features: Array(data.features[0..<8]))
        for (got, want) in zip(p, [0.125, 0.375, 0.5]) { XCTAssertEqual(Double(got), want, accuracy: 2e-3) }
    }

    func testSelectCIsDeterministicAndFallsBackWithFewLabels() throws {
        let data = gaussianClusters(seed: 5, classes: 4, dimension: 16, perClass: 15, spread: 1, noise: 1.5)
        let a = try LogisticRegression.selectC(features: data.features, labels: data.labels, dimension: 16, classes: 4, seed: 9)
        let b = try LogisticRegression.selectC(features: data.features, labels: data.labels, dimension: 16, classes: 4, seed: 9)
        XCTAssertEqual(a, b)
        XCTAssertTrue([0.01, 0.1, 1, 10].contains(a))
        // Two labels per class cannot fill three folds.
        let few = gaussianClusters(seed: 6, classes: 4, dimension: 16, perClass: 2)
        XCTAssertEqual(try LogisticRegression.selectC(features: few.features, labels: few.labels, dimension: 16, classes: 4,
                                                      fallback: 0.5), 0.5)
    }

    func testRejectsBadInput() {
        XCTAssertThrowsError(try LogisticRegression.fit(features: [1, 2, 3], labels: [0, 1], dimension: 2, classes: 2))
        XCTAssertThrowsError(try LogisticRegression.fit(features: [1, 2], labels: [3], dimension: 2, classes: 2))
        XCTAssertThrowsError(try LogisticRegression.fit(features: [1, 2], labels: [0], dimension: 2, classes: 2, c: 0))
    }
}
