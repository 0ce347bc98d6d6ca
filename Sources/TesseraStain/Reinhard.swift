import Foundation
import TesseraCore

/// Reinhard et al. 2001 ("Color transfer between images", IEEE CG&A): per-channel LAB means and
/// population standard deviations of the image moved to the target's.
///
/// Two named colour spaces:
/// - `opencv-lab8` (staintools, TIAToolbox): OpenCV's 8-bit LAB; channels L/2.55 (in float32, as
///   staintools divides its float32 array), a−128, b−128; statistics like cv2.meanStdDev; result
///   ×2.55, +128, clipped to 0…255, truncated to bytes and converted back with OpenCV's 8-bit LAB→RGB.
/// - `cielab` (torchstain): float CIELAB, D65 white (0.95047, 1, 1.08883), sRGB gamma, the
///   Ruzon/OpenCV RGB→XYZ matrix; result converted back, clipped to [0, 1], ×255 and truncated.
public enum Reinhard {
    public enum Space: String, Sendable, Codable, CaseIterable {
        case opencvLab8 = "opencv-lab8"
        case cielab
    }

    /// Channel means and population standard deviations in `space`.
    public static func statistics(_ image: RGBImage, space: Space) throws -> (mean: [Double], std: [Double]) {
        let n = image.width * image.height
        guard n > 0 else { throw StainFitError(reason: "empty image") }
        if space == .opencvLab8 { return lab8Statistics(image).stats }
        return cielabStatistics(CIELab.labImage(image), count: n)
    }

    /// Means and population standard deviations of CIELAB values stored L, a, b per pixel.
    static func cielabStatistics(_ lab: [Double], count n: Int) -> (mean: [Double], std: [Double]) {
        var s = SIMD3<Double>(0, 0, 0), sq = SIMD3<Double>(0, 0, 0)
        lab.withUnsafeBufferPointer { p in
            for i in 0..<n {
                let v = SIMD3(p[3 * i], p[3 * i + 1], p[3 * i + 2])
                s += v
                sq += v * v
            }
        }
        let mean = s / Double(n)
        var variance = sq / Double(n) - mean * mean
        variance = variance.replacing(with: 0, where: variance .< 0)
        let std = [variance.x.squareRoot(), variance.y.squareRoot(), variance.z.squareRoot()]
        return ([mean.x, mean.y, mean.z], std)
    }

    /// Lab codes of every pixel and the channel statistics: L from its value counts (the float32
    /// working value L/2.55 summed per code, as before), a and b from exact integer sums (their
    /// working values are the integers code − 128, so the per-code sums in doubles were exact and
    /// equal these).
    static func lab8Statistics(_ image: RGBImage) -> (lab: [UInt8], stats: (mean: [Double], std: [Double])) {
        let n = image.width * image.height
        var st = OpenCVLab8.Statistics()
        let lab = [UInt8](unsafeUninitializedCapacity: 3 * n) { dst, count in
            image.pixels.withUnsafeBufferPointer { src in OpenCVLab8.shared.labImage(src, into: dst, statistics: &st) }
            count = 3 * n
        }
        var s = 0.0, sq = 0.0
        for v in 0..<256 where st.lightnessCounts[v] > 0 {
            let x = Double(Float(v) / Float(2.55))
            let k = Double(st.lightnessCounts[v])
            s += k * x
            sq += k * x * x
        }
        var mean = [Double](), std = [Double]()
        for (sum, squares) in [(s, sq), (Double(st.aSum), Double(st.aSquares)), (Double(st.bSum), Double(st.bSquares))] {
            let m = sum / Double(n)
            mean.append(m)
            std.append(max(0, squares / Double(n) - m * m).squareRoot())
        }
        return (lab, (mean, std))
    }

    /// Normalizes `image` to the target statistics. Throws when a channel of the image is constant
    /// (no spread to rescale); callers pass such tiles through unchanged.
    public static func normalize(_ image: RGBImage, mean targetMean: [Double], std targetStd: [Double], space: Space) throws -> RGBImage {
        if space == .opencvLab8 {
            let (lab, (mean, std)) = lab8Statistics(image)
            guard let out = FixedTransform.reinhardLab8(lab: lab, width: image.width, height: image.height, mean: mean, std: std,
                                                         targetMean: targetMean, targetStd: targetStd) else {
                throw StainFitError(reason: "a LAB channel has no spread (flat image)")
            }
            return out
        }
        guard image.width * image.height > 0 else { throw StainFitError(reason: "empty image") }
        // CIELAB: each pixel's Lab computed once, for the statistics and the transform.
        let lab = CIELab.labImage(image)
        let (mean, std) = cielabStatistics(lab, count: image.width * image.height)
        return try cielabTransform(lab, width: image.width, height: image.height, mean: mean, std: std, targetMean: targetMean, targetStd: targetStd)
    }

