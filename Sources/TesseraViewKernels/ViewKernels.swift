// The hot loops of view generation, on raw float planes. This file (with Lanes.swift) is compiled
// twice: as TesseraViewKernels for baseline x86-64 and, through symlinks, as TesseraViewKernelsAVX2
// with `-target-cpu haswell` (see Package.swift). TesseraAugment picks one at run time by the CPU's
// features. Only plain float adds, multiplies, divides, compares and bit operations are used, in the
// order the `PixelOps` references compute them — no fused multiply-add is formed (Swift emits no
// contractible arithmetic) — so both builds give the same bytes (tested).
//
// The planes hold whole numbers 0…255 (bytes kept as Float), each `count` rounded up to a multiple
// of 8 with finite padding lanes that no result reads.

public enum ViewKernels: Sendable {
    // MARK: Colour (torchvision semantics on uint8)

    /// blend with a constant: x ← trunc(clamp(f·x + add)) over `count` floats (a multiple of 8).
    public static func blend(_ p: UnsafeMutablePointer<Float>, count end: Int, factor f: Float, add: Float) {
        let f8 = SIMD8<Float>(repeating: f), a8 = SIMD8<Float>(repeating: add)
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
    @_transparent static func gray8(_ r: UnsafeMutablePointer<Float>, _ g: UnsafeMutablePointer<Float>,
                                    _ b: UnsafeMutablePointer<Float>, _ i: Int) -> SIMD8<Float> {
        byteValue(0.2989 * load8(r, i) + 0.587 * load8(g, i) + 0.114 * load8(b, i))
    }

    @inline(__always) static func gray(_ r: Float, _ g: Float, _ b: Float) -> Float {
        byteValue(0.2989 * r + 0.587 * g + 0.114 * b)
    }

    /// The sum of the truncated greys of n pixels, as a running Float sum in pixel order gives it.
    public static func graySum(_ r: UnsafeMutablePointer<Float>, _ g: UnsafeMutablePointer<Float>,
                               _ b: UnsafeMutablePointer<Float>, count n: Int) -> Float {
        var sum: Float = 0
        if Float(n) * 255 < 0x1p24 {
            // The grey values are whole numbers and every partial sum stays below 2²⁴, so the
            // sum is exact in any order: eight lanes give the reference's running sum.
            let whole = n & ~7
            var acc = SIMD8<Float>.zero
            var i = 0
            while i < whole { acc += gray8(r, g, b, i); i &+= 8 }
            sum = acc.sum()
            while i < n { sum += gray(r[i], g[i], b[i]); i += 1 }
        } else {
            // Past 2²⁴ the reference's running Float sum rounds: repeat it, in its order.
            for i in 0..<n { sum += gray(r[i], g[i], b[i]) }
        }
        return sum
    }

    public static func saturation(_ r: UnsafeMutablePointer<Float>, _ g: UnsafeMutablePointer<Float>,
                                  _ b: UnsafeMutablePointer<Float>, count: Int, factor f: Float) {
        if 0 <= f && f <= 1 { saturation(r, g, b, count, f, clamp: false) } else { saturation(r, g, b, count, f, clamp: true) }
    }

    /// `clamp: false` when f ∈ 0…1: a convex mix of a channel and its grey stays in 0…255.
    @inline(__always) static func saturation(_ r: UnsafeMutablePointer<Float>, _ g: UnsafeMutablePointer<Float>,
                                             _ b: UnsafeMutablePointer<Float>, _ end: Int, _ f: Float, clamp: Bool) {
        let f8 = SIMD8<Float>(repeating: f), g8 = SIMD8<Float>(repeating: 1 - f)
        var i = 0
        while i < end {
            let grey = g8 * gray8(r, g, b, i)
            let ro = f8 * load8(r, i) + grey, go = f8 * load8(g, i) + grey, bo = f8 * load8(b, i) + grey
            store8(clamp ? byteValue(ro) : floorOf(ro), r, i)
            store8(clamp ? byteValue(go) : floorOf(go), g, i)
            store8(clamp ? byteValue(bo) : floorOf(bo), b, i)
            i &+= 8
        }
    }

    /// x/255 for whole x in 0…255, exactly as the division rounds it: 0x1.01p-8 has nine significant
    /// bits, so x·hi is exact, and x·lo (lo = 1/255 − hi, correctly rounded) corrects it far below
    /// half an ulp; x/255 repeats x's eight bits forever, so it is never near a rounding tie. The
    /// sum then rounds as the quotient does (checked for all 256 values in the tests).
    @_transparent static func over255(_ x: SIMD8<Float>) -> SIMD8<Float> {
        x * 0x1.01p-8 + x * 0x1.010102p-24
    }

    /// HSV hue shift by `h` turns, the branches of `PixelOps.hue` as lane masks, with the same
    /// float values at every step; only the arithmetic that cannot change them is saved (x/255 as
    /// above, and two of the three chroma quotients: each branch of the reference reads two).
    public static func hue(_ rp: UnsafeMutablePointer<Float>, _ gp: UnsafeMutablePointer<Float>,
                           _ bp: UnsafeMutablePointer<Float>, count end: Int, shift h: Float) {
        var i = 0
        while i < end {
            let rb = load8(rp, i), gb = load8(gp, i), bb = load8(bp, i)
            let r = over255(rb), g = over255(gb), b = over255(bb)
            let maxc = max8(max8(r, g), b), minc = min8(min8(r, g), b)
            let v = maxc, cr = maxc - minc
            let s = cr / select(maxc .== 0, .one, maxc)
            let crDiv = select(cr .== 0, .one, cr)
            // maxc == r: bc − gc; maxc == g: 2 + rc − bc; else 4 + gc − rc, with xc = (maxc − x)/crDiv.
            // As (base + A/crDiv) − B/crDiv: 0 + bc is bc exactly (bc ≥ +0).
            let isR = maxc .== r, isG = (.!isR) .& (maxc .== g)
            let first = select(isR, b, select(isG, r, g)), second = select(isR, g, select(isG, b, r))
            let base = select(isR, .zero, select(isG, SIMD8(repeating: 2), SIMD8(repeating: 4)))
            var hh = (base + (maxc - first) / crDiv) - (maxc - second) / crDiv
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
            // Each output is one of v, p, q, t by sector 0…5 (sector 6, hh rounding up to 1, is
            // sector 0 as `Int(i6) % 6` makes it): blends on "sector ≥ k", exact selections.
            let ge1 = i6 .>= 1, ge2 = i6 .>= 2, ge3 = i6 .>= 3, ge4 = i6 .>= 4, ge5 = i6 .>= 5, ge6 = i6 .>= 6
            // r: v q p p t v (v);  g: t v v q p p (t);  b: p p t v v q (p).
            let ro = select(ge5, v, select(ge4, t, select(ge2, p, select(ge1, q, v))))
            let go = select(ge6, t, select(ge4, p, select(ge3, q, select(ge1, v, t))))
            let bo = select(ge6, p, select(ge5, q, select(ge3, v, select(ge2, t, p))))
            // All of v, p, q, t lie in 0…1, so ×255 needs no clamp before the truncation.
            store8(floorOf(ro * 255), rp, i); store8(floorOf(go * 255), gp, i); store8(floorOf(bo * 255), bp, i)
            i &+= 8
        }
    }

    public static func grayscale(_ r: UnsafeMutablePointer<Float>, _ g: UnsafeMutablePointer<Float>,
                                 _ b: UnsafeMutablePointer<Float>, count end: Int) {
        var i = 0
        while i < end {
            let y = gray8(r, g, b, i)
            store8(y, r, i); store8(y, g, i); store8(y, b, i)
            i &+= 8
        }
    }

    public static func solarize(_ p: UnsafeMutablePointer<Float>, count end: Int, threshold: Float) {
        let t = SIMD8<Float>(repeating: threshold)
        var i = 0
        while i < end {
            let x = load8(p, i)
            store8(select(x .>= t, 255 - x, x), p, i)
            i &+= 8
        }
    }

    /// Float32 (v·scale − shift) of n values.
    public static func normalize(_ src: UnsafeMutablePointer<Float>, into dst: UnsafeMutablePointer<Float>, count n: Int,
                                 scale: Float, shift: Float) {
        let whole = n & ~7
        let s8 = SIMD8<Float>(repeating: scale), h8 = SIMD8<Float>(repeating: shift)
        var i = 0
        while i < whole { store8(load8(src, i) * s8 - h8, dst, i); i &+= 8 }
        while i < n { dst[i] = src[i] * scale - shift; i += 1 }
    }

    // MARK: Gaussian blur

    /// Mirror reflection of index i into 0..<n (edge pixel not repeated).
    @inline(__always) static func reflect(_ i: Int, _ n: Int) -> Int {
        var i = i
        if n == 1 { return 0 }
        while i < 0 || i >= n { i = i < 0 ? -i : 2 * (n - 1) - i }
        return i
    }

    /// Separable blur of one w × h plane in place with a normalized kernel of 2·radius + 1 taps,
    /// edges reflected: horizontal sums from 0, vertical from 0.5, taps in order, truncated.
    /// `scratch` holds at least w·h + w + 2·radius + 8 floats.
    public static func gaussianBlur(_ p: UnsafeMutablePointer<Float>, width w: Int, height h: Int,
                                    kernel k: UnsafePointer<Float>, radius: Int, scratch mid: UnsafeMutablePointer<Float>) {
        let taps = 2 * radius + 1
        let row = mid + w * h
        let whole = w & ~7
        // Rows the vertical taps read, per output row: reflected once, not per pixel.
        let rows = UnsafeMutablePointer<UnsafeMutablePointer<Float>>.allocate(capacity: taps)
        defer { rows.deallocate() }
        // Horizontal: each row copied once into a reflected, padded row, taps outermost.
        for y in 0..<h {
            let src = p + y * w
            for x in 0..<radius { row[x] = src[reflect(x - radius, w)]; row[radius + w + x] = src[reflect(w + x, w)] }
            (row + radius).update(from: src, count: w)
            let m = mid + y * w
            var x = 0
            // 32 columns at a time: four independent add chains (each column still sums in tap order).
            while x &+ 32 <= whole {
                var a0 = SIMD8<Float>.zero, a1 = a0, a2 = a0, a3 = a0
                var t = 0
                while t < taps {
                    let kt = k[t], q = row + (x &+ t)
                    a0 += load8(q, 0) * kt; a1 += load8(q, 8) * kt; a2 += load8(q, 16) * kt; a3 += load8(q, 24) * kt
                    t &+= 1
                }
                store8(a0, m, x); store8(a1, m, x &+ 8); store8(a2, m, x &+ 16); store8(a3, m, x &+ 24)
                x &+= 32
            }
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
            weightedRows(taps: taps, width: w, rows: rows, weights: k, into: p + y * w)
        }
    }

    /// One output row of a vertical pass: per column 0.5 plus, in tap order, rows[t][x] · weights[t],
    /// truncated to a byte value; 32 columns at a time in four independent add chains (each column
    /// still sums in tap order, so the bytes do not depend on the chunking).
    @inline(__always) static func weightedRows(taps n: Int, width: Int, rows: UnsafePointer<UnsafeMutablePointer<Float>>,
                                               weights: UnsafePointer<Float>, into d: UnsafeMutablePointer<Float>) {
        let whole = width & ~7
        var x = 0
        while x &+ 32 <= whole {
            var a0 = SIMD8<Float>(repeating: 0.5), a1 = a0, a2 = a0, a3 = a0
            var t = 0
            while t < n {
                let q = rows[t] + x, wt = weights[t]
                a0 += load8(q, 0) * wt; a1 += load8(q, 8) * wt; a2 += load8(q, 16) * wt; a3 += load8(q, 24) * wt
                t &+= 1
            }
            store8(byteValue(a0), d, x); store8(byteValue(a1), d, x &+ 8)
            store8(byteValue(a2), d, x &+ 16); store8(byteValue(a3), d, x &+ 24)
            x &+= 32
        }
        while x &+ 16 <= whole {
            var a0 = SIMD8<Float>(repeating: 0.5), a1 = a0
            var t = 0
            while t < n {
                let q = rows[t], wt = weights[t]
                a0 += load8(q, x) * wt; a1 += load8(q, x &+ 8) * wt
                t &+= 1
            }
            store8(byteValue(a0), d, x); store8(byteValue(a1), d, x &+ 8)
            x &+= 16
        }
        while x < whole {
            var acc = SIMD8<Float>(repeating: 0.5)
            var t = 0
            while t < n { acc += load8(rows[t], x) * weights[t]; t &+= 1 }
            store8(byteValue(acc), d, x)
            x &+= 8
        }
        while x < width {
            var acc: Float = 0.5
            for t in 0..<n { acc += rows[t][x] * weights[t] }
            d[x] = byteValue(acc)
            x += 1
        }
    }

    // MARK: Resampling

    /// Horizontal pass: `rows` rows of `src` (RGB interleaved floats plus one float of padding,
    /// `srcWidth` pixels a row) from row `rowLo`, each output column o the sum over its taps, from 0,
    /// in tap order, of pixel start[o] + k times weight (broadcast to four lanes) o·stride + k; into
    /// three planes of rows × outWidth floats `planeLen` apart, mirrored if asked.
    public static func resampleRows(_ src: UnsafePointer<Float>, srcWidth: Int, rowLo: Int, rows: Int,
                                    start: UnsafePointer<Int32>, count: UnsafePointer<Int32>,
                                    weights wBase: UnsafePointer<SIMD4<Float>>, stride: Int,
                                    outWidth: Int, mirrored: Bool, into mid: UnsafeMutablePointer<Float>, planeLen: Int) {
        // Pointer steps and wrapping index arithmetic: the offsets are bounded by the
        // coefficients (inside the source), and checked adds dominated this loop.
        let base = UnsafeRawPointer(src), rowBytes = 12 &* srcWidth
        @inline(__always) func px(_ p: UnsafeRawPointer, _ byteOffset: Int) -> SIMD4<Float> {
            p.loadUnaligned(fromByteOffset: byteOffset, as: SIMD4<Float>.self)
        }
        @inline(__always) func put(_ a: SIMD4<Float>, row r: Int, _ o: Int) {
            let m = mid + r &* outWidth
            let d = mirrored ? outWidth &- 1 &- o : o
            m[d] = a.x; m[planeLen &+ d] = a.y; m[2 &* planeLen &+ d] = a.z
        }
        // Eight rows at a time, two per eight-lane register: an output's taps and weights are
        // looked up once for all eight, and the four add chains run side by side. Every lane
        // still sums one channel of one output from 0 in its own tap order.
        var r = 0
        while r &+ 8 <= rows {
            let p0 = base + (rowLo &+ r) &* rowBytes
            for o in 0..<outWidth {
                let p = p0 + 12 &* Int(start[o]), n = Int(count[o]), wk = wBase + o &* stride
                var a0 = SIMD8<Float>.zero, a1 = a0, a2 = a0, a3 = a0
                var k = 0, q = 0
                while k < n {
                    let w = SIMD8(lowHalf: wk[k], highHalf: wk[k])
                    a0 += SIMD8(lowHalf: px(p, q), highHalf: px(p, q &+ rowBytes)) * w
                    a1 += SIMD8(lowHalf: px(p, q &+ 2 &* rowBytes), highHalf: px(p, q &+ 3 &* rowBytes)) * w
                    a2 += SIMD8(lowHalf: px(p, q &+ 4 &* rowBytes), highHalf: px(p, q &+ 5 &* rowBytes)) * w
                    a3 += SIMD8(lowHalf: px(p, q &+ 6 &* rowBytes), highHalf: px(p, q &+ 7 &* rowBytes)) * w
                    k &+= 1; q &+= 12
                }
                put(a0.lowHalf, row: r, o); put(a0.highHalf, row: r &+ 1, o)
                put(a1.lowHalf, row: r &+ 2, o); put(a1.highHalf, row: r &+ 3, o)
                put(a2.lowHalf, row: r &+ 4, o); put(a2.highHalf, row: r &+ 5, o)
                put(a3.lowHalf, row: r &+ 6, o); put(a3.highHalf, row: r &+ 7, o)
            }
            r &+= 8
        }
        while r < rows {
            let p0 = base + (rowLo &+ r) &* rowBytes
            for o in 0..<outWidth {
                let p = p0 + 12 &* Int(start[o]), n = Int(count[o]), wk = wBase + o &* stride
                var a = SIMD4<Float>.zero
                var k = 0
                while k < n { a += px(p, 12 &* k) * wk[k]; k &+= 1 }
                put(a, row: r, o)
            }
            r &+= 1
        }
    }

    /// Vertical pass of one plane: output row o from 0.5 plus, in tap order, row start[o] − rowLo + k
    /// of `mid` (outWidth floats a row) times weight o·stride + k, truncated to a byte value.
    public static func resampleColumns(_ mid: UnsafePointer<Float>, rowLo: Int, start: UnsafePointer<Int32>, count: UnsafePointer<Int32>,
                                       weights w: UnsafePointer<Float>, stride: Int, outWidth: Int, outHeight: Int,
                                       into dp: UnsafeMutablePointer<Float>) {
        let mp = UnsafeMutablePointer(mutating: mid)
        let rows = UnsafeMutablePointer<UnsafeMutablePointer<Float>>.allocate(capacity: max(1, stride))
        defer { rows.deallocate() }
        // Whole rows at a time: contiguous, eight columns per step.
        for o in 0..<outHeight {
            let s = Int(start[o]) - rowLo, n = Int(count[o])
            for k in 0..<n { rows[k] = mp + (s + k) * outWidth }
            weightedRows(taps: n, width: outWidth, rows: rows, weights: w + o * stride, into: dp + o * outWidth)
        }
    }
}
