import Foundation

/// OpenCV's 8-bit RGB ↔ L*a*b* (`cv2.cvtColor(…, COLOR_RGB2LAB / COLOR_LAB2RGB)` on uint8), which
/// staintools and TIAToolbox use, reproduced bit for bit: OpenCV does not compute these with the
/// float CIE formulas (those disagree with it on up to 15% of codes, by up to 3 levels) but with
/// fixed-point tables. The tables below follow that construction (sRGB gamma, D65 white
/// (0.950456, 1, 1.088754), L scaled by 255/100, a and b offset by 128); both directions were
/// checked against OpenCV 4.11 on all 2²⁴ inputs while building the stain fixtures (data/stain).
public final class OpenCVLab8: Sendable {
    public static let shared = OpenCVLab8()

    // RGB → Lab: gamma_shift 3, lab_shift 12, lab_shift2 15.
    let gammaTable: [Int32]       // 256 entries, sRGB-linearized ×2040
    let cbrtTable: [Int32]        // 3072 entries, f(t) ×32768
    let coefficients: [Int32]     // round(4096·M/W), row-major 3×3
    // Lab → RGB.
    let yTable: [Int32], ifyTable: [Int32]   // per L byte
    let abToXZ: [Int32]                      // index i − minAB
    let inverseGamma: [UInt8]                // 4096 entries
    static let minAB = -8145
    /// round(4096 · M⁻¹[r][c] · W[c]), rows R, G, B (OpenCV's XYZ→sRGB matrix in float32).
    static let inverseCoefficients: [Int32] = [12615, -6296, -2223, -3773, 7684, 185, 217, -836, 4715]

