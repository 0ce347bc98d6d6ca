import Foundation

/// The view operations in place on a `ViewCanvas`, byte-identical to their `PixelOps` reference:
/// each computes the same float expression, in the same order, on the same whole-number inputs and
/// truncates the same way, only eight pixels at a time and without a new image per step.
extension ViewCanvas {
    // MARK: Dihedral group

    func flipHorizontal() {
        let w = width
        for c in 0..<3 {
            let p = plane(c)
            for y in 0..<height {
                let row = p + y * w
                var a = 0, b = w - 1
                while a < b { swap(&row[a], &row[b]); a += 1; b -= 1 }
            }
        }
    }

    func flipVertical() {
        let w = width
        for c in 0..<3 {
            let p = plane(c)
            var a = 0, b = height - 1
            while a < b {
                let ra = p + a * w, rb = p + b * w
                for x in 0..<w { swap(&ra[x], &rb[x]) }
                a += 1; b -= 1
            }
        }
    }

    /// Counter-clockwise by k·90°, as `PixelOps.rotate90`.
    func rotate90(times k: Int) {
        let k = ((k % 4) + 4) % 4
        if k == 0 { return }
        if k == 2 { flipHorizontal(); flipVertical(); return }
        let w = width, h = height, dst = sparePlanes()
        for c in 0..<3 {
            let s = plane(c), d = dst + c * planeStride
            // Output (ny, nx) of a w-high, h-wide image.
            if k == 1 {
                for ny in 0..<w { for nx in 0..<h { d[ny * h + nx] = s[nx * w + (w - 1 - ny)] } }
            } else {
                for ny in 0..<w { for nx in 0..<h { d[ny * h + nx] = s[(h - 1 - nx) * w + ny] } }
            }
        }
        swapPlanes(width: h, height: w)
    }

    // MARK: Colour (torchvision semantics on uint8, see PixelOps)

    /// blend with a constant: x ← trunc(f·x + add) on all three planes.
    private func blend(_ f: Float, add: Float) {
        let f8 = SIMD8<Float>(repeating: f), a8 = SIMD8<Float>(repeating: add)
        let p = planes
        let end = 3 * planeStride
        var i = 0
        if 0 <= f && f <= 1 && add >= 0 {
            // A convex mix of values in 0…255 stays in 0…255 (+ rounding, still below 256): the
            // clamp cannot change anything, the truncation is a floor.
            while i < end { store8(floorOf(f8 * load8(p, i) + a8), p, i); i &+= 8 }
        } else {
            while i < end { store8(byteValue(f8 * load8(p, i) + a8), p, i); i &+= 8 }
        }
    }

    /// torchvision's grayscale of pixels i…i+7, truncated.
    @_transparent private static func gray8(_ r: UnsafeMutablePointer<Float>, _ g: UnsafeMutablePointer<Float>,
                                            _ b: UnsafeMutablePointer<Float>, _ i: Int) -> SIMD8<Float> {
        byteValue(0.2989 * load8(r, i) + 0.587 * load8(g, i) + 0.114 * load8(b, i))
    }

    func brightness(_ f: Float) { blend(f, add: (1 - f) * 0) }

    func contrast(_ f: Float) {
        let n = pixelCount, whole = n & ~7
        var sum: Float = 0
        if Float(n) * 255 < 0x1p24 {
            // The grey values are whole numbers and every partial sum stays below 2²⁴, so the
            // sum is exact in any order: eight lanes give the reference's running sum.
            let r = plane(0), g = plane(1), b = plane(2)
            var acc = SIMD8<Float>.zero
            var i = 0
            while i < whole { acc += Self.gray8(r, g, b, i); i &+= 8 }
            sum = acc.sum()
            while i < n { sum += Float(PixelOps.gray(UInt8(r[i]), UInt8(g[i]), UInt8(b[i]))); i += 1 }
        } else {
            // Past 2²⁴ the reference's running Float sum rounds: repeat it, in its order.
            let r = plane(0), g = plane(1), b = plane(2)
            for i in 0..<n { sum += Float(PixelOps.gray(UInt8(r[i]), UInt8(g[i]), UInt8(b[i]))) }
        }
        blend(f, add: (1 - f) * (sum / Float(max(1, n))))
    }