    /// torchstain's CIELAB transform of precomputed Lab values: standardize, rescale, convert back.
    static func cielabTransform(_ lab: [Double], width: Int, height: Int, mean: [Double], std: [Double],
                                targetMean: [Double], targetStd: [Double]) throws -> RGBImage {
        guard std.allSatisfy({ $0 > 1e-12 }) else { throw StainFitError(reason: "a LAB channel has no spread (flat image)") }
        let m = SIMD3(mean[0], mean[1], mean[2]), sd = SIMD3(std[0], std[1], std[2])
        let tm = SIMD3(targetMean[0], targetMean[1], targetMean[2]), ts = SIMD3(targetStd[0], targetStd[1], targetStd[2])
        let n = width * height
        let out = [UInt8](unsafeUninitializedCapacity: 3 * n) { dst, count in
            lab.withUnsafeBufferPointer { p in
                for i in 0..<n {
                    // torchstain: standardize then rescale, in that order.
                    let rgb = CIELab.rgb((SIMD3(p[3 * i], p[3 * i + 1], p[3 * i + 2]) - m) / sd * ts + tm)
                    dst[3 * i] = rgb.x
                    dst[3 * i + 1] = rgb.y
                    dst[3 * i + 2] = rgb.z
                }
            }
            count = 3 * n
        }
        return RGBImage(width: width, height: height, pixels: out)
    }

    /// CIELAB-normalizes with given source statistics (no refit): a fixed per-slide fit.
    static func cielabTransform(_ image: RGBImage, mean: [Double], std: [Double], targetMean: [Double], targetStd: [Double]) throws -> RGBImage {
        try cielabTransform(CIELab.labImage(image), width: image.width, height: image.height, mean: mean, std: std,
                            targetMean: targetMean, targetStd: targetStd)
    }

    @inline(__always) static func truncByte(_ v: Double) -> UInt8 {
        v.isNaN ? 0 : UInt8(max(0, min(255, v)).rounded(.towardZero))
    }
}

/// Float CIELAB as torchstain's numpy utilities compute it (L scaled to 0–100, a and b unshifted):
/// sRGB gamma, the RGB→XYZ matrix below, D65 white (0.95047, 1, 1.08883), f(t) = ∛t above 0.008856
/// else 7.787t + 16/116.
public enum CIELab {
    static let m: [Double] = [0.412453, 0.357580, 0.180423,
                              0.212671, 0.715160, 0.072169,
                              0.019334, 0.119193, 0.950227]
    static let white = SIMD3<Double>(0.95047, 1.0, 1.08883)
    static let inverse: [Double] = {
        let a = m
        let c00 = a[4] * a[8] - a[5] * a[7], c01 = a[5] * a[6] - a[3] * a[8], c02 = a[3] * a[7] - a[4] * a[6]
        let det = a[0] * c00 + a[1] * c01 + a[2] * c02
        return [c00 / det, (a[2] * a[7] - a[1] * a[8]) / det, (a[1] * a[5] - a[2] * a[4]) / det,
                c01 / det, (a[0] * a[8] - a[2] * a[6]) / det, (a[2] * a[3] - a[0] * a[5]) / det,
                c02 / det, (a[1] * a[6] - a[0] * a[7]) / det, (a[0] * a[4] - a[1] * a[3]) / det]
    }()
    static let linear: [Double] = (0..<256).map { v in
        let c = Double(Float(v) / 255)
        return c > 0.04045 ? pow((c + 0.055) / 1.055, 2.4) : c / 12.92
    }

    @inline(__always) static func lab(_ r: UInt8, _ g: UInt8, _ b: UInt8) -> SIMD3<Double> {
        let R = linear[Int(r)], G = linear[Int(g)], B = linear[Int(b)]
        let xyz = SIMD3(m[0] * R + m[1] * G + m[2] * B, m[3] * R + m[4] * G + m[5] * B, m[6] * R + m[7] * G + m[8] * B) / white
        let root = cubeRoot(SIMD4(xyz.x, xyz.y, xyz.z, 1))
        let lin = SIMD4(xyz.x, xyz.y, xyz.z, 1) * 7.787 + 16.0 / 116.0
        let f = lin.replacing(with: root, where: SIMD4(xyz.x, xyz.y, xyz.z, 1) .> 0.008856)
        return SIMD3(116 * f.y - 16, 500 * (f.x - f.y), 200 * (f.y - f.z))
    }

