import Foundation
import TesseraCore
#if arch(x86_64)
import _Builtin_intrinsics.intel
#endif

extension StainNormalizer {
    /// The source side of a normalization fitted once (a slide, a reference region) and then applied
    /// to many tiles without refitting: per-pixel work only, through lookup tables.
    public enum FixedSource: Sendable {
        case stain(StainMatrix)
        case lab(mean: [Double], std: [Double])
    }

    /// Fits the source side on `image` (e.g. a mosaic of a slide's tissue tiles).
    public func fixedSource(fittedOn image: RGBImage) throws -> FixedSource {
        switch target.method {
        case .none: return .lab(mean: [0, 0, 0], std: [1, 1, 1])
        case .macenko: return .stain(try Macenko.fit(image))
        case .macenkoStaintools: return .stain(try Macenko.fit(image, options: MacenkoOptions(variant: .staintools)))
        case .vahadane: return .stain(try Vahadane.fit(image, options: vahadane))
        case .reinhard, .reinhardCielab:
            let (m, s) = try Reinhard.statistics(image, space: target.method == .reinhard ? .opencvLab8 : .cielab)
            return .lab(mean: m, std: s)
        }
    }

    /// Normalizes `image` as if it had the fitted `source` statistics.
    public func transform(_ image: RGBImage, source: FixedSource) -> RGBImage {
        switch (target.method, source) {
        case (.none, _):
            return image
        case (.macenko, .stain(let s)):
            return FixedTransform.leastSquares(image, source: s, target: target.stainMatrix!, od: ODTable.plusOne240, io: 240)
        case (.macenkoStaintools, .stain(let s)), (.vahadane, .stain(let s)):
            return FixedTransform.lasso(image, source: s, target: target.stainMatrix!)
        case (.reinhard, .lab(let m, let sd)):
            return FixedTransform.reinhardLab8(image, mean: m, std: sd, targetMean: target.labMean!, targetStd: target.labStd!)
        case (.reinhardCielab, .lab(let m, let sd)):
            return (try? Reinhard.cielabTransform(image, mean: m, std: sd, targetMean: target.labMean!, targetStd: target.labStd!)) ?? image
        default:
            return image
        }
    }
}

/// Per-pixel kernels with everything that does not depend on the pixel precomputed.
enum FixedTransform {
    /// Least-squares concentrations are linear in OD, so the whole map is x = M·od(pixel) with
    /// M = HE_target · diag(1/scale) · pinv(HE_source); per channel and input channel a 256-entry
    /// table of M[c][k]·od[v] leaves nine lookups and six additions per pixel.
    static func leastSquares(_ image: RGBImage, source: StainMatrix, target: StainMatrix, od: ODTable, io: Double) -> RGBImage {
        guard let m = leastSquaresMap(source: source, target: target) else { return image }
        return leastSquaresProduct(image, map: m, od: od, io: io) ?? leastSquaresExact(image, map: m, od: od, io: io)
    }

    /// M = HE_target · diag(1/scale) · pinv(HE_source), row-major 3×3 (nil when not finite).
    static func leastSquaresMap(source: StainMatrix, target: StainMatrix) -> [Double]? {
        guard let p = Macenko.pseudoInverse(source.vectors) else { return nil }
        let s0 = source.maxConcentrations[0] / target.maxConcentrations[0]
        let s1 = source.maxConcentrations[1] / target.maxConcentrations[1]
        var m = [Double](repeating: 0, count: 9)
        for c in 0..<3 {
            let h = target.vectors[0][c] / s0, e = target.vectors[1][c] / s1
            m[3 * c] = h * p.0.x + e * p.1.x
            m[3 * c + 1] = h * p.0.y + e * p.1.y
            m[3 * c + 2] = h * p.0.z + e * p.1.z
        }
        return m.allSatisfy(\.isFinite) ? m : nil
    }

    /// Io·e^(−Σₖ M[c][k]·od[vₖ]) = Πₖ Eₖ[vₖ][c] with Eₖ[v][c] = e^(−M[c][k]·od[v]) (Io folded into E₀):
    /// three float table loads and two multiplies per pixel, then ⌊min(255, ·)⌋. Float rounding moves a
    /// value by at most ~4e-5 grey levels, so a byte can differ from the exact path's only where the
    /// exact value lies that close to an integer, and then by 1 (tested). Nil when an exponent is so
    /// large (a degenerate fit) that float factors could overflow; the exact path handles that.
    static func leastSquaresProduct(_ image: RGBImage, map m: [Double], od: ODTable, io: Double) -> RGBImage? {
        var table = [SIMD4<Float>](repeating: .zero, count: 768)
        for k in 0..<3 { for v in 0..<256 {
            let x = SIMD3(m[k] * od.od[v], m[3 + k] * od.od[v], m[6 + k] * od.od[v])
            guard abs(x.x) <= 60 && abs(x.y) <= 60 && abs(x.z) <= 60 else { return nil }
            let f = k == 0 ? io : 1
            table[256 * k + v] = SIMD4(Float(f * exp(-x.x)), Float(f * exp(-x.y)), Float(f * exp(-x.z)), 0)
        } }
        let n = image.width * image.height
        let out = [UInt8](unsafeUninitializedCapacity: 3 * n) { dst, count in
            table.withUnsafeBufferPointer { t in
                image.pixels.withUnsafeBufferPointer { src in
                    productKernel(src, t, dst, n)
                }
            }
            count = 3 * n
        }
        return RGBImage(width: image.width, height: image.height, pixels: out)
    }

