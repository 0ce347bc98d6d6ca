import Foundation
import TesseraCore

/// Gaussian clusters for the evaluation tests: `classes` random centres in [-spread, spread]^dimension,
/// `perClass` points around each with unit-variance noise times `noise`. Deterministic per seed.
func gaussianClusters(seed: UInt64, classes: Int, dimension: Int, perClass: Int, spread: Double = 2, noise: Double = 1,
                      centres given: [[Double]]? = nil) -> (features: [Float], labels: [Int], centres: [[Double]]) {
    var rng = SplitMix64(seed: seed)
    func uniform() -> Double { Double(rng.next() >> 11) / Double(1 << 53) }
    func normal() -> Double { (-2 * log(max(uniform(), 1e-300))).squareRoot() * cos(2 * Double.pi * uniform()) }
    let centres = given ?? (0..<classes).map { _ in (0..<dimension).map { _ in (2 * uniform() - 1) * spread } }
    var features: [Float] = [], labels: [Int] = []
    for i in 0..<(classes * perClass) {
        let c = i % classes
        labels.append(c)
        for j in 0..<dimension { features.append(Float(centres[c][j] + noise * normal())) }
    }
    return (features, labels, centres)
}
