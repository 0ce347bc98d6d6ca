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
            terms[256 * ch + v] = SIMD4(g * c[ch], g * c[3 + ch], g * c[6 + ch], 0)
        } }
        xyzTerms = terms

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
    /// channel: (X, Y, Z) sums are then three vector loads and two adds.
    let xyzTerms: [SIMD4<Int32>]

    /// Converts a whole RGB buffer to 8-bit Lab (3 bytes per pixel) and counts each channel's values.
    public func labImage(_ src: UnsafeBufferPointer<UInt8>, into dst: UnsafeMutableBufferPointer<UInt8>,
                         histograms: UnsafeMutablePointer<Int>? = nil) {
        let n = src.count / 3
        precondition(dst.count >= 3 * n)
        guard n > 0, let s = src.baseAddress, let d = dst.baseAddress else { return }
        // Two interleaved sets of counts (even / odd pixels): runs of equal values then do not
        // chain every increment on the previous one.
        let counts = UnsafeMutablePointer<Int>.allocate(capacity: 2 * 768)
        defer { counts.deallocate() }
        counts.initialize(repeating: 0, count: 2 * 768)
        xyzTerms.withUnsafeBufferPointer { tb in
            cbrtTable.withUnsafeBufferPointer { ct in
                let t = tb.baseAddress!
                let round = SIMD4<Int32>(repeating: 2048)
                for i in 0..<n {
                    let sum = (t[Int(s[3 * i])] &+ t[256 + Int(s[3 * i + 1])] &+ t[512 + Int(s[3 * i + 2])] &+ round) &>> 12
                    let fX = ct[Int(sum.x)], fY = ct[Int(sum.y)], fZ = ct[Int(sum.z)]
                    let L = Self.saturate((296 &* fY &- 1_336_934 &+ 16384) >> 15)
                    let a = Self.saturate((500 &* (fX &- fY) &+ 128 &* 32768 &+ 16384) >> 15)
                    let b = Self.saturate((200 &* (fY &- fZ) &+ 128 &* 32768 &+ 16384) >> 15)
                    d[3 * i] = L; d[3 * i + 1] = a; d[3 * i + 2] = b
                    let h = counts + 768 * (i & 1)
                    h[Int(L)] &+= 1; h[256 + Int(a)] &+= 1; h[512 + Int(b)] &+= 1
                }
            }
        }
        if let h = histograms {
            for v in 0..<768 { h[v] += counts[v] + counts[768 + v] }
        }
    }

    /// Converts 8-bit Lab codes to RGB, each channel first mapped through a 256-entry table
    /// (`maps`: 768 bytes, L then a then b).
    public func rgbImage(_ src: UnsafeBufferPointer<UInt8>, maps: UnsafeBufferPointer<UInt8>, into dst: UnsafeMutableBufferPointer<UInt8>) {
        let n = src.count / 3
        precondition(dst.count >= 3 * n && maps.count >= 768)
        guard n > 0, let s = src.baseAddress, let d = dst.baseAddress else { return }
        // The maps folded into the per-byte parts of the conversion: y and f(y) per L byte, the a
        // and b offsets per a and b byte (the integer expressions of `rgb`, evaluated once per byte).
        let folded = UnsafeMutablePointer<Int32>.allocate(capacity: 4 * 256)
        defer { folded.deallocate() }
        for v in 0..<256 {
            let l8 = Int(maps[v]), a8 = Int32(maps[256 + v]), b8 = Int32(maps[512 + v])
            folded[v] = yTable[l8]
            folded[256 + v] = ifyTable[l8] &- Int32(Self.minAB)
            folded[512 + v] = ((5 &* a8 &* 53687 &+ 128) >> 13) &- 4194
            folded[768 + v] = ((b8 &* 41943 &+ 16) >> 9) &- 10485 &+ 1
        }
        abToXZ.withUnsafeBufferPointer { xz in
            inverseGamma.withUnsafeBufferPointer { ig in
                let c = Self.inverseCoefficients
                let r0 = c[0], r1 = c[1], r2 = c[2], g0 = c[3], g1 = c[4], g2 = c[5], b0 = c[6], b1 = c[7], b2 = c[8]
                for i in 0..<n {
                    let l = Int(s[3 * i])
                    let y = folded[l], ify = folded[256 + l]
                    let adiv = folded[512 + Int(s[3 * i + 1])], bdiv = folded[768 + Int(s[3 * i + 2])]
                    let x = xz[Int(ify &+ adiv)], z = xz[Int(ify &- bdiv)]
                    let r = (r0 &* x &+ r1 &* y &+ r2 &* z &+ 8192) >> 14
                    let g = (g0 &* x &+ g1 &* y &+ g2 &* z &+ 8192) >> 14
                    let b = (b0 &* x &+ b1 &* y &+ b2 &* z &+ 8192) >> 14
                    d[3 * i] = ig[Int(max(0, min(4095, r)))]
                    d[3 * i + 1] = ig[Int(max(0, min(4095, g)))]
                    d[3 * i + 2] = ig[Int(max(0, min(4095, b)))]
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
