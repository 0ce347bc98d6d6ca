import Foundation
import TesseraCore
#if arch(x86_64)
import _Builtin_intrinsics.intel
#endif

extension ODTable {
    /// torchstain's table for Io = 240 (the default), built once.
    static let plusOne240 = ODTable.plusOne(io: 240)

    static func cachedPlusOne(io: Double) -> ODTable { io == 240 ? plusOne240 : plusOne(io: io) }
}

/// The torchstain-variant Macenko fit in three passes over the pixels, no per-pixel storage but
/// the tissue colours:
/// 1. the tissue list (SSE2 flags 16 pixels at a time), then the covariance sums over it (sums of
///    OD shifted by a constant, so the one-pass formula loses nothing that matters next to the
///    0.005 tolerance);
/// 2. pseudo-angles of the tissue pixels, collecting only the two 1 % tails (`TailPercentile`):
///    a division-free screen (`AngleScreen`) picks candidates, only they get exact angles;
/// 3. both concentrations of every pixel at once, collecting only their upper 1 % tails: one
///    packed comparison per pixel and a rarely taken branch.
/// The tails are collected in pixel order, so which values reach the final selections does not
/// depend on how they were screened. Same definitions as `Macenko.referenceFit` (the stain vectors
/// agree to ~1e-12, the maximum concentrations exactly whenever the vectors do); tested against it
/// on the fixture images.
enum MacenkoFast {
    /// The shift subtracted from OD before the covariance sums (a typical tissue OD).
    static let shift = 0.5

    static func fit(_ image: RGBImage, options o: MacenkoOptions) throws -> StainMatrix {
        let n = image.width * image.height
        guard n > 0 else { throw StainFitError(reason: "empty image") }
        let od = ODTable.cachedPlusOne(io: o.io).od
        // Tissue = OD ≥ β on every channel = every byte ≤ cutoff (OD decreases with intensity).
        var cutoff = -1
        for v in 0..<256 where od[v] >= o.beta { cutoff = v }
        let need = max(2, o.minTissuePixels)
        guard cutoff >= 0 else { throw StainFitError(reason: "only 0 stained pixels (need \(need))") }
        let cut = UInt8(cutoff)
        var shifted = [Double](repeating: 0, count: 256)
        for v in 0..<256 { shifted[v] = od[v] - shift }

        return try image.pixels.withUnsafeBufferPointer { p -> StainMatrix in
            // Tissue colours packed r | g << 8 | b << 16 (the angle pass needs nothing else).
            let tissue = UnsafeMutablePointer<UInt32>.allocate(capacity: n)
            defer { tissue.deallocate() }
            // The tissue list first, branch-free (tissue and background interleave unpredictably)…
            // (a 0/1 table rather than a comparison, which the compiler would turn back into a branch).
            var m = 0
            let isTissue = UnsafeMutablePointer<UInt8>.allocate(capacity: 256)
            defer { isTissue.deallocate() }
            for v in 0..<256 { isTissue[v] = v <= Int(cut) ? 1 : 0 }
            if let px = p.baseAddress {
                var i = 0
                #if arch(x86_64)
                m = tissueBlocks(px, count: n, cut: cut, into: tissue)
                i = n >= 17 ? (n - 1) / 16 * 16 : 0
                #endif
                while i < n {
                    let r = px[3 * i], g = px[3 * i + 1], b = px[3 * i + 2]
                    tissue[m] = UInt32(r) | UInt32(g) << 8 | UInt32(b) << 16
                    m &+= Int(isTissue[Int(max(r, max(g, b)))])
                    i += 1
                }
            }
            // … then the covariance sums over it.
            var s0 = 0.0, s1 = 0.0, s2 = 0.0
            var c00 = 0.0, c01 = 0.0, c02 = 0.0, c11 = 0.0, c12 = 0.0, c22 = 0.0
            shifted.withUnsafeBufferPointer { d in
                for k in 0..<m {
                    let c = tissue[k]
                    let x = d[Int(c & 0xFF)], y = d[Int((c >> 8) & 0xFF)], z = d[Int(c >> 16)]
                    s0 += x; s1 += y; s2 += z
                    c00 += x * x; c01 += x * y; c02 += x * z
                    c11 += y * y; c12 += y * z; c22 += z * z
                }
            }
            guard m >= need else { throw StainFitError(reason: "only \(m) stained pixels (need \(need))") }
            // Sample covariance (ddof = 1) from the shifted sums.
            let fm = Double(m), f = 1 / Double(m - 1)
            let cov = [c00 - s0 * s0 / fm, c01 - s0 * s1 / fm, c02 - s0 * s2 / fm,
                       c01 - s0 * s1 / fm, c11 - s1 * s1 / fm, c12 - s1 * s2 / fm,
                       c02 - s0 * s2 / fm, c12 - s1 * s2 / fm, c22 - s2 * s2 / fm].map { $0 * f }
            guard let (_, v) = LinearAlgebra.symmetricEigen(cov, n: 3) else {
                throw StainFitError(reason: "eigen-decomposition failed")
            }
            let e1 = SIMD3(v[1], v[4], v[7]), e2 = SIMD3(v[2], v[5], v[8])
            let (minPhi, maxPhi) = angles(UnsafeBufferPointer(start: tissue, count: m), e1: e1, e2: e2, od: od, alpha: o.alpha)
            guard minPhi.isFinite && maxPhi.isFinite else { throw StainFitError(reason: "non-finite angles") }
            let vMin = e1 * cos(minPhi) + e2 * sin(minPhi)
            let vMax = e1 * cos(maxPhi) + e2 * sin(maxPhi)
            let (h, e) = vMin.x > vMax.x ? (vMin, vMax) : (vMax, vMin)
            let vectors = [[h.x, h.y, h.z], [e.x, e.y, e.z]]
            guard vectors.joined().allSatisfy(\.isFinite) else { throw StainFitError(reason: "non-finite stain vectors") }
            let maxC = try maxConcentrations(p, count: n, vectors: vectors, od: od)
            return StainMatrix(vectors: vectors, maxConcentrations: maxC)
        }
    }

