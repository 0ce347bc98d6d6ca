import Foundation
import TesseraCore

/// Multinomial logistic regression with an L2 penalty: the linear probe. Features are standardized
/// with the training mean and standard deviation (kept in the model, so prediction applies the same
/// map). Fitting minimizes, as scikit-learn's `LogisticRegression(multi_class="multinomial",
/// solver="lbfgs")` does,
///
///     Σᵢ cross-entropy(softmax(W·xᵢ + b), yᵢ) + ‖W‖² / (2C)       (b not penalized)
///
/// full-batch with L-BFGS from W = 0, b = 0: the same inputs give the same model, bit for bit.
public struct LogisticRegression: Sendable {
    public let dimension: Int
    public let classes: Int
    public let c: Double
    /// Standardization: x' = (x − mean) / std; constant features get std 1.
    public let mean: [Float]
    public let std: [Float]
    /// Weights [dimension, classes] row-major, for standardized features.
    public let weights: [Float]
    public let bias: [Float]
    /// Iterations used and whether the gradient tolerance was met.
    public let iterations: Int
    public let converged: Bool

    /// Fits the probe. `labels` must lie in 0..<classes; `tolerance` stops L-BFGS once
    /// ‖∇f‖ ≤ tolerance · ‖∇f at W = 0, b = 0‖.
    public static func fit(features: [Float], labels: [Int], dimension: Int, classes: Int, c: Double = 1.0,
                           maxIterations: Int = 500, tolerance: Double = 1e-5) throws -> LogisticRegression {
        guard dimension > 0, classes > 0, !labels.isEmpty, features.count == labels.count * dimension else {
            throw TesseraError(.invalidConfig, "logistic regression: \(features.count) feature values are not \(labels.count) rows of dimension \(dimension)")
        }
        guard c > 0 else { throw TesseraError(.invalidConfig, "logistic regression: C must be positive, got \(c)") }
        if let bad = labels.first(where: { $0 < 0 || $0 >= classes }) {
            throw TesseraError(.invalidConfig, "logistic regression: label \(bad) outside 0..<\(classes)")
        }
        let (mean, std) = standardization(features, dimension: dimension)
        let x = standardize(features, mean: mean, std: std)
        let objective = Objective(x: x, labels: labels, dimension: dimension, classes: classes, c: c)
        let result = LBFGS.minimize(start: [Double](repeating: 0, count: (dimension + 1) * classes),
                                    maxIterations: maxIterations, tolerance: tolerance, objective.evaluate)
        let dk = dimension * classes
        return LogisticRegression(dimension: dimension, classes: classes, c: c, mean: mean, std: std,
                                  weights: result.x[0..<dk].map(Float.init), bias: result.x[dk...].map(Float.init),
                                  iterations: result.iterations, converged: result.converged)
    }

    /// Class probabilities, row-major [M, classes].
    public func probabilities(features: [Float]) -> [Float] {
        precondition(features.count % dimension == 0, "logistic regression: feature count is not a multiple of the dimension")
        let x = Self.standardize(features, mean: mean, std: std)
        let m = features.count / dimension
        var z = Self.logits(x, rows: m, dimension: dimension, classes: classes, weights: weights, bias: bias)
        for r in 0..<m {
            let row = r * classes
            let top = z[row..<(row + classes)].max()!
            var sum: Float = 0
            for j in row..<(row + classes) { z[j] = exp(z[j] - top); sum += z[j] }
            for j in row..<(row + classes) { z[j] /= sum }
        }
        return z
    }

    /// Most probable class per row (ties → lowest class index).
    public func predict(features: [Float]) -> [Int] {
        let x = Self.standardize(features, mean: mean, std: std)
        let m = features.count / dimension
        let z = Self.logits(x, rows: m, dimension: dimension, classes: classes, weights: weights, bias: bias)
        return (0..<m).map { r in
            var best = 0
            for j in 1..<classes where z[r * classes + j] > z[r * classes + best] { best = j }
            return best
        }
    }

    // MARK: Pieces

    static func standardization(_ x: [Float], dimension: Int) -> (mean: [Float], std: [Float]) {
        let n = x.count / dimension
        var mean = [Double](repeating: 0, count: dimension), sq = [Double](repeating: 0, count: dimension)
        for r in 0..<n { for j in 0..<dimension { mean[j] += Double(x[r * dimension + j]) } }
        for j in 0..<dimension { mean[j] /= Double(n) }
        for r in 0..<n { for j in 0..<dimension { let d = Double(x[r * dimension + j]) - mean[j]; sq[j] += d * d } }
        // Population std, with 1 for constant features, as scikit-learn's StandardScaler.
        let std = sq.map { v -> Float in let s = (v / Double(n)).squareRoot(); return s > 1e-12 ? Float(s) : 1 }
        return (mean.map(Float.init), std)
    }

    static func standardize(_ x: [Float], mean: [Float], std: [Float]) -> [Float] {
        let d = mean.count
        var out = x
        for i in 0..<x.count { out[i] = (x[i] - mean[i % d]) / std[i % d] }
        return out
    }

    /// x·W + b for x [rows, dimension], W [dimension, classes].
    static func logits(_ x: [Float], rows: Int, dimension: Int, classes: Int, weights: [Float], bias: [Float]) -> [Float] {
        var z = [Float](repeating: 0, count: rows * classes)
        for r in 0..<rows { for j in 0..<classes { z[r * classes + j] = bias[j] } }
        x.withUnsafeBufferPointer { xp in
            weights.withUnsafeBufferPointer { wp in
                z.withUnsafeMutableBufferPointer { zp in
                    BLAS.sgemm(m: rows, n: classes, k: dimension, a: xp.baseAddress!, lda: dimension,
                               b: wp.baseAddress!, ldb: classes, beta: 1, c: zp.baseAddress!, ldc: classes)
                }
            }
        }
        return z
    }