    /// Cube roots of four positive numbers: an exponent-thirding first guess, then Halley steps
    /// (each triples the correct digits: 3 % → 1e-5 → 1e-15 → rounding), within 8 ulp of `cbrt`
    /// (tested) and several times faster, four at a time. Lanes ≤ 0 or not finite give garbage and
    /// are not used (the caller selects the linear branch for t ≤ 0.008856).
    @inline(__always) static func cubeRoot(_ x: SIMD4<Double>) -> SIMD4<Double> {
        // ≈ (1023 − 1023/3) << 52, less a bias so the guess errs by ≤ 3.2 % (fdlibm's s_cbrt.c constant B1).
        let third: UInt64 = 0x2A9F_7893_782D_A1CE
        var bits = SIMD4<UInt64>(x.x.bitPattern, x.y.bitPattern, x.z.bitPattern, x.w.bitPattern)
        bits = bits / 3 &+ third
        var y = SIMD4(Double(bitPattern: bits.x), Double(bitPattern: bits.y), Double(bitPattern: bits.z), Double(bitPattern: bits.w))
        for _ in 0..<3 {
            let y3 = y * y * y
            y = y * (y3 + 2 * x) / (2 * y3 + x)
        }
        return y
    }

    /// Lab of every pixel, stored L, a, b.
    static func labImage(_ image: RGBImage) -> [Double] {
        let n = image.width * image.height
        return [Double](unsafeUninitializedCapacity: 3 * n) { dst, count in
            image.pixels.withUnsafeBufferPointer { p in
                for i in 0..<n {
                    let v = lab(p[3 * i], p[3 * i + 1], p[3 * i + 2])
                    dst[3 * i] = v.x
                    dst[3 * i + 1] = v.y
                    dst[3 * i + 2] = v.z
                }
            }
            count = 3 * n
        }
    }

    /// sRGB-encoded byte of a linear value as torchstain computes it (gamma, clip to [0, 1], ×255,
    /// truncate; NaN → 0). The reference for `gammaByte`, which must agree with it everywhere.
    static func referenceGammaByte(_ c: Double) -> UInt8 {
        let v = c > 0.0031308 ? 1.055 * pow(c, 1 / 2.4) - 0.055 : c * 12.92
        guard v.isFinite else { return 0 }
        return UInt8((max(0, min(1, v)) * 255).rounded(.towardZero))
    }

    /// thresholds[k − 1] = the smallest double c with referenceGammaByte(c) ≥ k (k = 1 … 255), found by
    /// bisection on the ordered bit patterns of positive doubles; the byte is then a search, not a `pow`.
    static let gammaThresholds: [Double] = (1...255).map { threshold(UInt8($0)) }

    static func threshold(_ k: UInt8) -> Double {
        var lo: UInt64 = 0
        let two: Double = 2
        var hi: UInt64 = two.bitPattern   // byte(lo) < k ≤ byte(hi); 255 needs c slightly above 1 (see gammaByte)
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2
            if referenceGammaByte(Double(bitPattern: mid)) >= k { hi = mid } else { lo = mid }
        }
        return Double(bitPattern: hi)
    }

    /// Bins of width 1/4096 over [0, 1): the gamma curve's steepest slope (≈ 3,300 grey levels per
    /// unit, at the linear/power junction) puts at most one threshold inside a bin, so the byte is the
    /// bin's first byte plus one comparison.
    static let gammaBins = 4096
    static let gammaBinStart: [UInt8] = (0..<gammaBins).map { i in
        let c = Double(i) / Double(gammaBins)
        return UInt8(gammaThresholds.lastIndex(where: { $0 <= c }).map { $0 + 1 } ?? 0)
    }

    @inline(__always) static func gammaByte(_ c: Double, _ t: UnsafeBufferPointer<Double>, _ bins: UnsafeBufferPointer<UInt8>) -> UInt8 {
        guard c >= t[0] else { return 0 }   // also NaN and −∞
        // 1.055 · 1 − 0.055 rounds to just below 1, so white (c = 1) is 254 in the formula and 255
        // starts a few ulp above it; +∞ gives 0 there (not finite).
        guard c < 1 else { return c.isFinite ? (c >= t[254] ? 255 : 254) : 0 }
        let b = bins[Int(c * Double(gammaBins))]
        return b == 255 || c < t[Int(b)] ? b : b + 1
    }

    @inline(__always) static func rgb(_ lab: SIMD3<Double>) -> SIMD3<UInt8> {
        let y = (lab.x + 16) / 116
        let x = lab.y / 500 + y
        let z = y - lab.z / 200
        func finv(_ t: Double) -> Double { t > 0.2068966 ? t * t * t : (t - 16.0 / 116.0) / 7.787 }
        let xyz = SIMD3(finv(x), finv(y), finv(z)) * white
        let i = inverse
        let lin = SIMD3(i[0] * xyz.x + i[1] * xyz.y + i[2] * xyz.z, i[3] * xyz.x + i[4] * xyz.y + i[5] * xyz.z,
                        i[6] * xyz.x + i[7] * xyz.y + i[8] * xyz.z)
        return gammaThresholds.withUnsafeBufferPointer { t in
            gammaBinStart.withUnsafeBufferPointer { bins in SIMD3(gammaByte(lin.x, t, bins), gammaByte(lin.y, t, bins), gammaByte(lin.z, t, bins)) }
        }
    }
}
