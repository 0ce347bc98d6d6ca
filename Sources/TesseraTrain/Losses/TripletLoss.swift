import Foundation

/// Batch-hard triplet loss (Hermans et al. 2017, "In Defense of the Triplet Loss"): for every anchor
/// the farthest embedding with the same label and the nearest with a different label, hinge
/// max(0, d(a,p) − d(a,n) + margin) on Euclidean distances, averaged over anchors. In self-supervised
/// use the label is the source sample, so the views of one tile are each other's positives.
public enum TripletLoss {
    public struct Result {
        public var loss: Float
        public var gradient: Tensor
        /// Fraction of anchors whose triplet is violated (hinge active).
        public var active: Float
    }

    public static func evaluate(_ e: Tensor, labels: [Int], margin: Float) -> Result {
        let n = e.shape[0], d = e.shape[1]
        precondition(labels.count == n)
        var dist = [Float](repeating: 0, count: n * n)
        for i in 0..<n {
            for j in (i + 1)..<max(i + 1, n) {
                var s: Float = 0
                for k in 0..<d { let t = e.data[i * d + k] - e.data[j * d + k]; s += t * t }
                // ε inside the root keeps the gradient finite for coincident points.
                let v = (s + 1e-12).squareRoot()
                dist[i * n + j] = v
                dist[j * n + i] = v
            }
        }
        var grad = [Float](repeating: 0, count: n * d)
        var loss: Float = 0
        var active = 0
        for a in 0..<n {
            var p = -1, q = -1
            for j in 0..<n where j != a {
                if labels[j] == labels[a] {
                    if p < 0 || dist[a * n + j] > dist[a * n + p] { p = j }
                } else if q < 0 || dist[a * n + j] < dist[a * n + q] { q = j }
            }
            guard p >= 0, q >= 0 else { continue }
            let h = dist[a * n + p] - dist[a * n + q] + margin
            guard h > 0 else { continue }
            loss += h
            active += 1
            let dp = dist[a * n + p], dn = dist[a * n + q]
            for k in 0..<d {
                let up = (e.data[a * d + k] - e.data[p * d + k]) / dp
                let un = (e.data[a * d + k] - e.data[q * d + k]) / dn
                grad[a * d + k] += (up - un) / Float(n)
                grad[p * d + k] -= up / Float(n)
                grad[q * d + k] += un / Float(n)
            }
        }
        return Result(loss: loss / Float(n), gradient: Tensor(shape: e.shape, data: grad), active: Float(active) / Float(n))
    }
}