    #if arch(x86_64)
    /// The tissue list of the first (n − 1) / 16 · 16 pixels (n ≥ 17; none otherwise), 16 pixels a
    /// block: SSE2 finds the stained ones among 48 bytes at once (the byte maximum of each position and
    /// the two after it, compared with the cutoff; a pixel's flag is the bit of its first byte), then
    /// each pixel's 3 bytes are one 4-byte load, written and kept when flagged. Returns the count.
    /// Leaving the last pixel to the caller keeps every load inside the image.
    static func tissueBlocks(_ px: UnsafePointer<UInt8>, count n: Int, cut: UInt8, into tissue: UnsafeMutablePointer<UInt32>) -> Int {
        guard n >= 17 else { return 0 }
        let blocks = (n - 1) / 16
        let raw = UnsafeRawPointer(px)
        let cutV = unsafeBitCast(SIMD16<UInt8>(repeating: cut), to: __m128i.self)
        @inline(__always) func flags(_ o: Int) -> UInt64 {
            let x0 = unsafeBitCast(raw.loadUnaligned(fromByteOffset: o, as: SIMD16<UInt8>.self), to: __m128i.self)
            let x1 = unsafeBitCast(raw.loadUnaligned(fromByteOffset: o + 1, as: SIMD16<UInt8>.self), to: __m128i.self)
            let x2 = unsafeBitCast(raw.loadUnaligned(fromByteOffset: o + 2, as: SIMD16<UInt8>.self), to: __m128i.self)
            let mx = _mm_max_epu8(x0, _mm_max_epu8(x1, x2))
            // max ≤ cut ⇔ max(max, cut) == cut.
            return UInt64(UInt16(truncatingIfNeeded: _mm_movemask_epi8(_mm_cmpeq_epi8(_mm_max_epu8(mx, cutV), cutV))))
        }
        var m = 0
        for block in 0..<blocks {
            // Bytes 3·16·block … +49 are read (the last block's end is within the final pixel).
            let o = 48 &* block
            let bits = flags(o) | flags(o &+ 16) << 16 | flags(o &+ 32) << 32
            let b = raw + o
            for j in 0..<16 {
                tissue[m] = b.loadUnaligned(fromByteOffset: 3 &* j, as: UInt32.self) & 0xFF_FFFF
                m &+= Int(truncatingIfNeeded: (bits &>> UInt64(3 &* j)) & 1)
            }
        }
        return m
    }
    #endif

