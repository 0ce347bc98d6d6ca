// The hot loops of view generation, on raw float planes. This file (with Lanes.swift) is compiled
// three times: as TesseraViewKernels for baseline x86-64 and, through symlinks, as
// TesseraViewKernelsAVX2 (`-target-cpu haswell`) and TesseraViewKernelsAVX512 (`-target-cpu
// skylake-avx512`, sixteen-float vectors; see Package.swift). TesseraAugment picks one at run time
// by the CPU's features. Only plain float adds, multiplies, divides, compares and bit operations are
// used, in the order the `PixelOps` references compute them, lane by lane — no fused multiply-add is
// formed (Swift emits no contractible arithmetic) — so all builds give the same bytes (tested).
//
// The planes hold whole numbers 0…255 (bytes kept as Float), each `count` rounded up to a multiple
// of 16 (whole vectors in every build) with finite padding lanes that no result reads.

public enum ViewKernels: Sendable {
    // MARK: Colour (torchvision semantics on uint8)

    /// blend with a constant: x ← trunc(clamp(f·x + add)) over `count` floats (a multiple of 16).
    public static func blend(_ p: UnsafeMutablePointer<Float>, count end: Int, factor f: Float, add: Float) {
        let f8 = V(repeating: f), a8 = V(repeating: add)
        var i = 0
        if 0 <= f && f <= 1 && add >= 0 {
            // A convex mix of values in 0…255 stays in 0…255 (+ rounding, still below 256): the
            // clamp cannot change anything, the truncation is a floor.
            while i < end { storeV(floorOf(f8 * loadV(p, i) + a8), p, i); i &+= V.scalarCount }
        } else {
            while i < end { storeV(byteValue(f8 * loadV(p, i) + a8), p, i); i &+= V.scalarCount }
        }
    }

    /// torchvision's grayscale of the L pixels from i, truncated.
    @_transparent static func grayV(_ r: UnsafeMutablePointer<Float>, _ g: UnsafeMutablePointer<Float>,
                                    _ b: UnsafeMutablePointer<Float>, _ i: Int) -> V {
        byteValue(0.2989 * loadV(r, i) + 0.587 * loadV(g, i) + 0.114 * loadV(b, i))
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
            // sum is exact in any order: summing in L lanes gives the reference's running sum.
            let whole = n & ~(V.scalarCount - 1)
            var acc = V.zero
            var i = 0
            while i < whole { acc += grayV(r, g, b, i); i &+= V.scalarCount }
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
        let f8 = V(repeating: f), g8 = V(repeating: 1 - f)
        var i = 0
        while i < end {
            let grey = g8 * grayV(r, g, b, i)
            let ro = f8 * loadV(r, i) + grey, go = f8 * loadV(g, i) + grey, bo = f8 * loadV(b, i) + grey
            storeV(clamp ? byteValue(ro) : floorOf(ro), r, i)
            storeV(clamp ? byteValue(go) : floorOf(go), g, i)
            storeV(clamp ? byteValue(bo) : floorOf(bo), b, i)
            i &+= V.scalarCount
        }
    }

    /// x/255 for whole x in 0…255, exactly as the division rounds it: 0x1.01p-8 has nine significant
    /// bits, so x·hi is exact, and x·lo (lo = 1/255 − hi, correctly rounded) corrects it far below
    /// half an ulp; x/255 repeats x's eight bits forever, so it is never near a rounding tie. The
    /// sum then rounds as the quotient does (checked for all 256 values in the tests).
    @_transparent static func over255(_ x: V) -> V {
        x * 0x1.01p-8 + x * 0x1.010102p-24
    }

