import Foundation

/// 2-D convolution (square kernel, stride, zero padding) on channel-major [C, N, H, W] tensors, as
/// im2col + one sgemm per chunk of images. The chunk bounds the unfolded matrix to `columnBudget`
/// floats, so memory does not grow with the batch. Weight layout = PyTorch's [out, in, k, k].
public final class Conv2d: Layer {
    public let inChannels, outChannels, kernel, stride, padding: Int
    public let weight: Parameter
    public let bias: Parameter?
    /// Skip ∂input for the first layer of a network (its input is data).
    public var computesInputGradient = true
    /// Upper bound of the unfolded (im2col) buffer in floats.
    public var columnBudget = 8 << 20
    private var input: Tensor?
    /// Unfolding buffers kept between steps (at most `columnBudget` floats each), so a step does
    /// not fault in fresh pages for them.
    private var cols: [Float] = []
    private var dcols: [Float] = []

    public init(_ inChannels: Int, _ outChannels: Int, kernel: Int, stride: Int = 1, padding: Int = 0, bias: Bool = false,
                initializer: inout Initializer) {
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
        let fanIn = inChannels * kernel * kernel
        weight = Parameter(shape: [outChannels, inChannels, kernel, kernel], kind: .weight,
                           value: initializer.kaimingNormal(count: outChannels * fanIn, fanOut: outChannels * kernel * kernel))
        self.bias = bias ? Parameter(shape: [outChannels], kind: .bias,
                                     value: initializer.uniform(count: outChannels, bound: 1 / Float(fanIn).squareRoot())) : nil
    }

    public var namedParameters: [(name: String, parameter: Parameter)] {
        [("weight", weight)] + (bias.map { [("bias", $0)] } ?? [])
    }

    private func outputSize(_ s: Int) -> Int { (s + 2 * padding - kernel) / stride + 1 }
    private var isPointwise: Bool { kernel == 1 && stride == 1 && padding == 0 }

