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
        var s = SIMD3<Double>(0, 0, 0), sq = SIMD3<Double>(0, 0, 0)
        image.pixels.withUnsafeBufferPointer { p in
            for i in 0..<n {
                let v = channels(p[3 * i], p[3 * i + 1], p[3 * i + 2], space: space)
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

    /// The working channels of one pixel.
    @inline(__always) static func channels(_ r: UInt8, _ g: UInt8, _ b: UInt8, space: Space) -> SIMD3<Double> {
        switch space {
        case .opencvLab8:
            let lab = OpenCVLab8.shared.lab(r, g, b)
            return SIMD3(Double(Float(lab.x) / Float(2.55)), Double(lab.y) - 128, Double(lab.z) - 128)
        case .cielab:
            return CIELab.lab(r, g, b)
        }
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
        let (mean, std) = try statistics(image, space: space)
        return try transform(image, mean: mean, std: std, targetMean: targetMean, targetStd: targetStd, space: space)
    }

    /// Normalizes with given source statistics (no refit).
    static func transform(_ image: RGBImage, mean: [Double], std: [Double], targetMean: [Double], targetStd: [Double], space: Space) throws -> RGBImage {
        guard std.allSatisfy({ $0 > 1e-12 }) else { throw StainFitError(reason: "a LAB channel has no spread (flat image)") }
        let m = SIMD3(mean[0], mean[1], mean[2])
        let tm = SIMD3(targetMean[0], targetMean[1], targetMean[2])
        let ratio = SIMD3(targetStd[0] / std[0], targetStd[1] / std[1], targetStd[2] / std[2])
        let n = image.width * image.height
        var out = [UInt8](repeating: 0, count: 3 * n)
        image.pixels.withUnsafeBufferPointer { p in
            out.withUnsafeMutableBufferPointer { dst in
                for i in 0..<n {
                    let v = channels(p[3 * i], p[3 * i + 1], p[3 * i + 2], space: space)
                    let rgb: SIMD3<UInt8>
                    switch space {
                    case .opencvLab8:
                        let norm = (v - m) * ratio + tm
                        // staintools' merge_back: ×2.55, +128, clip, astype(uint8) truncates.
                        let l8 = truncByte(norm.x * 2.55), a8 = truncByte(norm.y + 128), b8 = truncByte(norm.z + 128)
                        rgb = OpenCVLab8.shared.rgb(l8, a8, b8)
                    case .cielab:
                        // torchstain: standardize then rescale, in that order.
                        let norm = (v - m) / SIMD3(std[0], std[1], std[2]) * SIMD3(targetStd[0], targetStd[1], targetStd[2]) + tm
                        rgb = CIELab.rgb(norm)
                    }
                    dst[3 * i] = rgb.x
                    dst[3 * i + 1] = rgb.y
                    dst[3 * i + 2] = rgb.z
                }
            }
        }
        return RGBImage(width: image.width, height: image.height, pixels: out)
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
        func f(_ t: Double) -> Double { t > 0.008856 ? cbrt(t) : 7.787 * t + 16.0 / 116.0 }
        let fx = f(xyz.x), fy = f(xyz.y), fz = f(xyz.z)
        return SIMD3(116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz))
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
        func gamma(_ c: Double) -> UInt8 {
            let v = c > 0.0031308 ? 1.055 * pow(c, 1 / 2.4) - 0.055 : c * 12.92
            guard v.isFinite else { return 0 }
            return UInt8((max(0, min(1, v)) * 255).rounded(.towardZero))
        }
        return SIMD3(gamma(lin.x), gamma(lin.y), gamma(lin.z))
    }
}
