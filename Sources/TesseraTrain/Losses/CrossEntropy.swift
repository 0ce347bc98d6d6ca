import Foundation

/// Softmax cross-entropy over logits [N, K] with integer targets, averaged over the batch
/// (PyTorch's F.cross_entropy); the gradient is (softmax − one-hot) / N.
public enum CrossEntropyLoss {
    public static func evaluate(_ logits: Tensor, targets: [Int]) -> (loss: Float, gradient: Tensor, correct: Int) {
        let n = logits.shape[0], k = logits.shape[1]
        precondition(targets.count == n && targets.allSatisfy { (0..<k).contains($0) })
        var grad = [Float](repeating: 0, count: n * k)
        var loss = 0.0
        var correct = 0
        for r in 0..<n {
            let row = logits.data[(r * k)..<((r + 1) * k)]
            let mx = row.max()!
            var s = 0.0
            for v in row { s += Double(exp(v - mx)) }
            loss += log(s) + Double(mx) - Double(logits.data[r * k + targets[r]])
            if row.firstIndex(of: mx)! - r * k == targets[r] { correct += 1 }
            for j in 0..<k { grad[r * k + j] = Float(Double(exp(logits.data[r * k + j] - mx)) / s) / Float(n) }
            grad[r * k + targets[r]] -= 1 / Float(n)
        }
        return (Float(loss / Double(n)), Tensor(shape: logits.shape, data: grad), correct)
    }
}
