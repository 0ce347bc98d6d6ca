/// y = x·Wᵀ + b on a matrix [N, in] → [N, out]; weight [out, in] as PyTorch's nn.Linear, initialised
/// as PyTorch does (uniform ±1/√in for both).
public final class Linear: Layer {
    public let inFeatures, outFeatures: Int
    public let weight: Parameter
    public let bias: Parameter?
    private var input: Tensor?

    public init(_ inFeatures: Int, _ outFeatures: Int, bias: Bool = true, initializer: inout Initializer) {
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        let bound = 1 / Float(inFeatures).squareRoot()
        weight = Parameter(shape: [outFeatures, inFeatures], kind: .weight,
                           value: initializer.uniform(count: outFeatures * inFeatures, bound: bound))
        self.bias = bias ? Parameter(shape: [outFeatures], kind: .bias, value: initializer.uniform(count: outFeatures, bound: bound)) : nil
    }

    public var namedParameters: [(name: String, parameter: Parameter)] {
        [("weight", weight)] + (bias.map { [("bias", $0)] } ?? [])
    }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        precondition(x.shape.count == 2 && x.shape[1] == inFeatures, "linear expects [N, \(inFeatures)], got \(x.shape)")
        let n = x.shape[0]
        var y = Tensor(zeros: [n, outFeatures])
        if training { input = x }
        Linear.apply(x.data, n: n, weight: weight.value, bias: bias?.value, inFeatures: inFeatures, outFeatures: outFeatures, into: &y.data)
        return y
    }

    static func apply(_ x: [Float], n: Int, weight: [Float], bias: [Float]?, inFeatures: Int, outFeatures: Int, into y: inout [Float]) {
        x.withUnsafeBufferPointer { xp in
            weight.withUnsafeBufferPointer { wp in
                y.withUnsafeMutableBufferPointer { yp in
                    if let b = bias { for r in 0..<n { for o in 0..<outFeatures { yp[r * outFeatures + o] = b[o] } } }
                    BLAS.sgemm(transB: true, m: n, n: outFeatures, k: inFeatures, a: xp.baseAddress!, lda: inFeatures,
                               b: wp.baseAddress!, ldb: inFeatures, beta: bias == nil ? 0 : 1, c: yp.baseAddress!, ldc: outFeatures)
                }
            }
        }
    }

    public func backward(_ dy: Tensor) -> Tensor {
        guard let x = input else { preconditionFailure("Linear.backward without a training forward") }
        let n = x.shape[0]
        var dx = Tensor(zeros: x.shape)
        dy.data.withUnsafeBufferPointer { gp in
            x.data.withUnsafeBufferPointer { xp in
                weight.grad.withUnsafeMutableBufferPointer { gw in
                    BLAS.sgemm(transA: true, m: outFeatures, n: inFeatures, k: n, a: gp.baseAddress!, lda: outFeatures,
                               b: xp.baseAddress!, ldb: inFeatures, beta: 1, c: gw.baseAddress!, ldc: inFeatures)
                }
                weight.value.withUnsafeBufferPointer { wp in
                    dx.data.withUnsafeMutableBufferPointer { dp in
                        BLAS.sgemm(m: n, n: inFeatures, k: outFeatures, a: gp.baseAddress!, lda: outFeatures,
                                   b: wp.baseAddress!, ldb: inFeatures, c: dp.baseAddress!, ldc: inFeatures)
                    }
                }
            }
            if let b = bias {
                for r in 0..<n { for o in 0..<outFeatures { b.grad[o] += gp[r * outFeatures + o] } }
            }
        }
        input = nil
        return dx
    }
}

/// DINO's last layer: a bias-free linear layer whose rows are normalized to unit length
/// (weight_norm with the gain fixed at 1, DINO's `norm_last_layer=True`). Saved as `weight_v`
/// (direction) and `weight_g` (all ones), the names torch.nn.utils.weight_norm uses.
public final class WeightNormLinear: Layer {
    public let inFeatures, outFeatures: Int
    public let direction: Parameter
    public let gain: Parameter
    private var input: Tensor?
    private var normalizedWeight: [Float] = []
    private var rowNorms: [Float] = []

    public init(_ inFeatures: Int, _ outFeatures: Int, initializer: inout Initializer) {
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        direction = Parameter(shape: [outFeatures, inFeatures], kind: .weight,
                              value: initializer.truncatedNormal(count: outFeatures * inFeatures, std: 0.02))
        gain = Parameter(shape: [outFeatures, 1], kind: .buffer, value: [Float](repeating: 1, count: outFeatures))
    }

    public var namedParameters: [(name: String, parameter: Parameter)] { [("weight_g", gain), ("weight_v", direction)] }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        let n = x.shape[0]
        var w = direction.value
        var norms = [Float](repeating: 0, count: outFeatures)
        for o in 0..<outFeatures {
            var s: Float = 0
            for j in 0..<inFeatures { s += w[o * inFeatures + j] * w[o * inFeatures + j] }
            norms[o] = max(s.squareRoot(), 1e-12)
            let g = gain.value[o] / norms[o]
            for j in 0..<inFeatures { w[o * inFeatures + j] *= g }
        }
        var y = Tensor(zeros: [n, outFeatures])
        Linear.apply(x.data, n: n, weight: w, bias: nil, inFeatures: inFeatures, outFeatures: outFeatures, into: &y.data)
        if training { input = x; normalizedWeight = w; rowNorms = norms }
        return y
    }

    public func backward(_ dy: Tensor) -> Tensor {
        guard let x = input else { preconditionFailure("WeightNormLinear.backward without a training forward") }
        let n = x.shape[0]
        var dw = [Float](repeating: 0, count: outFeatures * inFeatures)
        var dx = Tensor(zeros: x.shape)
        dy.data.withUnsafeBufferPointer { gp in
            x.data.withUnsafeBufferPointer { xp in
                dw.withUnsafeMutableBufferPointer { dwp in
                    BLAS.sgemm(transA: true, m: outFeatures, n: inFeatures, k: n, a: gp.baseAddress!, lda: outFeatures,
                               b: xp.baseAddress!, ldb: inFeatures, c: dwp.baseAddress!, ldc: inFeatures)
                }
            }
            normalizedWeight.withUnsafeBufferPointer { wp in
                dx.data.withUnsafeMutableBufferPointer { dp in
                    BLAS.sgemm(m: n, n: inFeatures, k: outFeatures, a: gp.baseAddress!, lda: outFeatures,
                               b: wp.baseAddress!, ldb: inFeatures, c: dp.baseAddress!, ldc: inFeatures)
                }
            }
        }
        // W = g·V/‖V‖ ⇒ ∂V = (g/‖V‖)·(∂W − Ŵ(Ŵ·∂W)) with Ŵ = V/‖V‖.
        for o in 0..<outFeatures {
            let g = gain.value[o], norm = rowNorms[o]
            var dot: Float = 0
            for j in 0..<inFeatures { dot += normalizedWeight[o * inFeatures + j] / g * dw[o * inFeatures + j] }
            for j in 0..<inFeatures {
                let unit = normalizedWeight[o * inFeatures + j] / g
                direction.grad[o * inFeatures + j] += g / norm * (dw[o * inFeatures + j] - unit * dot)
            }
        }
        input = nil
        return dx
    }
}