    func saturation(_ f: Float) {
        if 0 <= f && f <= 1 { saturation(f, clamp: false) } else { saturation(f, clamp: true) }
    }

    /// `clamp: false` when f ∈ 0…1: a convex mix of a channel and its grey stays in 0…255.
    @inline(__always) private func saturation(_ f: Float, clamp: Bool) {
        let f8 = SIMD8<Float>(repeating: f), g8 = SIMD8<Float>(repeating: 1 - f)
        let r = plane(0), g = plane(1), b = plane(2)
        let end = planeStride
        var i = 0
        while i < end {
            let grey = g8 * Self.gray8(r, g, b, i)
            let ro = f8 * load8(r, i) + grey, go = f8 * load8(g, i) + grey, bo = f8 * load8(b, i) + grey
            store8(clamp ? byteValue(ro) : floorOf(ro), r, i)
            store8(clamp ? byteValue(go) : floorOf(go), g, i)
            store8(clamp ? byteValue(bo) : floorOf(bo), b, i)
            i &+= 8
        }
    }

    /// HSV hue shift by `h` turns, the branches of `PixelOps.hue` as lane masks.
    func hue(_ h: Float) {
        let rp = plane(0), gp = plane(1), bp = plane(2)
        let end = planeStride
        var i = 0
        while i < end {
            let r = load8(rp, i) / 255, g = load8(gp, i) / 255, b = load8(bp, i) / 255
            let maxc = max8(max8(r, g), b), minc = min8(min8(r, g), b)
            let v = maxc, cr = maxc - minc
            let s = cr / select(maxc .== 0, .one, maxc)
            let crDiv = select(cr .== 0, .one, cr)
            let rc = (maxc - r) / crDiv, gc = (maxc - g) / crDiv, bc = (maxc - b) / crDiv
            let isR = maxc .== r, isG = (.!isR) .& (maxc .== g)
            var hh = (4 + gc - rc)
            hh = select(isG, 2 + rc - bc, hh)
            hh = select(isR, bc - gc, hh)
            hh = hh / 6 + 1
            hh = select(hh .>= 1, hh - 1, hh)
            hh += h
            let wrapped = hh .>= 1
            hh = select(wrapped, hh - 1, hh)
            hh = select((.!wrapped) .& (hh .< 0), hh + 1, hh)
            let h6 = hh * 6
            let i6 = floorOf(h6)
            let f = h6 - i6
            let p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f))
            // Each output is one of v, p, q, t by sector (sector 6, hh rounding up to 1, is sector
            // 0 as `Int(i6) % 6` makes it): and/or on the masks, exact and fewer steps than selects.
            let k0 = bits(i6 .== 0) | bits(i6 .== 6), k1 = bits(i6 .== 1), k2 = bits(i6 .== 2)
            let k3 = bits(i6 .== 3), k4 = bits(i6 .== 4), k5 = bits(i6 .== 5)
            let vb = bits(v), pb = bits(p), qb = bits(q), tb = bits(t)
            let ro = (vb & (k0 | k5)) | (qb & k1) | (pb & (k2 | k3)) | (tb & k4)
            let go = (tb & k0) | (vb & (k1 | k2)) | (qb & k3) | (pb & (k4 | k5))
            let bo = (pb & (k0 | k1)) | (tb & k2) | (vb & (k3 | k4)) | (qb & k5)
            // All of v, p, q, t lie in 0…1, so ×255 needs no clamp before the truncation.
            store8(floorOf(float(ro) * 255), rp, i); store8(floorOf(float(go) * 255), gp, i); store8(floorOf(float(bo) * 255), bp, i)
            i &+= 8
        }
    }

    func grayscale() {
        let r = plane(0), g = plane(1), b = plane(2)
        let end = planeStride
        var i = 0
        while i < end {
            let y = Self.gray8(r, g, b, i)
            store8(y, r, i); store8(y, g, i); store8(y, b, i)
            i &+= 8
        }
    }

    func solarize(threshold: Int = 128) {
        let t = SIMD8<Float>(repeating: Float(threshold)), p = planes
        let end = 3 * planeStride
        var i = 0
        while i < end {
            let x = load8(p, i)
            store8(select(x .>= t, 255 - x, x), p, i)
            i &+= 8
        }
    }

    /// Separable Gaussian blur as `PixelOps.gaussianBlur` (same kernel, reflected edges, same
    /// order of sums), one plane at a time.
    func gaussianBlur(sigma: Double) {
        guard sigma > 0 else { return }
        let w = width, h = height
        let (radius, kernel) = PixelOps.gaussianKernel(sigma: sigma, width: w, height: h)
        let taps = 2 * radius + 1
        let reflect = PixelOps.reflectIndex
        let padded = w + 2 * radius
        let mid = scratch(w * h + padded + 8 + taps), row = mid + w * h
        let whole = w & ~7
        // Rows the vertical taps read, per output row: reflected once, not per pixel.
        let rows = UnsafeMutablePointer<UnsafeMutablePointer<Float>>.allocate(capacity: taps)
        defer { rows.deallocate() }
        kernel.withUnsafeBufferPointer { kb in
            let k = kb.baseAddress!
            for c in 0..<3 {
                let p = plane(c)
                // Horizontal: each row copied once into a reflected, padded row, taps outermost.
                for y in 0..<h {
                    let src = p + y * w
                    for x in 0..<radius { row[x] = src[reflect(x - radius, w)]; row[radius + w + x] = src[reflect(w + x, w)] }
                    (row + radius).update(from: src, count: w)
                    let m = mid + y * w
                    var x = 0
                    // Sixteen columns at a time: two independent add chains.
                    while x &+ 16 <= whole {
                        var a0 = SIMD8<Float>.zero, a1 = a0
                        var t = 0
                        while t < taps { a0 += load8(row, x &+ t) * k[t]; a1 += load8(row, x &+ 8 &+ t) * k[t]; t &+= 1 }
                        store8(a0, m, x); store8(a1, m, x &+ 8)
                        x &+= 16
                    }
                    while x < whole {
                        var acc = SIMD8<Float>.zero
                        var t = 0
                        while t < taps { acc += load8(row, x &+ t) * k[t]; t &+= 1 }
                        store8(acc, m, x)
                        x &+= 8
                    }
                    while x < w {
                        var acc: Float = 0
                        for t in 0..<taps { acc += row[x + t] * k[t] }
                        m[x] = acc
                        x += 1
                    }
                }
                // Vertical, back into the plane: 0.5 then the taps in order, truncated.
                for y in 0..<h {
                    for t in 0..<taps { rows[t] = mid + reflect(y + t - radius, h) * w }
                    let d = p + y * w
                    var x = 0
                    while x &+ 16 <= whole {
                        var a0 = SIMD8<Float>(repeating: 0.5), a1 = a0
                        var t = 0
                        while t < taps { a0 += load8(rows[t], x) * k[t]; a1 += load8(rows[t], x &+ 8) * k[t]; t &+= 1 }
                        store8(byteValue(a0), d, x); store8(byteValue(a1), d, x &+ 8)
                        x &+= 16
                    }
                    while x < whole {
                        var acc = SIMD8<Float>(repeating: 0.5)
                        var t = 0
                        while t < taps { acc += load8(rows[t], x) * k[t]; t &+= 1 }
                        store8(byteValue(acc), d, x)
                        x &+= 8
                    }
                    while x < w {
                        var acc: Float = 0.5
                        for t in 0..<taps { acc += rows[t][x] * k[t] }
                        d[x] = byteValue(acc)
                        x += 1
                    }
                }
            }
        }
    }
}