    /// The α and 100 − α percentiles of the tissue angles atan2(e2·od, e1·od), numpy-linear:
    /// selected on the pseudo-angle (same order), interpolated between the true angles.
    static func angles(_ tissue: UnsafeBufferPointer<UInt32>, e1: SIMD3<Double>, e2: SIMD3<Double>, od: [Double], alpha: Double) -> (Double, Double) {
        let m = tissue.count
        // t[256·c + v] = (e1[c]·od[v], e2[c]·od[v]): the two projections are sums of three entries.
        var table = [SIMD2<Double>](repeating: .zero, count: 768)
        for v in 0..<256 {
            table[v] = SIMD2(e1.x * od[v], e2.x * od[v])
            table[256 + v] = SIMD2(e1.y * od[v], e2.y * od[v])
            table[512 + v] = SIMD2(e1.z * od[v], e2.z * od[v])
        }
        var low = TailPercentile(count: m, q: alpha), high = TailPercentile(count: m, q: 100 - alpha)
        return table.withUnsafeBufferPointer { t -> (Double, Double) in
            @inline(__always) func xy(_ c: UInt32) -> SIMD2<Double> {
                t[Int(c & 0xFF)] + t[256 + Int((c >> 8) & 0xFF)] + t[512 + Int(c >> 16)]
            }
            @inline(__always) func angle(_ c: UInt32) -> Double {
                let q = xy(c)
                return Macenko.pseudoAngle(q.y, q.x)
            }
            let size = TailPercentile.sampleSize(count: m)
            if size > 0 {
                // The sampled angles once (two at a time, as below), a copy for each tail.
                let values = UnsafeMutableBufferPointer<Double>.allocate(capacity: size)
                let sample = UnsafeMutableBufferPointer<Double>.allocate(capacity: size)
                defer { values.deallocate(); sample.deallocate() }
                let stride = m / size
                precondition(size % 2 == 0)
                for j in Swift.stride(from: 0, to: size, by: 2) {
                    let a = pseudoAngles(xy(tissue[j * stride + stride / 2]), xy(tissue[(j + 1) * stride + stride / 2]))
                    values[j] = a.x; values[j + 1] = a.y
                }
                _ = sample.initialize(fromContentsOf: values)
                low.setThreshold(sample: sample)
                _ = sample.update(fromContentsOf: values)
                high.setThreshold(sample: sample)
            }
            // Few tissue pixels lie beyond either threshold: two pixels' angles at once, one mask
            // test, and a rarely taken branch that keeps them in pixel order.
            let lowValues = UnsafeMutablePointer<Double>.allocate(capacity: m), lowKeys = UnsafeMutablePointer<UInt32>.allocate(capacity: m)
            let highValues = UnsafeMutablePointer<Double>.allocate(capacity: m), highKeys = UnsafeMutablePointer<UInt32>.allocate(capacity: m)
            defer { lowValues.deallocate(); lowKeys.deallocate(); highValues.deallocate(); highKeys.deallocate() }
            var nLow = 0, nHigh = 0
            let lt = low.threshold + 0, ht = high.threshold + 0
            // Inside the rare branch, branch-free again: both pixels are written to both tails and
            // each count moves by its mask bit.
            @inline(__always) func keep(_ a: Double, _ c: UInt32, low: Int, high: Int) {
                lowValues[nLow] = a; lowKeys[nLow] = c; nLow &+= low
                highValues[nHigh] = a; highKeys[nHigh] = c; nHigh &+= high
            }
            // With finite thresholds a division-free test finds the candidates first (the divider
            // was this loop's bottleneck); only they get their exact angles and exact tests.
            let screen = AngleScreen(low: lt, high: ht)
            var k = 0
            while k &+ 1 < m {
                let c0 = tissue[k], c1 = tissue[k &+ 1]
                let q0 = xy(c0), q1 = xy(c1)
                if screen.mayKeep(q0, q1) {
                    let a = pseudoAngles(q0, q1) + 0
                    let low = notAbove(a, lt), high = notBelow(a, ht)
                    keep(a.x, c0, low: low & 1, high: high & 1)
                    keep(a.y, c1, low: low >> 1, high: high >> 1)
                }
                k &+= 2
            }
            if k < m { let a = angle(tissue[k]) + 0; keep(a, tissue[k], low: a <= lt ? 1 : 0, high: a >= ht ? 1 : 0) }
            func percentile(_ tail: TailPercentile, _ valuePointer: UnsafeMutablePointer<Double>, _ keyPointer: UnsafeMutablePointer<UInt32>, _ count: Int) -> Double {
                let values = UnsafeBufferPointer(start: valuePointer, count: count), keys = UnsafeBufferPointer(start: keyPointer, count: count)
                let copy = UnsafeMutableBufferPointer<Double>.allocate(capacity: count)
                defer { copy.deallocate() }
                _ = copy.initialize(from: values)
                let lo: UInt32, hi: UInt32, weight: Double
                if let r = tail.finish(copy) {
                    // The colours of the two order statistics (any with that pseudo-angle).
                    let v = values, kk = keys
                    lo = kk[v.firstIndex(of: r.lo)!]
                    hi = kk[v.firstIndex(of: r.hi)!]
                    weight = tail.t
                } else {
                    let s = OrderStatistics.percentile(count: m, tail.q) { angle(tissue[$0]) }
                    lo = tissue[s.lo]; hi = tissue[s.hi]
                    weight = tail.t
                }
                let a = xy(lo), b = xy(hi)
                return Percentile.lerp(atan2(a.y, a.x), atan2(b.y, b.x), weight)
            }
            return (percentile(low, lowValues, lowKeys, nLow), percentile(high, highValues, highKeys, nHigh))
        }
    }

