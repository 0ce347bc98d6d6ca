import Foundation

/// max(0, x), any shape.
public final class ReLU: Layer {
    private var output: [Float] = []
    public init() {}

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        let y = x.data.withUnsafeBufferPointer { xp in
            [Float].filled(xp.count) { o in Kernels.relu(xp.baseAddress!, o.baseAddress!, xp.count) }
        }
        if training { output = y }
        return Tensor(shape: x.shape, data: y)
    }

    public func backward(_ dy: Tensor) -> Tensor {
        let dx = output.withUnsafeBufferPointer { o in
            dy.data.withUnsafeBufferPointer { g in
                [Float].filled(g.count) { d in Kernels.reluBackward(o.baseAddress!, g.baseAddress!, d.baseAddress!, g.count) }
            }
        }
        output = []
        return Tensor(shape: dy.shape, data: dx)
    }
}

/// GELU with the exact erf form (PyTorch's default, DINO's head), any shape.
public final class GELU: Layer {
    private var input: [Float] = []
    public init() {}

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        if training { input = x.data }
        var y = x
        y.data.withUnsafeMutableBufferPointer { p in
            for i in p.indices { let v = p[i]; p[i] = 0.5 * v * (1 + erf(v * 0.70710678)) }
        }
        return y
    }

    public func backward(_ dy: Tensor) -> Tensor {
        var dx = dy
        input.withUnsafeBufferPointer { xp in
            dx.data.withUnsafeMutableBufferPointer { p in
                for i in p.indices {
                    let v = xp[i]
                    let cdf = 0.5 * (1 + erf(v * 0.70710678)), pdf = exp(-0.5 * v * v) * 0.39894228
                    p[i] *= cdf + v * pdf
                }
            }
        }
        input = []
        return dx
    }
}

/// Rows of a matrix [N, F] scaled to unit L2 norm (x / max(‖x‖, 1e-12), as F.normalize).
public final class L2Normalize: Layer {
    private var output: [Float] = []
    private var norms: [Float] = []
    public init() {}

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        let (n, f) = (x.shape[0], x.shape[1])
        var y = x
        var ns = [Float](repeating: 0, count: n)
        y.data.withUnsafeMutableBufferPointer { p in
            for r in 0..<n {
                var s: Float = 0
                for j in 0..<f { s += p[r * f + j] * p[r * f + j] }
                let norm = max(s.squareRoot(), 1e-12)
                ns[r] = norm
                for j in 0..<f { p[r * f + j] /= norm }
            }
        }
        if training { output = y.data; norms = ns }
        return y
    }

    public func backward(_ dy: Tensor) -> Tensor {
        let (n, f) = (dy.shape[0], dy.shape[1])
        var dx = dy
        output.withUnsafeBufferPointer { y in
            dx.data.withUnsafeMutableBufferPointer { g in
                for r in 0..<n {
                    var dot: Float = 0
                    for j in 0..<f { dot += g[r * f + j] * y[r * f + j] }
                    for j in 0..<f { g[r * f + j] = (g[r * f + j] - y[r * f + j] * dot) / norms[r] }
                }
            }
        }
        output = []
        return dx
    }
}