    /// HSV hue shift by `h` turns, the branches of `PixelOps.hue` as lane masks, with the same
    /// float values at every step; only the arithmetic that cannot change them is saved (x/255 as
    /// above, and two of the three chroma quotients: each branch of the reference reads two).
    public static func hue(_ rp: UnsafeMutablePointer<Float>, _ gp: UnsafeMutablePointer<Float>,
                           _ bp: UnsafeMutablePointer<Float>, count end: Int, shift h: Float) {
        var i = 0
        while i < end {
            let rb = loadV(rp, i), gb = loadV(gp, i), bb = loadV(bp, i)
            let r = over255(rb), g = over255(gb), b = over255(bb)
            let maxc = maxV(maxV(r, g), b), minc = minV(minV(r, g), b)
            let v = maxc, cr = maxc - minc
            let s = cr / select(maxc .== 0, .one, maxc)
            let crDiv = select(cr .== 0, .one, cr)
            // maxc == r: bc − gc; maxc == g: 2 + rc − bc; else 4 + gc − rc, with xc = (maxc − x)/crDiv.
            // As (base + A/crDiv) − B/crDiv: 0 + bc is bc exactly (bc ≥ +0).
            let isR = maxc .== r, isG = (.!isR) .& (maxc .== g)
            let first = select(isR, b, select(isG, r, g)), second = select(isR, g, select(isG, b, r))
            let base = select(isR, .zero, select(isG, V(repeating: 2), V(repeating: 4)))
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
            storeV(floorOf(ro * 255), rp, i); storeV(floorOf(go * 255), gp, i); storeV(floorOf(bo * 255), bp, i)
            i &+= V.scalarCount
        }
    }

    public static func grayscale(_ r: UnsafeMutablePointer<Float>, _ g: UnsafeMutablePointer<Float>,
                                 _ b: UnsafeMutablePointer<Float>, count end: Int) {
        var i = 0
        while i < end {
            let y = grayV(r, g, b, i)
            storeV(y, r, i); storeV(y, g, i); storeV(y, b, i)
            i &+= V.scalarCount
        }
    }

    public static func solarize(_ p: UnsafeMutablePointer<Float>, count end: Int, threshold: Float) {
        let t = V(repeating: threshold)
        var i = 0
        while i < end {
            let x = loadV(p, i)
            storeV(select(x .>= t, 255 - x, x), p, i)
            i &+= V.scalarCount
        }
    }