    /// `Macenko.pseudoAngle` of two points (x0, y0), (x1, y1), lane by lane with the same operations
    /// (so the same values), without its branch on the sign of y, which is a coin toss per pixel.
    @inline(__always) static func pseudoAngles(_ q0: SIMD2<Double>, _ q1: SIMD2<Double>) -> SIMD2<Double> {
        #if arch(x86_64)
        let x = _mm_unpacklo_pd(q0, q1), y = _mm_unpackhi_pd(q0, q1)
        let zero = _mm_setzero_pd(), one = SIMD2<Double>(repeating: 1)
        let signMask = SIMD2<Double>(repeating: -0.0)
        let d = _mm_add_pd(_mm_andnot_pd(signMask, x), _mm_andnot_pd(signMask, y))
        let p = _mm_div_pd(x, d)
        let negative = _mm_cmplt_pd(y, zero)
        let a = _mm_or_pd(_mm_and_pd(negative, _mm_sub_pd(p, one)), _mm_andnot_pd(negative, _mm_sub_pd(one, p)))
        // d = 0 (x = y = 0): 0, as pseudoAngle's guard (0/0 gave NaN in that lane).
        return _mm_and_pd(_mm_cmpgt_pd(d, zero), a)
        #else
        return SIMD2(Macenko.pseudoAngle(q0.y, q0.x), Macenko.pseudoAngle(q1.y, q1.x))
        #endif
    }

    /// A superset test for "the pseudo-angle of (x, y) is ≤ low or ≥ high" without dividing. With
    /// d = |x| + |y| > 0 the angle is x/d − 1 (y < 0) or 1 − x/d (y ≥ 0), so with u = x (y < 0) or −x
    /// (y ≥ 0): angle ≤ low ⇔ u ≤ (low ± 1)·d and angle ≥ high ⇔ u ≥ (high ± 1)·d (+1 where y < 0).
    /// The rounding of the exact path moves an angle by less than 1e-15 and the products here by a
    /// relative 1e-16, so coefficients loosened by 1e-9 keep every pixel the exact tests keep (d = 0,
    /// angle 0, always passes: 0 ≤ 0). Infinite thresholds (no sample) pass everything.
    struct AngleScreen {
        let lowNegative: Double, lowPositive: Double, highNegative: Double, highPositive: Double
        let all: Bool

        init(low: Double, high: Double) {
            let slack = 1e-9
            all = !(low.isFinite && high.isFinite)
            lowNegative = low + 1 + slack; lowPositive = low - 1 + slack
            highNegative = high + 1 - slack; highPositive = high - 1 - slack
        }

        @inline(__always) func mayKeep(_ q0: SIMD2<Double>, _ q1: SIMD2<Double>) -> Bool {
            #if arch(x86_64)
            if all { return true }
            let x = _mm_unpacklo_pd(q0, q1), y = _mm_unpackhi_pd(q0, q1)
            let sign = SIMD2<Double>(repeating: -0.0)
            let negative = _mm_cmplt_pd(y, _mm_setzero_pd())
            let d = _mm_add_pd(_mm_andnot_pd(sign, x), _mm_andnot_pd(sign, y))
            let u = _mm_xor_pd(x, _mm_andnot_pd(negative, sign))
            let cl = _mm_or_pd(_mm_and_pd(negative, SIMD2(repeating: lowNegative)), _mm_andnot_pd(negative, SIMD2(repeating: lowPositive)))
            let ch = _mm_or_pd(_mm_and_pd(negative, SIMD2(repeating: highNegative)), _mm_andnot_pd(negative, SIMD2(repeating: highPositive)))
            return _mm_movemask_pd(_mm_or_pd(_mm_cmple_pd(u, _mm_mul_pd(cl, d)), _mm_cmpge_pd(u, _mm_mul_pd(ch, d)))) != 0
            #else
            return true
            #endif
        }
    }

    /// Lane masks (bit 0: lane x, bit 1: lane y) of a ≤ t and a ≥ t (finite a).
    @inline(__always) static func notAbove(_ a: SIMD2<Double>, _ t: Double) -> Int {
        #if arch(x86_64)
        return Int(_mm_movemask_pd(_mm_cmple_pd(a, SIMD2(repeating: t))))
        #else
        return (a.x <= t ? 1 : 0) | (a.y <= t ? 2 : 0)
        #endif
    }