    /// The penalized cross-entropy and its gradient over parameters laid out [W (dimension × classes), b].
    /// Products run in Float through sgemm; the softmax, loss and penalty are summed in Double.
    struct Objective {
        let x: [Float], labels: [Int], dimension: Int, classes: Int, c: Double

        func evaluate(_ theta: [Double]) -> LBFGS.Evaluation {
            let n = labels.count, dk = dimension * classes
            let w = theta[0..<dk].map(Float.init), b = theta[dk...].map(Float.init)
            var z = LogisticRegression.logits(x, rows: n, dimension: dimension, classes: classes, weights: w, bias: b)
            var loss: Double = 0, magnitude: Double = 0
            var gradB = [Double](repeating: 0, count: classes)
            for r in 0..<n {
                let row = r * classes
                var top = -Double.infinity
                for j in row..<(row + classes) { top = max(top, Double(z[j])) }
                var sum: Double = 0
                for j in row..<(row + classes) { sum += exp(Double(z[j]) - top) }
                loss += top + log(sum) - Double(z[row + labels[r]])
                magnitude += max(abs(top), abs(Double(z[row + labels[r]])))
                // z becomes P − Y, the gradient with respect to the logits.
                for j in 0..<classes {
                    let p = exp(Double(z[row + j]) - top) / sum - (j == labels[r] ? 1 : 0)
                    z[row + j] = Float(p)
                    gradB[j] += p
                }
            }
            var gradW = [Float](repeating: 0, count: dk)
            x.withUnsafeBufferPointer { xp in
                z.withUnsafeBufferPointer { zp in
                    gradW.withUnsafeMutableBufferPointer { gp in
                        BLAS.sgemm(transA: true, m: dimension, n: classes, k: n, a: xp.baseAddress!, lda: dimension,
                                   b: zp.baseAddress!, ldb: classes, c: gp.baseAddress!, ldc: classes)
                    }
                }
            }
            var gradient = [Double](repeating: 0, count: theta.count)
            var penalty: Double = 0
            for i in 0..<dk {
                penalty += theta[i] * theta[i]
                gradient[i] = Double(gradW[i]) + theta[i] / c
            }
            for j in 0..<classes { gradient[dk + j] = gradB[j] }
            // Each float32 logit carries a relative rounding error of a few ulps (the products' sums
            // are dimension long), so the loss is known only to about this much.
            let noise = magnitude * Double(Float.ulpOfOne) * Double(dimension).squareRoot()
            return LBFGS.Evaluation(value: loss + penalty / (2 * c), gradient: gradient, noise: noise)
        }
    }
}

extension LogisticRegression {
    /// Chooses C from `grid` by stratified k-fold cross-validation on the training set, scoring the
    /// mean balanced accuracy over folds (ties → the earlier grid value). Each class's samples are
    /// shuffled with `seed` and dealt round-robin to the folds, so the choice is reproducible. When a
    /// class present in `labels` has fewer samples than `folds` (few-label probes), no fold split is
    /// meaningful and `fallback` is returned.
    public static func selectC(features: [Float], labels: [Int], dimension: Int, classes: Int,
                               grid: [Double] = [0.01, 0.1, 1, 10], folds: Int = 3, fallback: Double = 1.0,
                               seed: UInt64 = 0, maxIterations: Int = 500) throws -> Double {
        guard folds >= 2, !grid.isEmpty else { return fallback }
        var byClass = [[Int]](repeating: [], count: classes)
        for (i, y) in labels.enumerated() where y >= 0 && y < classes { byClass[y].append(i) }
        guard byClass.allSatisfy({ $0.isEmpty || $0.count >= folds }) else { return fallback }
        var fold = [Int](repeating: 0, count: labels.count)
        var rng = SplitMix64(seed: seed)
        for members in byClass {
            var shuffled = members
            shuffled.shuffle(using: &rng)
            for (p, i) in shuffled.enumerated() { fold[i] = p % folds }
        }
        var best = (score: -1.0, c: fallback)
        for c in grid {
            var total = 0.0
            for f in 0..<folds {
                let trainIdx = labels.indices.filter { fold[$0] != f }, testIdx = labels.indices.filter { fold[$0] == f }
                let model = try fit(features: rows(features, trainIdx, dimension), labels: trainIdx.map { labels[$0] },
                                    dimension: dimension, classes: classes, c: c, maxIterations: maxIterations)
                let predicted = model.predict(features: rows(features, testIdx, dimension))
                total += balancedAccuracy(truth: testIdx.map { labels[$0] }, predicted: predicted, classes: classes)
            }
            if total / Double(folds) > best.score { best = (total / Double(folds), c) }
        }
        return best.c
    }

    private static func rows(_ x: [Float], _ idx: [Int], _ d: Int) -> [Float] {
        var out: [Float] = []
        out.reserveCapacity(idx.count * d)
        for i in idx { out.append(contentsOf: x[(i * d)..<((i + 1) * d)]) }
        return out
    }

    private static func balancedAccuracy(truth: [Int], predicted: [Int], classes: Int) -> Double {
        var hit = [Int](repeating: 0, count: classes), count = [Int](repeating: 0, count: classes)
        for (t, p) in zip(truth, predicted) { count[t] += 1; if t == p { hit[t] += 1 } }
        let present = (0..<classes).filter { count[$0] > 0 }
        return present.reduce(0.0) { $0 + Double(hit[$1]) / Double(count[$1]) } / Double(max(1, present.count))
    }
}