    /// The per-pixel loop of `leastSquaresProduct`.
    @inline(__always) static func productKernel(_ src: UnsafeBufferPointer<UInt8>, _ t: UnsafeBufferPointer<SIMD4<Float>>,
                                                _ dst: UnsafeMutableBufferPointer<UInt8>, _ n: Int) {
        guard let s = src.baseAddress, let d = dst.baseAddress, let tb = t.baseAddress, n > 0 else { return }
        precondition(src.count >= 3 * n && dst.count >= 3 * n && t.count >= 768)
        // ⌊min(255, y)⌋ for y ≥ 0 in integer SIMD only (no lane masks, no checked conversions): the
        // bit patterns of non-negative floats order like the floats, so a sign bit does the clamp;
        // y + 2²³ rounds to the nearest integer in its low mantissa bits, one less where that went up.
        let capBits = SIMD4<Int32>(repeating: Int32(bitPattern: Float(255).bitPattern))
        let magic = SIMD4<Float>(repeating: 8_388_608)
        let magicBits = SIMD4<Int32>(repeating: 0x4B00_0000)
        @inline(__always) func bytes(_ i: Int) -> SIMD4<Int32> {
            let p = tb[Int(s[3 * i])] * tb[256 + Int(s[3 * i + 1])] * tb[512 + Int(s[3 * i + 2])]
            let pb = unsafeBitCast(p, to: SIMD4<Int32>.self)
            let over = capBits &- pb
            let yb = pb &+ (over & (over &>> 31))
            let y = unsafeBitCast(yb, to: SIMD4<Float>.self)
            let shifted = y + magic
            let below = yb &- unsafeBitCast(shifted - magic, to: SIMD4<Int32>.self)
            return (unsafeBitCast(shifted, to: SIMD4<Int32>.self) &- magicBits) &+ (below &>> 31)
        }
        // All but the last pixel store four bytes at once (the fourth is the next pixel's first,
        // written again right after), so src and dst must not overlap.
        precondition(UnsafeRawPointer(s) + 3 * n <= UnsafeRawPointer(d) || UnsafeRawPointer(d) + 3 * n <= UnsafeRawPointer(s))
        let raw = UnsafeMutableRawPointer(d)
        #if arch(x86_64)
        // SSE2 has the whole tail as instructions: minps clamps (y ≥ 0, finite or +∞), cvttps2dq
        // truncates (= ⌊·⌋ on [0, 255]), two saturating packs leave the bytes in the low 32 bits
        // (lane 3 of the tables is 0, so the fourth byte is 0). Same bytes as `bytes`.
        let cap = SIMD4<Float>(repeating: 255)
        for i in 0..<(n - 1) {
            let p = tb[Int(s[3 * i])] * tb[256 + Int(s[3 * i + 1])] * tb[512 + Int(s[3 * i + 2])]
            let w = _mm_cvttps_epi32(_mm_min_ps(p, cap))
            let packed = _mm_packus_epi16(_mm_packs_epi32(w, w), _mm_setzero_si128())
            raw.storeBytes(of: UInt32(bitPattern: _mm_cvtsi128_si32(packed)), toByteOffset: 3 * i, as: UInt32.self)
        }
        #else
        for i in 0..<(n - 1) {
            let v = bytes(i)
            raw.storeBytes(of: UInt32(truncatingIfNeeded: v.x | (v.y &<< 8) | (v.z &<< 16)), toByteOffset: 3 * i, as: UInt32.self)
        }
        #endif
        let v = bytes(n - 1)
        d[3 * n - 3] = UInt8(truncatingIfNeeded: v.x)
        d[3 * n - 2] = UInt8(truncatingIfNeeded: v.y)
        d[3 * n - 1] = UInt8(truncatingIfNeeded: v.z)
    }