    @inline(__always) static func notBelow(_ a: SIMD2<Double>, _ t: SIMD2<Double>) -> Int {
        #if arch(x86_64)
        return Int(_mm_movemask_pd(_mm_cmpge_pd(a, t)))
        #else
        return (a.x >= t.x ? 1 : 0) | (a.y >= t.y ? 2 : 0)
        #endif
    }

    @inline(__always) static func notBelow(_ a: SIMD2<Double>, _ t: Double) -> Int { notBelow(a, SIMD2(repeating: t)) }

    /// 99th percentiles of both least-squares concentrations over all pixels.
    static func maxConcentrations(_ p: UnsafeBufferPointer<UInt8>, count n: Int, vectors: [[Double]], od: [Double]) throws -> [Double] {
        guard let pinv = Macenko.pseudoInverse(vectors) else {
            throw StainFitError(reason: "the stain vectors are degenerate (a flat colour?)")
        }
        var table = [SIMD2<Double>](repeating: .zero, count: 768)
        for v in 0..<256 {
            table[v] = SIMD2(pinv.0.x * od[v], pinv.1.x * od[v])
            table[256 + v] = SIMD2(pinv.0.y * od[v], pinv.1.y * od[v])
            table[512 + v] = SIMD2(pinv.0.z * od[v], pinv.1.z * od[v])
        }
        var tails = [TailPercentile(count: n, q: 99), TailPercentile(count: n, q: 99)]
        let maxC = table.withUnsafeBufferPointer { t -> [Double] in
            guard let px = p.baseAddress else { return [] }
            @inline(__always) func conc(_ i: Int) -> SIMD2<Double> {
                t[Int(px[3 * i])] + t[256 + Int(px[3 * i + 1])] + t[512 + Int(px[3 * i + 2])]
            }
            let size = TailPercentile.sampleSize(count: n)
            if size > 0 {
                let values = UnsafeMutableBufferPointer<SIMD2<Double>>.allocate(capacity: size)
                let sample = UnsafeMutableBufferPointer<Double>.allocate(capacity: size)
                defer { values.deallocate(); sample.deallocate() }
                let stride = n / size
                for j in 0..<size { values[j] = conc(j * stride + stride / 2) }
                for s in 0..<2 {
                    for j in 0..<size { sample[j] = values[j][s] }
                    tails[s].setThreshold(sample: sample)
                }
            }
            let h = UnsafeMutablePointer<Double>.allocate(capacity: n), e = UnsafeMutablePointer<Double>.allocate(capacity: n)
            defer { h.deallocate(); e.deallocate() }
            var nh = 0, ne = 0
            let th = SIMD2(tails[0].threshold, tails[1].threshold)
            // Few pixels reach either threshold (about 3 % with the sample's margin): one packed
            // comparison per pixel and a rarely taken branch per two; inside it, branch-free
            // writes whose counts move by the mask bits (H in bit 0, E in bit 1).
            @inline(__always) func keep(_ c: SIMD2<Double>, _ bits: Int) {
                h[nh] = c.x; nh &+= bits & 1
                e[ne] = c.y; ne &+= bits >> 1
            }
            guard let tb = t.baseAddress else { return [] }
            @inline(__always) func conc(at q: UnsafePointer<UInt8>) -> SIMD2<Double> {
                tb[Int(q[0])] + tb[256 &+ Int(q[1])] + tb[512 &+ Int(q[2])]
            }
            var q = px
            for _ in 0..<(n / 2) {
                let c0 = conc(at: q) + 0, c1 = conc(at: q + 3) + 0
                let b0 = notBelow(c0, th), b1 = notBelow(c1, th)
                if b0 | b1 != 0 { keep(c0, b0); keep(c1, b1) }
                q += 6
            }
            if n % 2 == 1 { let c = conc(at: q) + 0; keep(c, notBelow(c, th)) }
            return [(0, h, nh), (1, e, ne)].map { s, values, count in
                if let r = tails[s].finish(UnsafeMutableBufferPointer(start: values, count: count)) { return r.value }
                return OrderStatistics.percentile(count: n, tails[s].q) { conc($0)[s] }.value
            }
        }
        guard maxC.count == 2, maxC.allSatisfy({ $0.isFinite && $0 > 1e-9 }) else {
            throw StainFitError(reason: "a stain has no concentration (99th percentile \(maxC))")
        }
        return maxC
    }
}