    init() {
        let m: [Double] = [0.412453, 0.357580, 0.180423, 0.212671, 0.715160, 0.072169, 0.019334, 0.119193, 0.950227]
        let white: [Double] = [0.950456, 1.0, 1.088754]
        gammaTable = (0..<256).map { i in
            let x = Float(i) * Float(1.0 / 255.0)
            let g: Float = x <= 0.04045 ? x * Float(1.0 / 12.92) : Float(pow((Double(x) + 0.055) * (1 / 1.055), 2.4))
            return Int32((Float(2040) * g).rounded(.toNearestOrEven))
        }
        var cbrts: [Int32] = (0..<3072).map { j in
            let x: Float = Float(j) * Float(1.0 / 2040.0)
            let small: Float = x * Float(7.787) + Float(0.13793103448275862)
            // The cube root rounded once to float32 (libm's cbrtf is off by an ulp in places).
            let f: Float = x < Float(0.008856) ? small : Float(cbrt(Double(x)))
            let scaled: Float = Float(32768) * f
            return Int32(scaled.rounded(.toNearestOrEven))
        }
        // OpenCV's own (software) cube root lands just below the tie 17745.5 at j = 324.
        cbrts[324] = 17745
        cbrtTable = cbrts
        coefficients = (0..<9).map { k in Int32((4096 * m[k] / white[k / 3]).rounded(.toNearestOrEven)) }
        var terms = [SIMD4<Int32>](repeating: .zero, count: 768)
        for ch in 0..<3 { for v in 0..<256 {
            let g = gammaTable[v], c = coefficients
            terms[256 * ch + v] = SIMD4(g * c[ch], g * c[3 + ch], g * c[6 + ch], 0) &+ (ch == 0 ? SIMD4(2048, 2048, 2048, 0) : .zero)
        } }
        xyzTerms = terms
        // Y entries: L's term, −500·f(Y) and 200·f(Y), each with its offset and rounding term;
        // X entries: 500·f(X) in the a lane; Z entries: −200·f(Z) in the b lane.
        labTerms = cbrts.map { f in SIMD4(296 * f - 1_336_934 + 16384, -500 * f + 128 * 32768 + 16384, 200 * f + 128 * 32768 + 16384, 0) }
            + cbrts.map { f in SIMD4(0, 500 * f, 0, 0) } + cbrts.map { f in SIMD4(0, 0, -200 * f, 0) }

        var ys: [Int32] = [], ifys: [Int32] = []
        for ll in 0..<256 {
            if ll <= 20 {
                ys.append(Int32((Float(ll * 16384 * 180) / Float(17 * 29 * 29 * 29)).rounded(.toNearestOrEven)))
                ifys.append(Int32((Float(16384) * (Float(16) / Float(116) + Float(ll * 5) / Float(3 * 17 * 29))).rounded(.toNearestOrEven)))
            } else {
                let fy = Float(ll * 100 * 16384) / Float(255 * 116) + Float(16 * 16384) / Float(116)
                ifys.append(Int32(fy.rounded(.toNearestOrEven)))
                ys.append(Int32((((fy * fy) * fy) / Float(16384 * 16384)).rounded(.toNearestOrEven)))
            }
        }
        yTable = ys
        ifyTable = ifys
        // Integer arithmetic, truncating division as in C.
        var xz: [Int32] = []
        for i in Self.minAB...28718 {
            let linear: Int = i * 108 / 841 - 290
            let cubic: Int = ((i * i) / 16384) * i / 16384
            xz.append(Int32(i <= 3390 ? linear : cubic))
        }
        abToXZ = xz
        inverseGamma = (0..<4096).map { k in
            let xd = Double(Float(1.0 / 4096.0) * Float(k))
            let g = Float(xd <= 0.0031308 ? xd * 12.92 : pow(xd, 1 / 2.4) * 1.055 - 0.055)
            return UInt8(max(0, min(255, (Float(255) * g).rounded(.toNearestOrEven))))
        }
        // Vector columns of the inverse matrix over the X and Z indices `rgbImage` can form.
        let c = Self.inverseCoefficients
        let ify = (ifyTable.min()!, ifyTable.max()!)
        let adiv = (0..<256).map { a8 in ((5 * Int32(a8) * 53687 + 128) >> 13) - 4194 }
        let bdiv = (0..<256).map { b8 in ((Int32(b8) * 41943 + 16) >> 9) - 10485 + 1 }
        let xRange = (ify.0 + adiv.min()!)...(ify.1 + adiv.max()!)
        let zRange = (ify.0 - bdiv.max()!)...(ify.1 - bdiv.min()!)
        precondition(xRange.lowerBound >= Int32(Self.minAB) && xRange.upperBound - Int32(Self.minAB) < abToXZ.count)
        precondition(zRange.lowerBound >= Int32(Self.minAB) && zRange.upperBound - Int32(Self.minAB) < abToXZ.count)
        let codes = abToXZ
        xBase = xRange.lowerBound
        zBase = zRange.lowerBound
        xColumn = xRange.map { i in let x = codes[Int(i) - Self.minAB]; return SIMD4(c[0] * x, c[3] * x, c[6] * x, 0) }
        zColumn = zRange.map { i in let z = codes[Int(i) - Self.minAB]; return SIMD4(c[2] * z, c[5] * z, c[8] * z, 0) }
        // Bounds of every channel's sum (in 64 bits: the 32-bit sums must not wrap).
        var lo = Int64.max, hi = Int64.min
        for k in 0..<3 {
            let ys = yTable.map { Int64(c[3 * k + 1]) * Int64($0) + 8192 }
            let xs = xColumn.map { Int64($0[k]) }, zs = zColumn.map { Int64($0[k]) }
            let smallest = ys.min()! + xs.min()! + zs.min()!, largest = ys.max()! + xs.max()! + zs.max()!
            precondition(smallest >= Int64(Int32.min) && largest <= Int64(Int32.max))
            lo = min(lo, smallest >> 14); hi = max(hi, largest >> 14)
        }
        gammaBase = Int32(lo)
        // `rgbImage` adds −lo·2¹⁴ to every sum: it must still fit.
        for k in 0..<3 {
            let ys = yTable.map { Int64(c[3 * k + 1]) * Int64($0) + 8192 }
            let xs = xColumn.map { Int64($0[k]) }, zs = zColumn.map { Int64($0[k]) }
            precondition(ys.max()! + xs.max()! + zs.max()! - (lo << 14) <= Int64(Int32.max))
        }
        let ig = inverseGamma
        inverseGammaWide = (lo...hi).map { v in ig[Int(max(0, min(4095, v)))] }
    }

    @inline(__always) static func descale(_ v: Int32, _ n: Int32) -> Int32 { (v + (1 << (n - 1))) >> n }
    @inline(__always) static func saturate(_ v: Int32) -> UInt8 { UInt8(max(0, min(255, v))) }