    /// The exact path: the optical density x per channel, then ⌊min(255, Io·e^(−x))⌋ by `ODToByte`.
    static func leastSquaresExact(_ image: RGBImage, map m: [Double], od: ODTable, io: Double) -> RGBImage {
        // table[256·k + v] = the contribution of input channel k at value v to the three outputs.
        var table = [SIMD4<Double>](repeating: .zero, count: 3 * 256)
        for k in 0..<3 { for v in 0..<256 {
            table[256 * k + v] = SIMD4(m[k] * od.od[v], m[3 + k] * od.od[v], m[6 + k] * od.od[v], 0)
        } }
        let toByte = ODToByte.shared(io: io)
        let n = image.width * image.height
        var out = [UInt8](repeating: 0, count: 3 * n)
        table.withUnsafeBufferPointer { t in
            image.pixels.withUnsafeBufferPointer { src in
                out.withUnsafeMutableBufferPointer { dst in
                    for i in 0..<n {
                        let x = t[Int(src[3 * i])] + t[256 + Int(src[3 * i + 1])] + t[512 + Int(src[3 * i + 2])]
                        dst[3 * i] = toByte.byte(x.x)
                        dst[3 * i + 1] = toByte.byte(x.y)
                        dst[3 * i + 2] = toByte.byte(x.z)
                    }
                }
            }
        }
        return RGBImage(width: image.width, height: image.height, pixels: out)
    }

    /// Non-negative lasso concentrations (staintools Macenko, Vahadane), then 255·exp(−C·S).
    static func lasso(_ image: RGBImage, source: StainMatrix, target: StainMatrix) -> RGBImage {
        let od = ODTable.staintools()
        let solver = NonNegativeLasso2(dictionary: source.vectors, lambda: 0.01)
        let h = SIMD3(target.vectors[0][0], target.vectors[0][1], target.vectors[0][2]) * (target.maxConcentrations[0] / source.maxConcentrations[0])
        let e = SIMD3(target.vectors[1][0], target.vectors[1][1], target.vectors[1][2]) * (target.maxConcentrations[1] / source.maxConcentrations[1])
        let toByte = ODToByte.shared(io: 255)
        let n = image.width * image.height
        var out = [UInt8](repeating: 0, count: 3 * n)
        image.pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for i in 0..<n {
                    let c = solver.solve(SIMD3(od.od[Int(src[3 * i])], od.od[Int(src[3 * i + 1])], od.od[Int(src[3 * i + 2])]))
                    let x = h * c.x + e * c.y
                    dst[3 * i] = toByte.byte(x.x)
                    dst[3 * i + 1] = toByte.byte(x.y)
                    dst[3 * i + 2] = toByte.byte(x.z)
                }
            }
        }
        return RGBImage(width: image.width, height: image.height, pixels: out)
    }

    /// Reinhard in OpenCV's 8-bit LAB: each channel's map is a function of its byte alone, so
    /// three 256-entry tables sit between the integer RGB→LAB and LAB→RGB conversions (one fused pass).
    static func reinhardLab8(_ image: RGBImage, mean: [Double], std: [Double], targetMean: [Double], targetStd: [Double]) -> RGBImage {
        guard let maps = reinhardMaps(mean: mean, std: std, targetMean: targetMean, targetStd: targetStd) else { return image }
        let lab = [UInt8](unsafeUninitializedCapacity: image.pixels.count) { dst, count in
            image.pixels.withUnsafeBufferPointer { src in OpenCVLab8.shared.labImage(src, into: dst) }
            count = image.pixels.count
        }
        let out = [UInt8](unsafeUninitializedCapacity: image.pixels.count) { dst, count in
            lab.withUnsafeBufferPointer { src in
                maps.withUnsafeBufferPointer { m in OpenCVLab8.shared.rgbImage(src, maps: m, into: dst) }
            }
            count = image.pixels.count
        }
        return RGBImage(width: image.width, height: image.height, pixels: out)
    }

    /// The per-channel maps of Lab codes (768 bytes, L then a then b); nil when a channel has no spread.
    static func reinhardMaps(mean: [Double], std: [Double], targetMean: [Double], targetStd: [Double]) -> [UInt8]? {
        guard std.allSatisfy({ $0 > 1e-12 }) else { return nil }
        var maps = [UInt8](repeating: 0, count: 768)
        for v in 0..<256 {
            let l = Double(Float(v) / Float(2.55))
            maps[v] = Reinhard.truncByte(((l - mean[0]) * (targetStd[0] / std[0]) + targetMean[0]) * 2.55)
            maps[256 + v] = Reinhard.truncByte(((Double(v) - 128 - mean[1]) * (targetStd[1] / std[1]) + targetMean[1]) + 128)
            maps[512 + v] = Reinhard.truncByte(((Double(v) - 128 - mean[2]) * (targetStd[2] / std[2]) + targetMean[2]) + 128)
        }
        return maps
    }

    /// The same from Lab codes already computed (the per-tile path converts once for statistics and transform).
    static func reinhardLab8(lab: [UInt8], width: Int, height: Int, mean: [Double], std: [Double], targetMean: [Double], targetStd: [Double]) -> RGBImage? {
        guard let maps = reinhardMaps(mean: mean, std: std, targetMean: targetMean, targetStd: targetStd) else { return nil }
        let out = [UInt8](unsafeUninitializedCapacity: lab.count) { dst, count in
            lab.withUnsafeBufferPointer { src in
                maps.withUnsafeBufferPointer { m in OpenCVLab8.shared.rgbImage(src, maps: m, into: dst) }
            }
            count = lab.count
        }
        return RGBImage(width: width, height: height, pixels: out)
    }
}
