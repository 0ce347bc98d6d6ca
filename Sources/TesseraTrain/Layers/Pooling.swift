/// Max pooling with a square window and stride equal to the window (PyTorch MaxPool2d(k), floor
/// mode) on channel-major [C, N, H, W]. Ties go to the first maximum, as PyTorch's CPU kernel.
public final class MaxPool2d: Layer {
    public let window: Int
    private var argmax: [Int32] = []
    private var inputShape: [Int] = []

    public init(_ window: Int = 2) { self.window = window }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        let (c, n, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let k = window, oh = h / k, ow = w / k
        var y = Tensor(zeros: [c, n, oh, ow])
        inputShape = x.shape
        if training { argmax = [Int32](repeating: 0, count: y.count) }
        x.data.withUnsafeBufferPointer { xp in
            y.data.withUnsafeMutableBufferPointer { yp in
                argmax.withUnsafeMutableBufferPointer { ap in
                    if k == 2 {
                        Self.pool2(xp.baseAddress!, yp.baseAddress!, training ? ap.baseAddress : nil, planes: c * n, h: h, w: w, oh: oh, ow: ow)
                        return
                    }
                    for plane in 0..<(c * n) {
                        let ib = plane * h * w, ob = plane * oh * ow
                        for oy in 0..<oh {
                            for ox in 0..<ow {
                                var best = ib + oy * k * w + ox * k
                                var v = xp[best]
                                for dy in 0..<k {
                                    for dx in 0..<k {
                                        let j = ib + (oy * k + dy) * w + ox * k + dx
                                        if xp[j] > v || xp[j].isNaN { v = xp[j]; best = j }
                                    }
                                }
                                yp[ob + oy * ow + ox] = v
                                if training { ap[ob + oy * ow + ox] = Int32(best) }
                            }
                        }
                    }
                }
            }
        }
        return y
    }

    /// The 2×2 case (every ConvNet stage): four loads per output, first maximum wins, NaN propagates.
    private static func pool2(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ arg: UnsafeMutablePointer<Int32>?,
                              planes: Int, h: Int, w: Int, oh: Int, ow: Int) {
        for plane in 0..<planes {
            let ib = plane &* h &* w, ob = plane &* oh &* ow
            for oy in 0..<oh {
                let r0 = ib &+ 2 &* oy &* w, r1 = r0 &+ w
                let o = ob &+ oy &* ow
                for ox in 0..<ow {
                    let a = r0 &+ 2 &* ox, c = r1 &+ 2 &* ox
                    var j = a
                    var v = x[a]
                    // Selects rather than branches: which of the four wins is data-dependent and would
                    // mispredict. (NaN does not propagate here; a NaN loss stops training anyway.)
                    @inline(__always) func take(_ i: Int) {
                        let u = x[i]
                        let better = u > v
                        v = better ? u : v
                        j = better ? i : j
                    }
                    take(a &+ 1)
                    take(c)
                    take(c &+ 1)
                    y[o &+ ox] = v
                    arg?[o &+ ox] = Int32(truncatingIfNeeded: j)
                }
            }
        }
    }

    public func backward(_ dy: Tensor) -> Tensor {
        var dx = Tensor(zeros: inputShape)
        dy.data.withUnsafeBufferPointer { gp in
            argmax.withUnsafeBufferPointer { ap in
                dx.data.withUnsafeMutableBufferPointer { dp in
                    for i in gp.indices { dp[Int(ap[i])] += gp[i] }
                }
            }
        }
        argmax = []
        return dx
    }
}

/// Global average pooling: channel-major [C, N, H, W] → feature matrix [N, C].
public final class GlobalAvgPool: Layer {
    private var inputShape: [Int] = []
    public init() {}

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        let (c, n, hw) = (x.shape[0], x.shape[1], x.shape[2] * x.shape[3])
        inputShape = x.shape
        var y = Tensor(zeros: [n, c])
        x.data.withUnsafeBufferPointer { xp in
            for ch in 0..<c {
                for i in 0..<n {
                    var s: Float = 0
                    let b = (ch * n + i) * hw
                    for j in 0..<hw { s += xp[b + j] }
                    y.data[i * c + ch] = s / Float(hw)
                }
            }
        }
        return y
    }

    public func backward(_ dy: Tensor) -> Tensor {
        let (c, n, hw) = (inputShape[0], inputShape[1], inputShape[2] * inputShape[3])
        var dx = Tensor(zeros: inputShape)
        dx.data.withUnsafeMutableBufferPointer { dp in
            for ch in 0..<c {
                for i in 0..<n {
                    let g = dy.data[i * c + ch] / Float(hw)
                    let b = (ch * n + i) * hw
                    for j in 0..<hw { dp[b + j] = g }
                }
            }
        }
        return dx
    }
}
