import Foundation

/// Batch normalization with PyTorch's semantics: batch statistics (biased variance) in training,
/// running statistics (momentum 0.1, unbiased variance) in evaluation; weight = γ, bias = β, and the
/// buffers running_mean, running_var, num_batches_tracked.
///
/// Works on channel-major [C, N, H, W] (BatchNorm2d: one contiguous row per channel) or on a
/// matrix [N, F] (BatchNorm1d: one column per feature).
public final class BatchNorm: Layer {
    public let features: Int
    public let eps: Float
    public let momentum: Float
    public let weight, bias, runningMean, runningVar, batchesTracked: Parameter
    /// Off while a batch is recomputed (multi-crop), so running statistics see each batch once.
    public var updatesRunningStatistics = true
    private var normalized: [Float] = []
    private var invStd: [Float] = []
    private var inputShape: [Int] = []

    public init(_ features: Int, eps: Float = 1e-5, momentum: Float = 0.1) {
        self.features = features
        self.eps = eps
        self.momentum = momentum
        weight = Parameter(shape: [features], kind: .bias, value: [Float](repeating: 1, count: features))
        bias = Parameter(shape: [features], kind: .bias, value: [Float](repeating: 0, count: features))
        runningMean = Parameter(shape: [features], kind: .buffer, value: [Float](repeating: 0, count: features))
        runningVar = Parameter(shape: [features], kind: .buffer, value: [Float](repeating: 1, count: features))
        batchesTracked = Parameter(shape: [], kind: .buffer, value: [0])
    }

    public var namedParameters: [(name: String, parameter: Parameter)] {
        [("weight", weight), ("bias", bias), ("running_mean", runningMean), ("running_var", runningVar),
         ("num_batches_tracked", batchesTracked)]
    }

    /// (rows, stride between a feature's values, values per feature, stride between features)
    private func layout(_ shape: [Int]) -> (perFeature: Int, featureStride: Int, valueStride: Int) {
        if shape.count == 4 {
            precondition(shape[0] == features, "batch norm expects [\(features), N, H, W], got \(shape)")
            let l = shape[1] * shape[2] * shape[3]
            return (l, l, 1)
        }
        precondition(shape.count == 2 && shape[1] == features, "batch norm expects [N, \(features)], got \(shape)")
        return (shape[0], 1, features)
    }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        let (m, fs, vs) = layout(x.shape)
        var y = Tensor(shape: x.shape, data: [Float].filled(x.count) { _ in })
        inputShape = x.shape
        if training {
            precondition(m > 1, "batch norm in training needs more than one value per feature")
            normalized = [Float].filled(x.count) { _ in }
            invStd = [Float](repeating: 0, count: features)
            if updatesRunningStatistics { batchesTracked.value[0] += 1 }
        }
        x.data.withUnsafeBufferPointer { xp in
            y.data.withUnsafeMutableBufferPointer { yp in
                for f in 0..<features {
                    let base = f * fs
                    var mean: Float, inv: Float
                    if training {
                        // Two passes (mean, then centred squares), accumulated in double.
                        var s = 0.0, q = 0.0
                        if vs == 1 {
                            // One pass around a shift (the first value): Σ(x − c) and Σ(x − c)² stay well
                            // conditioned when the mean is large against the spread.
                            let c = xp[base]
                            let r = Kernels.sums(xp.baseAddress! + base, m, mean: c)
                            let d = r.sum / Double(m) - Double(c)
                            s = r.sum
                            q = max(0, r.centredSquares - Double(m) * d * d)
                        } else {
                            for i in 0..<m { s += Double(xp[base + i * vs]) }
                            let mu = s / Double(m)
                            for i in 0..<m { let d = Double(xp[base + i * vs]) - mu; q += d * d }
                        }
                        let mu = s / Double(m)
                        let variance = q / Double(m)
                        mean = Float(mu)
                        inv = Float(1 / (variance + Double(eps)).squareRoot())
                        invStd[f] = inv
                        if updatesRunningStatistics {
                            runningMean.value[f] = (1 - momentum) * runningMean.value[f] + momentum * mean
                            runningVar.value[f] = (1 - momentum) * runningVar.value[f] + momentum * Float(q / Double(m - 1))
                        }
                    } else {
                        mean = runningMean.value[f]
                        inv = 1 / (runningVar.value[f] + eps).squareRoot()
                    }
                    let g = weight.value[f] * inv, b = bias.value[f] - mean * weight.value[f] * inv
                    if vs == 1 {
                        normalized.withUnsafeMutableBufferPointer { np in
                            Kernels.normalize(xp.baseAddress! + base, m, mean: mean, inv: inv, scale: g, shift: b,
                                              normalized: training ? np.baseAddress! + base : nil, y: yp.baseAddress! + base)
                        }
                    } else if training {
                        normalized.withUnsafeMutableBufferPointer { np in
                            for i in 0..<m {
                                let j = base + i * vs
                                np[j] = (xp[j] - mean) * inv
                                yp[j] = xp[j] * g + b
                            }
                        }
                    } else {
                        for i in 0..<m { let j = base + i * vs; yp[j] = xp[j] * g + b }
                    }
                }
            }
        }
        return y
    }

    public func backward(_ dy: Tensor) -> Tensor {
        precondition(dy.shape == inputShape && !normalized.isEmpty, "BatchNorm.backward without a training forward")
        let (m, fs, vs) = layout(dy.shape)
        var dx = Tensor(shape: dy.shape, data: [Float].filled(dy.count) { _ in })
        dy.data.withUnsafeBufferPointer { gp in
            normalized.withUnsafeBufferPointer { np in
                dx.data.withUnsafeMutableBufferPointer { dp in
                    for f in 0..<features {
                        let base = f * fs
                        var sg = 0.0, sgx = 0.0
                        if vs == 1 {
                            (sg, sgx) = Kernels.dotSums(gp.baseAddress! + base, np.baseAddress! + base, m)
                        } else {
                            for i in 0..<m { let j = base + i * vs; sg += Double(gp[j]); sgx += Double(gp[j] * np[j]) }
                        }
                        weight.grad[f] += Float(sgx)
                        bias.grad[f] += Float(sg)
                        let scale = weight.value[f] * invStd[f]
                        let mg = Float(sg / Double(m)), mgx = Float(sgx / Double(m))
                        if vs == 1 {
                            Kernels.batchNormBackward(gp.baseAddress! + base, np.baseAddress! + base, dp.baseAddress! + base, m,
                                                      scale: scale, mg: mg, mgx: mgx)
                        } else {
                            for i in 0..<m { let j = base + i * vs; dp[j] = scale * (gp[j] - mg - np[j] * mgx) }
                        }
                    }
                }
            }
        }
        normalized = []
        return dx
    }
}