    /// OpenCV's 8-bit L, a, b of one pixel.
    @inline(__always) public func lab(_ r: UInt8, _ g: UInt8, _ b: UInt8) -> SIMD3<UInt8> {
        let R = gammaTable[Int(r)], G = gammaTable[Int(g)], B = gammaTable[Int(b)]
        let c = coefficients
        let fX = cbrtTable[Int(Self.descale(R * c[0] + G * c[1] + B * c[2], 12))]
        let fY = cbrtTable[Int(Self.descale(R * c[3] + G * c[4] + B * c[5], 12))]
        let fZ = cbrtTable[Int(Self.descale(R * c[6] + G * c[7] + B * c[8], 12))]
        let L = Self.descale(296 * fY - 1_336_934, 15)
        let a = Self.descale(500 * (fX - fY) + 128 * 32768, 15)
        let bb = Self.descale(200 * (fY - fZ) + 128 * 32768, 15)
        return SIMD3(Self.saturate(L), Self.saturate(a), Self.saturate(bb))
    }

    /// Per input channel, the gamma-linearized value times the three XYZ coefficients of that
    /// channel: (X, Y, Z) sums are then three vector loads and two adds. The red entries also carry
    /// the rounding term 2048 of the descale by 12 bits.
    let xyzTerms: [SIMD4<Int32>]
    /// Per index of `cbrtTable`, three blocks of 3072 vectors (Y, X, Z) whose sum over a pixel's
    /// Y, X and Z indices is (L, a, b, 0) before the final descale by 15 bits: the a and b
    /// differences and the L expression of `lab` regrouped by index (exact integer arithmetic).
    let labTerms: [SIMD4<Int32>]

    /// Per-channel statistics of 8-bit Lab codes: counts of each L code
    /// (its working value L/2.55 in float32 is not linear in the code) and exact integer sums of
    /// a − 128, b − 128 and their squares (a and b work as the integers code − 128).
    public struct Statistics: Sendable {
        public var count = 0
        public var lightnessCounts = [Int](repeating: 0, count: 256)
        public var aSum = 0, aSquares = 0, bSum = 0, bSquares = 0
        public init() {}

        /// Adds `count` pixels with the given sums of a and b codes and of their squares.
        mutating func add(count n: Int, aSum sa: Int, aSquares saa: Int, bSum sb: Int, bSquares sbb: Int) {
            count += n
            // Σ(c − 128) = Σc − 128n and Σ(c − 128)² = Σc² − 256Σc + 128²n, exact in integers.
            aSum += sa - 128 * n
            aSquares += saa - 256 * sa + 16384 * n
            bSum += sb - 128 * n
            bSquares += sbb - 256 * sb + 16384 * n
        }
    }

    /// Converts a whole RGB buffer to 8-bit Lab (3 bytes per pixel), optionally gathering `statistics`.
    public func labImage(_ src: UnsafeBufferPointer<UInt8>, into dst: UnsafeMutableBufferPointer<UInt8>,
                         statistics: UnsafeMutablePointer<Statistics>? = nil) {
        labKernel(src, into: dst, statistics: statistics)
    }

    /// Statistics of Lab codes already computed (the reference for those `labKernel` gathers).
    static func gather(_ lab: UnsafeBufferPointer<UInt8>, into st: UnsafeMutablePointer<Statistics>) {
        let n = lab.count / 3
        guard n > 0, let p = lab.baseAddress else { return }
        var sa = 0, saa = 0, sb = 0, sbb = 0
        for i in 0..<n {
            st.pointee.lightnessCounts[Int(p[3 * i])] += 1
            let a = Int(p[3 * i + 1]), b = Int(p[3 * i + 2])
            sa += a; saa += a * a; sb += b; sbb += b * b
        }
        st.pointee.add(count: n, aSum: sa, aSquares: saa, bSum: sb, bSquares: sbb)
    }

