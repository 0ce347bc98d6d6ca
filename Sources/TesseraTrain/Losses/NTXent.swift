import Foundation

/// NT-Xent / InfoNCE (Chen et al. 2020, SimCLR): 2B projections in view-major order (rows i and
/// i + B are the two views of sample i), cosine similarities over temperature τ, cross-entropy of
/// each row against its partner with every other row as a negative, averaged over the 2B rows.
public enum NTXentLoss {
    public struct Result {
        public var loss: Float
        /// ∂loss/∂z, same shape as z.
        public var gradient: Tensor
        /// Fraction of rows whose most similar other row is their partner (a progress signal).
        public var top1: Float
    }

    public static func evaluate(_ z: Tensor, temperature: Float) -> Result {
        precondition(z.shape.count == 2 && z.shape[0] % 2 == 0 && z.shape[0] >= 2, "NT-Xent needs [2B, D], got \(z.shape)")
        let n = z.shape[0], d = z.shape[1], b = n / 2
        // u = z / ‖z‖
        var u = z.data
        var norms = [Float](repeating: 0, count: n)
        for r in 0..<n {
            var s: Float = 0
            for j in 0..<d { s += u[r * d + j] * u[r * d + j] }
            norms[r] = max(s.squareRoot(), 1e-12)
            for j in 0..<d { u[r * d + j] /= norms[r] }
        }
        var sim = [Float](repeating: 0, count: n * n)
        u.withUnsafeBufferPointer { up in
            sim.withUnsafeMutableBufferPointer { sp in
                BLAS.sgemm(transB: true, m: n, n: n, k: d, a: up.baseAddress!, lda: d, b: up.baseAddress!, ldb: d,
                           c: sp.baseAddress!, ldc: n)
            }
        }
        // G[i][k] = ∂loss/∂s_ik from row i's term; the loss is symmetric in s, so ∂/∂u = (G + Gᵀ)·u.
        var g = [Float](repeating: 0, count: n * n)
        var loss = 0.0
        var hits = 0
        let scale = 1 / (temperature * Float(n))
        for i in 0..<n {
            let p = (i + b) % n
            var mx = -Float.infinity, arg = -1
            for k in 0..<n where k != i {
                let v = sim[i * n + k] / temperature
                if v > mx { mx = v; arg = k }
            }
            if arg == p { hits += 1 }
            var sum = 0.0
            for k in 0..<n where k != i { sum += Double(exp(sim[i * n + k] / temperature - mx)) }
            loss += log(sum) + Double(mx) - Double(sim[i * n + p] / temperature)
            for k in 0..<n where k != i {
                g[i * n + k] = Float(Double(exp(sim[i * n + k] / temperature - mx)) / sum) * scale
            }
            g[i * n + p] -= scale
        }
        var sym = [Float](repeating: 0, count: n * n)
        for i in 0..<n { for k in 0..<n { sym[i * n + k] = g[i * n + k] + g[k * n + i] } }
        var du = [Float](repeating: 0, count: n * d)
        sym.withUnsafeBufferPointer { sp in
            u.withUnsafeBufferPointer { up in
                du.withUnsafeMutableBufferPointer { dp in
                    BLAS.sgemm(m: n, n: d, k: n, a: sp.baseAddress!, lda: n, b: up.baseAddress!, ldb: d, c: dp.baseAddress!, ldc: d)
                }
            }
        }
        // Through the normalization: ∂z = (∂u − u(u·∂u)) / ‖z‖.
        var dz = du
        for r in 0..<n {
            var dot: Float = 0
            for j in 0..<d { dot += u[r * d + j] * du[r * d + j] }
            for j in 0..<d { dz[r * d + j] = (du[r * d + j] - u[r * d + j] * dot) / norms[r] }
        }
        return Result(loss: Float(loss / Double(n)), gradient: Tensor(shape: z.shape, data: dz), top1: Float(hits) / Float(n))
    }
}