    private func chunk(images n: Int, outPixels: Int) -> Int {
        max(1, min(n, columnBudget / max(1, inChannels * kernel * kernel * outPixels)))
    }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        precondition(x.shape.count == 4 && x.shape[0] == inChannels, "conv expects [\(inChannels), N, H, W], got \(x.shape)")
        let (n, h, w) = (x.shape[1], x.shape[2], x.shape[3])
        let (oh, ow) = (outputSize(h), outputSize(w))
        let ohw = oh * ow, kk = inChannels * kernel * kernel
        // Every output column is written by exactly one product (beta 0): no zero-fill needed.
        var out = Tensor(shape: [outChannels, n, oh, ow], data: [Float].filled(outChannels * n * ohw) { _ in })
        input = training ? x : nil
        let step = chunk(images: n, outPixels: ohw)
        if !isPointwise, cols.count < kk * step * ohw { cols = [Float](repeating: 0, count: kk * step * ohw) }
        weight.value.withUnsafeBufferPointer { wp in
            x.data.withUnsafeBufferPointer { xp in
                out.data.withUnsafeMutableBufferPointer { op in
                    cols.withUnsafeMutableBufferPointer { cp in
                        var n0 = 0
                        while n0 < n {
                            let cn = min(step, n - n0)
                            if isPointwise {
                                BLAS.sgemm(m: outChannels, n: cn * ohw, k: kk, a: wp.baseAddress!, lda: kk,
                                           b: xp.baseAddress! + n0 * ohw, ldb: n * ohw, c: op.baseAddress! + n0 * ohw, ldc: n * ohw)
                            } else {
                                im2col(xp, n: n, h: h, w: w, n0: n0, count: cn, oh: oh, ow: ow, cols: cp)
                                BLAS.sgemm(m: outChannels, n: cn * ohw, k: kk, a: wp.baseAddress!, lda: kk,
                                           b: cp.baseAddress!, ldb: cn * ohw, c: op.baseAddress! + n0 * ohw, ldc: n * ohw)
                            }
                            n0 += cn
                        }
                        if let b = bias {
                            let row = n * ohw
                            for o in 0..<outChannels {
                                let v = b.value[o]
                                for i in 0..<row { op[o * row + i] += v }
                            }
                        }
                    }
                }
            }
        }
        return out
    }

    public func backward(_ dy: Tensor) -> Tensor {
        guard let x = input else { preconditionFailure("Conv2d.backward without forward") }
        let (n, h, w) = (x.shape[1], x.shape[2], x.shape[3])
        let (oh, ow) = (dy.shape[2], dy.shape[3])
        let ohw = oh * ow, kk = inChannels * kernel * kernel
        // Stride-1 "same" convolutions (every 3×3 conv here but the strided ones) take ∂X as a
        // convolution; the others scatter-add unfolded gradients back (col2im).
        let transposed = computesInputGradient && !isPointwise && stride == 1 && oh == h && ow == w
        let flipped: [Float]? = transposed ? flippedWeight() : nil
        let rows = transposed ? max(kk, outChannels * kernel * kernel) : kk
        let step = max(1, min(n, columnBudget / max(1, rows * ohw)))
        var dx = transposed ? Tensor(shape: x.shape, data: [Float].filled(x.count) { _ in })
                            : Tensor(zeros: computesInputGradient ? x.shape : [0, 0, 0, 0])
        if !isPointwise, cols.count < kk * step * ohw { cols = [Float](repeating: 0, count: kk * step * ohw) }
        if !isPointwise, computesInputGradient, dcols.count < rows * step * ohw { dcols = [Float](repeating: 0, count: rows * step * ohw) }
        if let b = bias {
            let row = n * ohw
            dy.data.withUnsafeBufferPointer { gp in
                for o in 0..<outChannels {
                    var s: Float = 0
                    for i in 0..<row { s += gp[o * row + i] }
                    b.grad[o] += s
                }
            }
        }
        weight.value.withUnsafeBufferPointer { wp in
            weight.grad.withUnsafeMutableBufferPointer { gw in
                x.data.withUnsafeBufferPointer { xp in
                    dy.data.withUnsafeBufferPointer { gp in
                        dx.data.withUnsafeMutableBufferPointer { dxp in
                            cols.withUnsafeMutableBufferPointer { cp in
                                dcols.withUnsafeMutableBufferPointer { dcp in
                                    var n0 = 0
                                    while n0 < n {
                                        let cn = min(step, n - n0)
                                        let g = gp.baseAddress! + n0 * ohw
                                        if isPointwise {
                                            // dW += dY · Xᵀ; dX = Wᵀ · dY
                                            BLAS.sgemm(transB: true, m: outChannels, n: kk, k: cn * ohw, a: g, lda: n * ohw,
                                                       b: xp.baseAddress! + n0 * ohw, ldb: n * ohw, beta: 1, c: gw.baseAddress!, ldc: kk)
                                            if computesInputGradient {
                                                BLAS.sgemm(transA: true, m: kk, n: cn * ohw, k: outChannels, a: wp.baseAddress!, lda: kk,
                                                           b: g, ldb: n * ohw, c: dxp.baseAddress! + n0 * ohw, ldc: n * ohw)
                                            }
                                        } else {
                                            im2col(xp, n: n, h: h, w: w, n0: n0, count: cn, oh: oh, ow: ow, cols: cp)
                                            BLAS.sgemm(transB: true, m: outChannels, n: kk, k: cn * ohw, a: g, lda: n * ohw,
                                                       b: cp.baseAddress!, ldb: cn * ohw, beta: 1, c: gw.baseAddress!, ldc: kk)
                                            if computesInputGradient, let wf = flipped {
                                                // ∂X = convolution of ∂Y with the flipped, transposed kernel: one product with
                                                // K = out·k·k instead of K = out followed by a scatter-add (col2im).
                                                let kt = outChannels * kernel * kernel
                                                Self.unfold(gp, channels: outChannels, kernel: kernel, stride: 1, padding: kernel - 1 - padding,
                                                            n: n, h: oh, w: ow, n0: n0, count: cn, oh: h, ow: w, cols: dcp)
                                                wf.withUnsafeBufferPointer { fp in
                                                    BLAS.sgemm(m: inChannels, n: cn * h * w, k: kt, a: fp.baseAddress!, lda: kt,
                                                               b: dcp.baseAddress!, ldb: cn * h * w, c: dxp.baseAddress! + n0 * h * w, ldc: n * h * w)
                                                }
                                            } else if computesInputGradient {
                                                BLAS.sgemm(transA: true, m: kk, n: cn * ohw, k: outChannels, a: wp.baseAddress!, lda: kk,
                                                           b: g, ldb: n * ohw, c: dcp.baseAddress!, ldc: cn * ohw)
                                                col2im(dcp, n: n, h: h, w: w, n0: n0, count: cn, oh: oh, ow: ow, dx: dxp)
                                            }
                                        }
                                        n0 += cn
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        input = nil
        return dx
    }

    /// Unfolds images [n0, n0+count) of x [C, N, H, W] into cols [C·k·k, count·OH·OW]; rows ordered
    /// (channel, ky, kx) to match the weight's memory layout.
    private func im2col(_ x: UnsafeBufferPointer<Float>, n: Int, h: Int, w: Int, n0: Int, count: Int, oh: Int, ow: Int,
                        cols: UnsafeMutableBufferPointer<Float>) {
        Self.unfold(x, channels: inChannels, kernel: kernel, stride: stride, padding: padding, n: n, h: h, w: w, n0: n0, count: count,
                    oh: oh, ow: ow, cols: cols)
    }

    /// Output columns ox whose input column ox·stride + kx − padding lies inside [0, width).
    static func validColumns(_ kx: Int, stride: Int, padding: Int, width w: Int, outWidth ow: Int) -> (Int, Int) {
        let lo = kx >= padding ? 0 : (padding - kx + stride - 1) / stride
        let last = w - 1 + padding - kx
        let hi = last < 0 ? 0 : min(ow, last / stride + 1)
        return (min(lo, ow), hi)
    }

    /// im2col for any geometry: images [n0, n0+count) of x [channels, N, H, W] → cols
    /// [channels·k·k, count·OH·OW], rows ordered (channel, ky, kx).
    static func unfold(_ x: UnsafeBufferPointer<Float>, channels: Int, kernel k: Int, stride s: Int, padding p: Int,
                       n: Int, h: Int, w: Int, n0: Int, count: Int, oh: Int, ow: Int, cols: UnsafeMutableBufferPointer<Float>) {
        let rowLength = count * oh * ow
        for c in 0..<channels {
            for ky in 0..<k {
                for kx in 0..<k {
                    let row = ((c * k + ky) * k + kx) * rowLength
                    // Valid output columns: 0 ≤ ox·s + kx − p < w.
                    let (oxLo, oxHi) = validColumns(kx, stride: s, padding: p, width: w, outWidth: ow)
                    let cb = cols.baseAddress!, xb = x.baseAddress!
                    for i in 0..<count {
                        let plane = (c &* n &+ n0 &+ i) &* h &* w
                        for oy in 0..<oh {
                            let d = cb + (row &+ (i &* oh &+ oy) &* ow)
                            let iy = oy &* s &+ ky &- p
                            if iy < 0 || iy >= h || oxHi <= oxLo {
                                d.update(repeating: 0, count: ow)
                                continue
                            }
                            if oxLo > 0 { d.update(repeating: 0, count: oxLo) }
                            let src = xb + (plane &+ iy &* w &+ kx &- p)
                            if s == 1 {
                                (d + oxLo).update(from: src + oxLo, count: oxHi &- oxLo)
                            } else {
                                for ox in oxLo..<oxHi { d[ox] = src[ox &* s] }
                            }
                            if oxHi < ow { (d + oxHi).update(repeating: 0, count: ow &- oxHi) }
                        }
                    }
                }
            }
        }
    }

    /// W′[c, (o, ky, kx)] = W[o, c, k−1−ky, k−1−kx]: the kernel of the transposed convolution.
    private func flippedWeight() -> [Float] {
        let k = kernel, kk = k * k
        var out = [Float](repeating: 0, count: inChannels * outChannels * kk)
        for o in 0..<outChannels {
            for c in 0..<inChannels {
                for ky in 0..<k {
                    for kx in 0..<k {
                        out[(c * outChannels + o) * kk + (k - 1 - ky) * k + (k - 1 - kx)] = weight.value[((o * inChannels + c) * k + ky) * k + kx]
                    }
                }
            }
        }
        return out
    }

    /// The adjoint of `im2col`: adds cols back into dx (overlapping windows accumulate).
    private func col2im(_ cols: UnsafeMutableBufferPointer<Float>, n: Int, h: Int, w: Int, n0: Int, count: Int, oh: Int, ow: Int,
                        dx: UnsafeMutableBufferPointer<Float>) {
        let (k, s, p) = (kernel, stride, padding)
        let rowLength = count * oh * ow
        for c in 0..<inChannels {
            for ky in 0..<k {
                for kx in 0..<k {
                    let row = ((c * k + ky) * k + kx) * rowLength
                    let (oxLo, oxHi) = Self.validColumns(kx, stride: s, padding: p, width: w, outWidth: ow)
                    if oxHi <= oxLo { continue }
                    let cb = cols.baseAddress!, db = dx.baseAddress!
                    for i in 0..<count {
                        let plane = (c &* n &+ n0 &+ i) &* h &* w
                        for oy in 0..<oh {
                            let iy = oy &* s &+ ky &- p
                            if iy < 0 || iy >= h { continue }
                            let d = cb + (row &+ (i &* oh &+ oy) &* ow)
                            let dst = db + (plane &+ iy &* w &+ kx &- p)
                            if s == 1 {
                                Kernels.add(dst + oxLo, d + oxLo, oxHi &- oxLo)
                            } else {
                                for ox in oxLo..<oxHi { dst[ox &* s] += d[ox] }
                            }
                        }
                    }
                }
            }
        }
    }
}