    /// RGB → Lab codes, and with `statistics` their counts and sums in the same loop (the (L, a, b)
    /// vector is at hand there: one vector add for the sums, one 16-bit multiply and add for the
    /// squares, one increment of the L counts).
    func labKernel(_ src: UnsafeBufferPointer<UInt8>, into dst: UnsafeMutableBufferPointer<UInt8>,
                   statistics st: UnsafeMutablePointer<Statistics>? = nil) {
        let n = src.count / 3
        precondition(dst.count >= 3 * n)
        guard n > 0, let s = src.baseAddress, let d = dst.baseAddress else { return }
        // The 4-byte stores would run past the buffer at the last pixel, and a store may not
        // clobber source bytes not yet read.
        precondition(UnsafeRawPointer(s) + 3 * n <= UnsafeRawPointer(d) || UnsafeRawPointer(d) + 3 * n <= UnsafeRawPointer(s))
        xyzTerms.withUnsafeBufferPointer { tb in
            labTerms.withUnsafeBufferPointer { lb in
                let t = tb.baseAddress!, lt = UnsafeRawPointer(lb.baseAddress!)
                let raw = UnsafeMutableRawPointer(d)
                // The XYZ indices scaled to byte offsets (16 per vector) in the vector unit; the X
                // and Z blocks start 3072 and 6144 vectors in. Every RGB input gives L, a and b
                // within 0…255 (all 2²⁴ are tested), so no clamp.
                let blocks = SIMD4<UInt32>(3072 * 16, 0, 6144 * 16, 0)
                let tr = UnsafeRawPointer(t), sr = UnsafeRawPointer(s)
                // One 4-byte load per pixel but the last (whose fourth byte lies past the buffer):
                // `code(i)` only for i < n − 1, `code(last)` for the last.
                let last = UInt32(s[3 * n - 3]) | UInt32(s[3 * n - 2]) << 8 | UInt32(s[3 * n - 1]) << 16
                @inline(__always) func code(_ i: Int) -> SIMD4<UInt32> {
                    code(sr.loadUnaligned(fromByteOffset: 3 &* i, as: UInt32.self))
                }
                @inline(__always) func code(_ p: UInt32) -> SIMD4<UInt32> {
                    // Byte offsets of the three channels' vectors (16 bytes each, 256 per channel).
                    let sum = tr.load(fromByteOffset: Int((p &<< 4) & 0xFF0), as: SIMD4<Int32>.self)
                        &+ tr.load(fromByteOffset: Int((p &>> 4) & 0xFF0) &+ 4096, as: SIMD4<Int32>.self)
                        &+ tr.load(fromByteOffset: Int((p &>> 12) & 0xFF0) &+ 8192, as: SIMD4<Int32>.self)
                    let v = (SIMD4<UInt32>(truncatingIfNeeded: sum) &>> 12) &<< 4 &+ blocks
                    let w = (lt.load(fromByteOffset: Int(v.y), as: SIMD4<Int32>.self)
                        &+ lt.load(fromByteOffset: Int(v.x), as: SIMD4<Int32>.self)
                        &+ lt.load(fromByteOffset: Int(v.z), as: SIMD4<Int32>.self)) &>> 15
                    return SIMD4<UInt32>(truncatingIfNeeded: w)
                }
                @inline(__always) func packed(_ w: SIMD4<UInt32>) -> UInt32 {
                    unsafeBitCast(SIMD4<UInt8>(truncatingIfNeeded: w), to: UInt32.self)
                }
                guard let st else {
                    // All but the last pixel store four bytes (the fourth is overwritten next).
                    for i in 0..<(n - 1) { raw.storeBytes(of: packed(code(i)), toByteOffset: 3 &* i, as: UInt32.self) }
                    let w = code(last)
                    d[3 * n - 3] = UInt8(w.x); d[3 * n - 2] = UInt8(w.y); d[3 * n - 1] = UInt8(w.z)
                    return
                }
                // Four interleaved sets of L counts, so runs of equal values (background) do not
                // chain every increment on the previous one; the loop is unrolled by four so the
                // set is a constant offset. Lane sums in 32 bits over blocks of 2¹⁵ pixels
                // (2¹⁵ · 255² < 2³²); the squares as 16-bit products (255² < 2¹⁶; the upper
                // halves of the lanes are 0).
                let counts = UnsafeMutablePointer<Int>.allocate(capacity: 4 * 256)
                defer { counts.deallocate() }
                counts.initialize(repeating: 0, count: 4 * 256)
                var sums = SIMD4<Int>.zero, squares = SIMD4<Int>.zero
                var i = 0
                while i < n {
                    let end = Swift.min(n, i + (1 << 15))
                    var sum = SIMD4<UInt32>.zero, square = SIMD4<UInt32>.zero
                    @inline(__always) func tally(_ w: SIMD4<UInt32>, _ set: Int) {
                        counts[Int(w.x) &+ set &<< 8] &+= 1
                        sum &+= w
                        let h = unsafeBitCast(w, to: SIMD8<UInt16>.self)
                        square &+= unsafeBitCast(h &* h, to: SIMD4<UInt32>.self)
                    }
                    let stop = Swift.min(end, n - 1)
                    @inline(__always) func step(_ i: Int, _ set: Int) {
                        let w = code(i)
                        raw.storeBytes(of: packed(w), toByteOffset: 3 &* i, as: UInt32.self)
                        tally(w, set)
                    }
                    while i &+ 4 <= stop {
                        step(i, 0); step(i &+ 1, 1); step(i &+ 2, 2); step(i &+ 3, 3)
                        i &+= 4
                    }
                    while i < stop { step(i, i & 3); i &+= 1 }
                    if i == n - 1 {
                        let w = code(last)
                        d[3 * i] = UInt8(w.x); d[3 * i + 1] = UInt8(w.y); d[3 * i + 2] = UInt8(w.z)
                        tally(w, i & 3)
                        i += 1
                    }
                    sums &+= SIMD4<Int>(truncatingIfNeeded: sum)
                    squares &+= SIMD4<Int>(truncatingIfNeeded: square)
                }
                for v in 0..<256 { st.pointee.lightnessCounts[v] += counts[v] + counts[256 + v] + counts[512 + v] + counts[768 + v] }
                st.pointee.add(count: n, aSum: sums.y, aSquares: squares.y, bSum: sums.z, bSquares: squares.z)
            }
        }
    }

