/// Vectorized element-wise loops for the layers. Swift does not auto-vectorize the branchy or
/// overflow-checked forms of these loops, and they move most of a training step's bytes, so they
/// are written over SIMD16<Float> with a scalar tail.
enum Kernels {
    typealias V = SIMD16<Float>

    @inline(__always)
    static func load(_ p: UnsafePointer<Float>, _ i: Int) -> V {
        UnsafeRawPointer(p + i).loadUnaligned(as: V.self)
    }

    @inline(__always)
    static func store(_ v: V, _ p: UnsafeMutablePointer<Float>, _ i: Int) {
        UnsafeMutableRawPointer(p + i).storeBytes(of: v, as: V.self)
    }

    /// out = max(x, 0)
    static func relu(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ n: Int) {
        var i = 0
        let zero = V(repeating: 0)
        while i &+ 16 <= n {
            // replacing(where:) compiles to a compare and blend; pointwiseMax goes lane by lane.
            let v = load(x, i)
            store(v.replacing(with: zero, where: v .< zero), out, i)
            i &+= 16
        }
        while i < n { out[i] = Swift.max(x[i], 0); i &+= 1 }
    }

    /// out = output > 0 ? g : 0 (ReLU's backward from its output)
    static func reluBackward(_ output: UnsafePointer<Float>, _ g: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ n: Int) {
        var i = 0
        let zero = V(repeating: 0)
        while i &+ 16 <= n {
            let keep = load(output, i) .> zero
            store(zero.replacing(with: load(g, i), where: keep), out, i)
            i &+= 16
        }
        while i < n { out[i] = output[i] > 0 ? g[i] : 0; i &+= 1 }
    }

    /// a += b
    static func add(_ a: UnsafeMutablePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) {
        var i = 0
        while i &+ 16 <= n {
            store(load(a, i) + load(b, i), a, i)
            i &+= 16
        }
        while i < n { a[i] += b[i]; i &+= 1 }
    }

    /// (Σ x, Σ x²) in double-precision accumulation of float partial sums per 16 lanes.
    static func sums(_ x: UnsafePointer<Float>, _ n: Int, mean: Float) -> (sum: Double, centredSquares: Double) {
        var i = 0
        var s = V(repeating: 0), q = V(repeating: 0)
        let m = V(repeating: mean)
        var total = 0.0, squares = 0.0
        while i &+ 16 <= n {
            let v = load(x, i)
            let d = v - m
            s += v
            q += d * d
            i &+= 16
            // Fold into doubles every 4096 elements so float lanes never sum too many terms.
            if i & 4095 == 0 { total += Double(s.sum()); squares += Double(q.sum()); s = V(repeating: 0); q = V(repeating: 0) }
        }
        total += Double(s.sum()); squares += Double(q.sum())
        while i < n { let d = x[i] - mean; total += Double(x[i]); squares += Double(d * d); i &+= 1 }
        return (total, squares)
    }

    /// normalized = (x − mean)·inv; y = x·scale + shift
    static func normalize(_ x: UnsafePointer<Float>, _ n: Int, mean: Float, inv: Float, scale: Float, shift: Float,
                          normalized: UnsafeMutablePointer<Float>?, y: UnsafeMutablePointer<Float>) {
        var i = 0
        let vm = V(repeating: mean), vi = V(repeating: inv), vs = V(repeating: scale), vb = V(repeating: shift)
        while i &+ 16 <= n {
            let v = load(x, i)
            if let normalized { store((v - vm) * vi, normalized, i) }
            store(v * vs + vb, y, i)
            i &+= 16
        }
        while i < n {
            normalized?[i] = (x[i] - mean) * inv
            y[i] = x[i] * scale + shift
            i &+= 1
        }
    }

    /// (Σ g, Σ g·n)
    static func dotSums(_ g: UnsafePointer<Float>, _ nrm: UnsafePointer<Float>, _ n: Int) -> (Double, Double) {
        var i = 0
        var s = V(repeating: 0), q = V(repeating: 0)
        var a = 0.0, b = 0.0
        while i &+ 16 <= n {
            let v = load(g, i)
            s += v
            q += v * load(nrm, i)
            i &+= 16
            if i & 4095 == 0 { a += Double(s.sum()); b += Double(q.sum()); s = V(repeating: 0); q = V(repeating: 0) }
        }
        a += Double(s.sum()); b += Double(q.sum())
        while i < n { a += Double(g[i]); b += Double(g[i] * nrm[i]); i &+= 1 }
        return (a, b)
    }

    /// out = scale·(g − mg − n·mgx)
    static func batchNormBackward(_ g: UnsafePointer<Float>, _ nrm: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ n: Int,
                                  scale: Float, mg: Float, mgx: Float) {
        var i = 0
        let vs = V(repeating: scale), vg = V(repeating: mg), vx = V(repeating: mgx)
        while i &+ 16 <= n {
            store(vs * (load(g, i) - vg - load(nrm, i) * vx), out, i)
            i &+= 16
        }
        while i < n { out[i] = scale * (g[i] - mg - nrm[i] * mgx); i &+= 1 }
    }
}
