import XCTest
import Foundation
@testable import TesseraTrain

final class KNNClassifierTests: XCTestCase {
    /// DINO's rule written out plainly: cosine similarities, k best (ties → lower index), Σ exp(s / T) per class.
    private func reference(train: [Float], labels: [Int], query: [Float], d: Int, classes: Int, k: Int, t: Double) -> [Double] {
        func unit(_ v: ArraySlice<Float>) -> [Double] {
            let n = max(v.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot(), 1e-12)
            return v.map { Double($0) / n }
        }
        var out: [Double] = []
        for q in 0..<(query.count / d) {
            let qv = unit(query[(q * d)..<(q * d + d)])
            let sims = labels.indices.map { i in zip(qv, unit(train[(i * d)..<(i * d + d)])).reduce(0.0) { $0 + $1.0 * $1.1 } }
            let order = sims.indices.sorted { sims[$0] != sims[$1] ? sims[$0] > sims[$1] : $0 < $1 }
            var s = [Double](repeating: 0, count: classes)
            for i in order.prefix(k) { s[labels[i]] += exp(sims[i] / t) }
            out += s
        }
        return out
    }

    func testWeightedVoteBeatsMajorityWhenOneNeighbourIsMuchCloser() throws {
        // Query along x. One class-1 sample lies on it (similarity 1); two class-0 samples at similarity 0.8.
        let train: [Float] = [0.8, 0.6, 0.8, -0.6, 1, 0, 0, 1]
        let labels = [0, 0, 1, 1]
        let knn = try KNNClassifier(features: train, labels: labels, dimension: 2, classes: 2, k: 3)
        XCTAssertEqual(knn.predict([5, 0]), [1])
        let s = knn.scores([5, 0])
        XCTAssertEqual(s[0], 2 * exp(0.8 / 0.07), accuracy: s[0] * 1e-4)
        XCTAssertEqual(s[1], exp(1 / 0.07), accuracy: s[1] * 1e-4)
        // With a soft temperature the two votes outweigh the one.
        XCTAssertEqual(try KNNClassifier(features: train, labels: labels, dimension: 2, classes: 2, k: 3, temperature: 10).predict([5, 0]), [0])
    }

    func testTiesGoToTheLowestClass() throws {
        let knn = try KNNClassifier(features: [0, 1, 1, 0], labels: [1, 0], dimension: 2, classes: 2, k: 2)
        XCTAssertEqual(knn.predict([1, 1]), [0])
    }

    func testMatchesReferenceForAnyBlockSizeAndScale() throws {
        let train = gaussianClusters(seed: 7, classes: 5, dimension: 8, perClass: 40, spread: 1, noise: 1)
        let test = gaussianClusters(seed: 8, classes: 5, dimension: 8, perClass: 10, spread: 1, noise: 1, centres: train.centres)
        var knn = try KNNClassifier(features: train.features, labels: train.labels, dimension: 8, classes: 5, k: 20)
        let whole = knn.scores(test.features)
        let want = reference(train: train.features, labels: train.labels, query: test.features, d: 8, classes: 5, k: 20, t: 0.07)
        for (a, b) in zip(whole, want) { XCTAssertEqual(a, b, accuracy: max(1e-6, abs(b) * 1e-3)) }
        // Three test rows per block. OpenBLAS picks kernels by matrix size, so the last bits of a
        // similarity may change with the block; the votes may not.
        knn.maxBlockBytes = 4 * 200 * 3
        for (a, b) in zip(knn.scores(test.features), whole) { XCTAssertEqual(a, b, accuracy: abs(b) * 1e-5) }
        let blocked = knn.predict(test.features)
        knn.maxBlockBytes = 64 << 20
        XCTAssertEqual(blocked, knn.predict(test.features))
        // Cosine similarity ignores length.
        XCTAssertEqual(knn.predict(test.features.map { $0 * 7 }), knn.predict(test.features))
        // k larger than the training set uses every sample.
        let all = try KNNClassifier(features: train.features, labels: train.labels, dimension: 8, classes: 5, k: 1000)
        XCTAssertEqual(all.scores(Array(test.features[0..<8])).count, 5)
    }

    func testRejectsBadInput() {
        XCTAssertThrowsError(try KNNClassifier(features: [1, 2, 3], labels: [0, 1], dimension: 2, classes: 2))
        XCTAssertThrowsError(try KNNClassifier(features: [1, 2], labels: [2], dimension: 2, classes: 2))
        XCTAssertThrowsError(try KNNClassifier(features: [1, 2], labels: [0], dimension: 2, classes: 2, k: 0))
    }
}