    /// Lab → RGB as vector sums: per L byte the Y column of the inverse matrix (plus the rounding
    /// term), per X and Z index the X and Z columns, so one pixel is three 4-lane loads and two adds
    /// instead of nine multiplies. Indices are offsets into `xColumn` / `zColumn` (built once, over
    /// the indices the conversion can form: ≈ 0.9 MB together).
    let xColumn: [SIMD4<Int32>], zColumn: [SIMD4<Int32>]
    let xBase: Int32, zBase: Int32
    /// `inverseGamma` over every value the sum can take (below 0 → code 0, above 4095 → code 4095),
    /// so no clamp per channel: index = value − `gammaBase`.
    let inverseGammaWide: [UInt8]
    let gammaBase: Int32

    /// Converts 8-bit Lab codes to RGB, each channel first mapped through a 256-entry table
    /// (`maps`: 768 bytes, L then a then b).
    public func rgbImage(_ src: UnsafeBufferPointer<UInt8>, maps: UnsafeBufferPointer<UInt8>, into dst: UnsafeMutableBufferPointer<UInt8>) {
        let n = src.count / 3
        precondition(dst.count >= 3 * n && maps.count >= 768)
        guard n > 0, let s = src.baseAddress, let d = dst.baseAddress else { return }
        precondition(UnsafeRawPointer(s) + 3 * n <= UnsafeRawPointer(d) || UnsafeRawPointer(d) + 3 * n <= UnsafeRawPointer(s))
        // The maps folded into the per-byte parts of the conversion (the integer expressions of
        // `rgb`, evaluated once per byte): per L byte the Y terms (with the rounding term and
        // −gammaBase·2¹⁴, so the shifted sums are indices into `inverseGammaWide` directly) and
        // f(y); per a and b byte the offsets into the X and Z columns. Offsets are in bytes.
        let yTerms = UnsafeMutablePointer<SIMD4<Int32>>.allocate(capacity: 256)
        let offsets = UnsafeMutablePointer<Int>.allocate(capacity: 3 * 256)
        defer { yTerms.deallocate(); offsets.deallocate() }
        let c = Self.inverseCoefficients
        let round = 8192 - gammaBase << 14
        let stride = MemoryLayout<SIMD4<Int32>>.stride
        for v in 0..<256 {
            let l8 = Int(maps[v]), a8 = Int32(maps[256 + v]), b8 = Int32(maps[512 + v])
            let y = yTable[l8]
            yTerms[v] = SIMD4(c[1] &* y &+ round, c[4] &* y &+ round, c[7] &* y &+ round, 0)
            offsets[v] = stride * Int(ifyTable[l8])
            offsets[256 + v] = stride * Int(((5 &* a8 &* 53687 &+ 128) >> 13) &- 4194 &- xBase)
            offsets[512 + v] = stride * Int(-(((b8 &* 41943 &+ 16) >> 9) &- 10485 &+ 1) &- zBase)
        }
        xColumn.withUnsafeBufferPointer { xb in
            zColumn.withUnsafeBufferPointer { zb in
                inverseGammaWide.withUnsafeBufferPointer { gb in
                    let xc = UnsafeRawPointer(xb.baseAddress!), zc = UnsafeRawPointer(zb.baseAddress!), ig = gb.baseAddress!
                    // The sums are ≥ 0 (the bias above), so a logical shift and unsigned lanes.
                    @inline(__always) func pixel(_ i: Int) -> UInt32 {
                        let l = Int(s[3 &* i])
                        let ify = offsets[l]
                        let x = xc.load(fromByteOffset: ify &+ offsets[256 &+ Int(s[3 &* i &+ 1])], as: SIMD4<Int32>.self)
                        let z = zc.load(fromByteOffset: ify &+ offsets[512 &+ Int(s[3 &* i &+ 2])], as: SIMD4<Int32>.self)
                        let v = SIMD4<UInt32>(truncatingIfNeeded: yTerms[l] &+ x &+ z) &>> 14
                        return UInt32(ig[Int(v.x)]) | UInt32(ig[Int(v.y)]) << 8 | UInt32(ig[Int(v.z)]) << 16
                    }
                    // All but the last pixel store four bytes (the fourth is overwritten next).
                    let raw = UnsafeMutableRawPointer(d)
                    // Unrolled by four (the loop counter's share of this short body is noticeable).
                    var i = 0
                    while i &+ 4 <= n - 1 {
                        let p0 = pixel(i), p1 = pixel(i &+ 1), p2 = pixel(i &+ 2), p3 = pixel(i &+ 3)
                        raw.storeBytes(of: p0, toByteOffset: 3 &* i, as: UInt32.self)
                        raw.storeBytes(of: p1, toByteOffset: 3 &* i &+ 3, as: UInt32.self)
                        raw.storeBytes(of: p2, toByteOffset: 3 &* i &+ 6, as: UInt32.self)
                        raw.storeBytes(of: p3, toByteOffset: 3 &* i &+ 9, as: UInt32.self)
                        i &+= 4
                    }
                    while i < n - 1 { raw.storeBytes(of: pixel(i), toByteOffset: 3 &* i, as: UInt32.self); i &+= 1 }
                    let last = pixel(n - 1)
                    d[3 * n - 3] = UInt8(truncatingIfNeeded: last)
                    d[3 * n - 2] = UInt8(truncatingIfNeeded: last >> 8)
                    d[3 * n - 1] = UInt8(truncatingIfNeeded: last >> 16)
                }
            }
        }
    }

    /// The 8-bit L channel (0–255).
    @inline(__always) public func lightness(_ r: UInt8, _ g: UInt8, _ b: UInt8) -> UInt8 { lab(r, g, b).x }

    /// OpenCV's 8-bit Lab → RGB of one code.
    @inline(__always) public func rgb(_ l8: UInt8, _ a8: UInt8, _ b8: UInt8) -> SIMD3<UInt8> {
        let y = yTable[Int(l8)], ify = ifyTable[Int(l8)]
        let adiv = ((5 * Int32(a8) * 53687 + 128) >> 13) - 4194
        let bdiv = ((Int32(b8) * 41943 + 16) >> 9) - 10485 + 1
        let x = abToXZ[Int(ify + adiv) - Self.minAB], z = abToXZ[Int(ify - bdiv) - Self.minAB]
        let c = Self.inverseCoefficients
        func channel(_ k: Int) -> UInt8 {
            let v = (c[3 * k] * x + c[3 * k + 1] * y + c[3 * k + 2] * z + 8192) >> 14
            return inverseGamma[Int(max(0, min(4095, v)))]
        }
        return SIMD3(channel(0), channel(1), channel(2))
    }
}