    /// Float32 (v·scale − shift) of n values.
    public static func normalize(_ src: UnsafeMutablePointer<Float>, into dst: UnsafeMutablePointer<Float>, count n: Int,
                                 scale: Float, shift: Float) {
        let whole = n & ~(V.scalarCount - 1)
        let s8 = V(repeating: scale), h8 = V(repeating: shift)
        var i = 0
        while i < whole { storeV(loadV(src, i) * s8 - h8, dst, i); i &+= V.scalarCount }
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
        let whole = w & ~(V.scalarCount - 1)
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
            // Four vectors of columns at a time: four independent add chains (each column still sums
            // in tap order).
            while x &+ 4 &* L <= whole {
                var a0 = V.zero, a1 = a0, a2 = a0, a3 = a0
                var t = 0
                while t < taps {
                    let kt = k[t], q = row + (x &+ t)
                    a0 += loadV(q, 0) * kt; a1 += loadV(q, L) * kt; a2 += loadV(q, 2 &* L) * kt; a3 += loadV(q, 3 &* L) * kt
                    t &+= 1
                }
                storeV(a0, m, x); storeV(a1, m, x &+ L); storeV(a2, m, x &+ 2 &* L); storeV(a3, m, x &+ 3 &* L)
                x &+= 4 &* L
            }
            while x &+ 2 &* L <= whole {
                var a0 = V.zero, a1 = a0
                var t = 0
                while t < taps { a0 += loadV(row, x &+ t) * k[t]; a1 += loadV(row, x &+ L &+ t) * k[t]; t &+= 1 }
                storeV(a0, m, x); storeV(a1, m, x &+ L)
                x &+= 2 &* L
            }
            while x < whole {
                var acc = V.zero
                var t = 0
                while t < taps { acc += loadV(row, x &+ t) * k[t]; t &+= 1 }
                storeV(acc, m, x)
                x &+= L
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
    /// truncated to a byte value; four vectors of columns at a time in four independent add chains
    /// (each column still sums in tap order, so the bytes do not depend on the chunking).
    @inline(__always) static func weightedRows(taps n: Int, width: Int, rows: UnsafePointer<UnsafeMutablePointer<Float>>,
                                               weights: UnsafePointer<Float>, into d: UnsafeMutablePointer<Float>) {
        let whole = width & ~(V.scalarCount - 1)
        var x = 0
        while x &+ 4 &* L <= whole {
            var a0 = V(repeating: 0.5), a1 = a0, a2 = a0, a3 = a0
            var t = 0
            while t < n {
                let q = rows[t] + x, wt = weights[t]
                a0 += loadV(q, 0) * wt; a1 += loadV(q, L) * wt; a2 += loadV(q, 2 &* L) * wt; a3 += loadV(q, 3 &* L) * wt
                t &+= 1
            }
            storeV(byteValue(a0), d, x); storeV(byteValue(a1), d, x &+ L)
            storeV(byteValue(a2), d, x &+ 2 &* L); storeV(byteValue(a3), d, x &+ 3 &* L)
            x &+= 4 &* L
        }
        while x &+ 2 &* L <= whole {
            var a0 = V(repeating: 0.5), a1 = a0
            var t = 0
            while t < n {
                let q = rows[t], wt = weights[t]
                a0 += loadV(q, x) * wt; a1 += loadV(q, x &+ L) * wt
                t &+= 1
            }
            storeV(byteValue(a0), d, x); storeV(byteValue(a1), d, x &+ L)
            x &+= 2 &* L
        }
        while x < whole {
            var acc = V(repeating: 0.5)
            var t = 0
            while t < n { acc += loadV(rows[t], x) * weights[t]; t &+= 1 }
            storeV(byteValue(acc), d, x)
            x &+= L
        }
        while x < width {
            var acc: Float = 0.5
            for t in 0..<n { acc += rows[t][x] * weights[t] }
            d[x] = byteValue(acc)
            x += 1
        }
    }

    // MARK: Resampling

    /// Lays out 8-bit RGB rows (`width` pixels, `height` rows) for `resampleBlockRows`: per block of
    /// eight rows and per pixel, the eight rows' R, G, B and a zero as floats; rows past `height`
    /// in the last block are zeros. `out` holds ⌈height/8⌉ · width · 32 floats.
    public static func blockRows(_ bytes: UnsafePointer<UInt8>, width w: Int, height h: Int, into out: UnsafeMutablePointer<Float>) {
        let blocks = (h &+ 7) / 8
        // Each row converted whole (a plain loop the compiler vectorizes), then L/4 pixels at a time
        // spread from R, G, B to R, G, B, 0 by one lane shuffle and stored as four-float runs.
        let line = UnsafeMutablePointer<Float>.allocate(capacity: 3 &* w &+ 2 &* L)
        defer { line.deallocate() }
        line.initialize(repeating: 0, count: 3 &* w &+ 2 &* L)
        let keep: SIMDMask<SIMD4<Int32>> = [true, true, true, false]
        for y in 0..<(blocks &* 8) {
            let offset: Int = (y / 8) &* w &* 32 &+ (y % 8) &* 4
            let base = out + offset
            guard y < h else {
                for x in 0..<w { store4(.zero, base + 32 &* x) }
                continue
            }
            let row = bytes + y &* w &* 3
            for i in 0..<(3 &* w) { line[i] = Float(row[i]) }
            var x = 0
            while x &+ L / 4 <= w {
                let v = loadV(line, 3 &* x)
                var spread = V.zero
                for j in 0..<(L / 4) {
                    spread[4 &* j] = v[3 &* j]; spread[4 &* j &+ 1] = v[3 &* j &+ 1]; spread[4 &* j &+ 2] = v[3 &* j &+ 2]
                }
                let d = base + 32 &* x
                for j in 0..<(L / 4) {
                    store4(SIMD4(spread[4 &* j], spread[4 &* j &+ 1], spread[4 &* j &+ 2], spread[4 &* j &+ 3]), d + 32 &* j)
                }
                x &+= L / 4
            }
            while x < w {
                let v = UnsafeRawPointer(line + 3 &* x).loadUnaligned(as: SIMD4<Float>.self)
                store4(SIMD4<Float>.zero.replacing(with: v, where: keep), base + 32 &* x)
                x &+= 1
            }
        }
    }

    /// Horizontal pass over a source in row blocks: `src` holds, per block of eight rows and per
    /// pixel x, the eight rows' R, G, B and a zero, as floats (32 a pixel, `srcWidth` pixels a
    /// block), so the same pixel of eight rows is one contiguous 128-byte run. For blocks
    /// blockLo ..< blockLo + blocks, each output column o is, per row and channel, the sum from 0 in
    /// tap order of pixel start[o] + k times weight o·stride + k — into `mid`, a row of outWidth
    /// RGBX pixels (4 floats each) per source row, mirrored if asked.
    public static func resampleBlockRows(_ src: UnsafePointer<Float>, srcWidth: Int, blockLo: Int, blocks: Int,
                                         start: UnsafePointer<Int32>, count: UnsafePointer<Int32>,
                                         weights wBase: UnsafePointer<Float>, stride: Int,
                                         outWidth: Int, mirrored: Bool, into mid: UnsafeMutablePointer<Float>) {
        // Wrapping index arithmetic: the offsets are bounded by the coefficients (inside the
        // source), and checked adds dominated this loop once.
        let rowFloats = 4 &* outWidth
        for b in 0..<blocks {
            let block = UnsafeMutablePointer(mutating: src) + (blockLo &+ b) &* srcWidth &* 32
            let m = mid + b &* 8 &* rowFloats
#if TESSERA_AVX512_KERNELS
            // Eight rows of one output are two vectors; the adds' latency would bound their two
            // chains, so two outputs with the same tap count go side by side (four chains).
            @inline(__always) func put(_ a0: V, _ a1: V, _ o: Int) {
                let d = m + 4 &* (mirrored ? outWidth &- 1 &- o : o)
                store4(a0.lowHalf.lowHalf, d); store4(a0.lowHalf.highHalf, d + rowFloats)
                store4(a0.highHalf.lowHalf, d + 2 &* rowFloats); store4(a0.highHalf.highHalf, d + 3 &* rowFloats)
                store4(a1.lowHalf.lowHalf, d + 4 &* rowFloats); store4(a1.lowHalf.highHalf, d + 5 &* rowFloats)
                store4(a1.highHalf.lowHalf, d + 6 &* rowFloats); store4(a1.highHalf.highHalf, d + 7 &* rowFloats)
            }
            var o = 0
            while o < outWidth {
                let n = Int(count[o])
                var p = block + 32 &* Int(start[o])
                let wk = wBase + o &* stride
                // Every lane sums one channel of one row from 0 in its own tap order.
                var a0 = V.zero, a1 = a0
                if o &+ 1 < outWidth && Int(count[o &+ 1]) == n {
                    var q = block + 32 &* Int(start[o &+ 1])
                    let wq = wk + stride
                    var b0 = V.zero, b1 = b0
                    var k = 0
                    while k < n {
                        let w = V(repeating: wk[k]), u = V(repeating: wq[k])
                        a0 += loadV(p, 0) * w; a1 += loadV(p, 16) * w
                        b0 += loadV(q, 0) * u; b1 += loadV(q, 16) * u
                        k &+= 1; p += 32; q += 32
                    }
                    put(a0, a1, o); put(b0, b1, o &+ 1)
                    o &+= 2
                } else {
                    var k = 0
                    while k < n {
                        let w = V(repeating: wk[k])
                        a0 += loadV(p, 0) * w; a1 += loadV(p, 16) * w
                        k &+= 1; p += 32
                    }
                    put(a0, a1, o)
                    o &+= 1
                }
            }
#else
            for o in 0..<outWidth {
                var p = block + 32 &* Int(start[o])
                let n = Int(count[o]), wk = wBase + o &* stride
                // Four add chains side by side, two rows each; every lane sums one channel of one
                // row from 0 in its own tap order.
                var a0 = V.zero, a1 = a0, a2 = a0, a3 = a0
                var k = 0
                while k < n {
                    let w = V(repeating: wk[k])
                    a0 += loadV(p, 0) * w; a1 += loadV(p, 8) * w; a2 += loadV(p, 16) * w; a3 += loadV(p, 24) * w
                    k &+= 1; p += 32
                }
                let d = m + 4 &* (mirrored ? outWidth &- 1 &- o : o)
                store4(a0.lowHalf, d); store4(a0.highHalf, d + rowFloats)
                store4(a1.lowHalf, d + 2 &* rowFloats); store4(a1.highHalf, d + 3 &* rowFloats)
                store4(a2.lowHalf, d + 4 &* rowFloats); store4(a2.highHalf, d + 5 &* rowFloats)
                store4(a3.lowHalf, d + 6 &* rowFloats); store4(a3.highHalf, d + 7 &* rowFloats)
            }
#endif
        }
    }

    /// Vertical pass: output row o is, per value of `mid`'s RGBX rows (outWidth pixels, row 0 being
    /// source row rowLo), 0.5 plus, in tap order, row start[o] − rowLo + k times weight
    /// o·stride + k, truncated to a byte value; the R, G, B of each pixel go to three planes
    /// `planeStride` floats apart. `scratch` holds 4·outWidth floats.
    public static func resampleColumns(_ mid: UnsafePointer<Float>, rowLo: Int, start: UnsafePointer<Int32>, count: UnsafePointer<Int32>,
                                       weights w: UnsafePointer<Float>, stride: Int, outWidth: Int, outHeight: Int,
                                       into dp: UnsafeMutablePointer<Float>, planeStride: Int, scratch row: UnsafeMutablePointer<Float>) {
        let mp = UnsafeMutablePointer(mutating: mid)
        let rowFloats = 4 * outWidth
        let rows = UnsafeMutablePointer<UnsafeMutablePointer<Float>>.allocate(capacity: max(1, stride))
        defer { rows.deallocate() }
        for o in 0..<outHeight {
            let s = Int(start[o]) - rowLo, n = Int(count[o])
            for k in 0..<n { rows[k] = mp + (s + k) * rowFloats }
            weightedRows(taps: n, width: rowFloats, rows: rows, weights: w + o * stride, into: row)
            deinterleave(row, count: outWidth, into: dp + o * outWidth, dp + planeStride + o * outWidth, dp + 2 * planeStride + o * outWidth)
        }
    }

    /// RGBX pixels (4 floats each) to three planes; one vector of pixels per step by lane shuffles.
    @inline(__always) static func deinterleave(_ s: UnsafeMutablePointer<Float>, count n: Int, into r: UnsafeMutablePointer<Float>,
                                               _ g: UnsafeMutablePointer<Float>, _ b: UnsafeMutablePointer<Float>) {
        var x = 0
        while x &+ L <= n {
            let q = s + 4 &* x
            // The first and second half of the pixels: even lanes R, B; odd lanes G, X.
            let lo = V2(lowHalf: loadV(q, 0), highHalf: loadV(q, L))
            let hi = V2(lowHalf: loadV(q, 2 &* L), highHalf: loadV(q, 3 &* L))
            let even = V2(lowHalf: lo.evenHalf, highHalf: hi.evenHalf)
            storeV(even.evenHalf, r, x); storeV(even.oddHalf, b, x)
            storeV(V2(lowHalf: lo.oddHalf, highHalf: hi.oddHalf).evenHalf, g, x)
            x &+= L
        }
        while x < n { r[x] = s[4 * x]; g[x] = s[4 * x + 1]; b[x] = s[4 * x + 2]; x += 1 }
    }
}
