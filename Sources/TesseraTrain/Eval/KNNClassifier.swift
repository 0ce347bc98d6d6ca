import Foundation
import TesseraCore

/// Weighted k-nearest-neighbour classification of embeddings, as DINO's `eval_knn.py` does it
/// (Caron et al. 2021, after Wu et al. 2018): cosine similarity between L2-normalized embeddings,
/// the k most similar training samples vote with weight exp(similarity / T), and the class with the
/// largest summed weight wins (ties go to the lowest class index; equally similar neighbours to the
/// lowest training index, so results never depend on sort stability).
///
/// Embeddings are normalized here, so callers may pass raw features. Similarities are computed one
/// block of test rows at a time, holding at most `maxBlockBytes` of similarity matrix (or one row,
/// if a single row is larger). OpenBLAS picks kernels by matrix size, so the block size may change
/// the last bits of a score, never more.
public struct KNNClassifier: Sendable {
    public let dimension: Int
    public let classes: Int
    public let k: Int
    public let temperature: Float
    /// Normalized training embeddings, row-major [N, dimension].
    let train: [Float]
    let labels: [Int]
    /// Bound on the similarity block held at once (64 MB by default).
    public var maxBlockBytes = 64 << 20

    public var trainCount: Int { labels.count }

    public init(features: [Float], labels: [Int], dimension: Int, classes: Int, k: Int = 20, temperature: Float = 0.07) throws {
        guard dimension > 0, features.count == labels.count * dimension else {
            throw TesseraError(.invalidConfig, "kNN: \(features.count) feature values are not \(labels.count) rows of dimension \(dimension)")
        }
        guard k > 0, temperature > 0 else { throw TesseraError(.invalidConfig, "kNN: k (\(k)) and temperature (\(temperature)) must be positive") }
        guard !labels.isEmpty else { throw TesseraError(.invalidConfig, "kNN: no training samples") }
        if let bad = labels.first(where: { $0 < 0 || $0 >= classes }) {
            throw TesseraError(.invalidConfig, "kNN: label \(bad) outside 0..<\(classes)")
        }
        self.dimension = dimension
        self.classes = classes
        self.k = k
        self.temperature = temperature
        self.train = Self.normalized(features, dimension: dimension)
        self.labels = labels
    }

    /// Predicted class per row of `features` (row-major [M, dimension]).
    public func predict(_ features: [Float]) -> [Int] {
        let s = scores(features)
        return (0..<(s.count / classes)).map { row in
            var best = 0
            for c in 1..<max(1, classes) where s[row * classes + c] > s[row * classes + best] { best = c }
            return best
        }
    }

    /// Summed neighbour weights per class, row-major [M, classes] (DINO's `probs` before its sort).
    public func scores(_ features: [Float]) -> [Double] {
        precondition(features.count % dimension == 0, "kNN: feature count is not a multiple of the dimension")
        let m = features.count / dimension, n = trainCount, kk = min(k, n)
        let queries = Self.normalized(features, dimension: dimension)
        var out = [Double](repeating: 0, count: m * classes)
        let blockRows = max(1, min(m, maxBlockBytes / (4 * n)))
        var sims = [Float](repeating: 0, count: blockRows * n)
        var topSim = [Float](repeating: 0, count: kk), topIndex = [Int](repeating: 0, count: kk)
        var start = 0
        while start < m {
            let rows = min(blockRows, m - start)
            queries.withUnsafeBufferPointer { q in
                train.withUnsafeBufferPointer { t in
                    sims.withUnsafeMutableBufferPointer { s in
                        BLAS.sgemm(transB: true, m: rows, n: n, k: dimension, a: q.baseAddress! + start * dimension, lda: dimension,
                                   b: t.baseAddress!, ldb: dimension, c: s.baseAddress!, ldc: n)
                    }
                }
            }
            for r in 0..<rows {
                // Keep the k best in descending order by insertion: k is small, and most candidates
                // fail the first comparison against the current k-th best.
                var filled = 0
                sims.withUnsafeBufferPointer { s in
                    let base = r * n
                    for j in 0..<n {
                        let v = s[base + j]
                        if filled == kk && !(v > topSim[kk - 1]) { continue }
                        var pos = filled == kk ? kk - 1 : filled
                        if filled < kk { filled += 1 }
                        while pos > 0 && topSim[pos - 1] < v {
                            topSim[pos] = topSim[pos - 1]; topIndex[pos] = topIndex[pos - 1]; pos -= 1
                        }
                        topSim[pos] = v; topIndex[pos] = j
                    }
                }
                let row = (start + r) * classes
                for i in 0..<kk { out[row + labels[topIndex[i]]] += exp(Double(topSim[i]) / Double(temperature)) }
            }
            start += rows
        }
        return out
    }

    /// Rows scaled to unit length; zero rows stay zero (PyTorch's normalize divides by max(‖x‖, 1e-12)).
    static func normalized(_ x: [Float], dimension: Int) -> [Float] {
        var out = x
        for r in 0..<(x.count / dimension) {
            var ss: Double = 0
            for i in (r * dimension)..<((r + 1) * dimension) { ss += Double(x[i]) * Double(x[i]) }
            let scale = Float(1 / max(ss.squareRoot(), 1e-12))
            for i in (r * dimension)..<((r + 1) * dimension) { out[i] *= scale }
        }
        return out
    }
}
