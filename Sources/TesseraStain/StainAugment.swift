import Foundation
import TesseraCore

/// Stain augmentation after Tellez et al. 2018 ("Whole-slide mitosis detection in H&E breast
/// histology using PHH3 as a reference to train distilled stain-invariant convolutional networks",
/// IEEE TMI 37(9)): each stain channel s becomes α·s + β with α ~ U(1−σ₁, 1+σ₁), β ~ U(−σ₂, σ₂).
///
/// Two spaces:
/// - `hed`: Ruifrok & Johnston colour deconvolution (the fixed H, E, DAB matrix of scikit-image's
///   rgb2hed/hed2rgb, log base 10⁻⁶), all three channels jittered, output rounded to bytes.
/// - `macenko`: the tile's own Macenko (staintools variant) stain vectors and lasso concentrations,
///   H and E jittered, output 255·exp(−C·S) truncated (staintools' StainAugmentor, σ₁ = σ₂ = 0.2).
/// Draws come from the caller's generator (α then β per stain, in stain order), so an augmentation is
/// a function of the seed it was given. Background pixels (OpenCV 8-bit LAB L ≥ 0.8·255) are left
/// unchanged unless `augmentBackground`.
public struct StainJitter: Sendable, Equatable, Codable {
    public enum Space: String, Sendable, Codable, CaseIterable { case hed, macenko }
    public var space: Space = .hed
    public var sigma1 = 0.05
    public var sigma2 = 0.05
    public var augmentBackground = false

    public init(space: Space = .hed) {
        self.space = space
        // HED: Tellez et al.'s "HED-light" range; Macenko: staintools' and torchstain's defaults.
        if space == .macenko { sigma1 = 0.2; sigma2 = 0.2 }
    }

    /// rgb_from_hed (rows H, E, DAB; Ruifrok & Johnston 2001, as in scikit-image) and its inverse.
    static let rgbFromHED: [SIMD3<Double>] = [SIMD3(0.65, 0.70, 0.29), SIMD3(0.07, 0.99, 0.11), SIMD3(0.27, 0.57, 0.78)]
    static let hedFromRGB: [SIMD3<Double>] = {
        let r = rgbFromHED
        // Inverse of the 3×3 matrix with rows r[0], r[1], r[2] (cofactors).
        let c0 = SIMD3(r[1].y * r[2].z - r[1].z * r[2].y, r[1].z * r[2].x - r[1].x * r[2].z, r[1].x * r[2].y - r[1].y * r[2].x)
        let c1 = SIMD3(r[2].y * r[0].z - r[2].z * r[0].y, r[2].z * r[0].x - r[2].x * r[0].z, r[2].x * r[0].y - r[2].y * r[0].x)
        let c2 = SIMD3(r[0].y * r[1].z - r[0].z * r[1].y, r[0].z * r[1].x - r[0].x * r[1].z, r[0].x * r[1].y - r[0].y * r[1].x)
        let det = (r[0] * c0).sum()
        // inv = adj / det, adj's columns are the cofactor rows.
        return [SIMD3(c0.x, c1.x, c2.x) / det, SIMD3(c0.y, c1.y, c2.y) / det, SIMD3(c0.z, c1.z, c2.z) / det]
    }()
    static let logAdjust = log(1e-6)
    /// ln(max(v/255, 1e-6)) / ln(1e-6) per byte.
    static let hedLog: [Double] = (0..<256).map { log(max(Double($0) / 255, 1e-6)) / log(1e-6) }
    static let roundByte = ODToByte.shared(io: 255, rounding: true)
    static let truncByte = ODToByte.shared(io: 255)

    public func validate() throws {
        guard sigma1 >= 0 && sigma1 < 1 else { throw TesseraError(.invalidConfig, "stain jitter sigma1 must be in [0, 1), got \(sigma1)") }
        guard sigma2 >= 0 && sigma2 <= 1 else { throw TesseraError(.invalidConfig, "stain jitter sigma2 must be in [0, 1], got \(sigma2)") }
    }

    /// The jittered image; `.macenko` returns the input unchanged when the tile cannot be fitted.
    public func apply<G: RandomNumberGenerator>(_ image: RGBImage, rng: inout G) -> (image: RGBImage, changed: Bool) {
        let stains = space == .hed ? 3 : 2
        var alpha = [Double](), beta = [Double]()
        for _ in 0..<stains {
            alpha.append(1 - sigma1 + 2 * sigma1 * Self.uniform(&rng))
            beta.append(-sigma2 + 2 * sigma2 * Self.uniform(&rng))
        }
        return apply(image, alpha: alpha, beta: beta)
    }

    /// The image with stain s scaled by alpha[s] and shifted by beta[s] (3 stains for `hed`, 2 for `macenko`).
    public func apply(_ image: RGBImage, alpha: [Double], beta: [Double]) -> (image: RGBImage, changed: Bool) {
        let n = image.width * image.height
        var out = image.pixels
        let lab = OpenCVLab8.shared
        func background(_ p: UnsafeBufferPointer<UInt8>, _ i: Int) -> Bool {
            !augmentBackground && Double(lab.lightness(p[3 * i], p[3 * i + 1], p[3 * i + 2])) / 255 >= 0.8
        }
        switch space {
        case .hed:
            let inv = Self.hedFromRGB, fwd = Self.rgbFromHED, lut = Self.hedLog
            let a = SIMD3(alpha[0], alpha[1], alpha[2]), b = SIMD3(beta[0], beta[1], beta[2])
            image.pixels.withUnsafeBufferPointer { p in
                out.withUnsafeMutableBufferPointer { dst in
                    for i in 0..<n where !background(p, i) {
                        let l = SIMD3(lut[Int(p[3 * i])], lut[Int(p[3 * i + 1])], lut[Int(p[3 * i + 2])])
                        // stains = l @ hed_from_rgb (row vector times matrix), clipped at 0.
                        var s = inv[0] * l.x + inv[1] * l.y + inv[2] * l.z
                        s = s.replacing(with: 0, where: s .< 0)
                        s = s * a + b
                        // rgb = exp(−(s·(−ln 1e-6)) @ rgb_from_hed), clipped to [0, 1], rounded to bytes.
                        let od = (fwd[0] * s.x + fwd[1] * s.y + fwd[2] * s.z) * (-Self.logAdjust)
                        dst[3 * i] = Self.roundByte.byte(od.x)
                        dst[3 * i + 1] = Self.roundByte.byte(od.y)
                        dst[3 * i + 2] = Self.roundByte.byte(od.z)
                    }
                }
            }
            return (RGBImage(width: image.width, height: image.height, pixels: out), true)
        case .macenko:
            var o = MacenkoOptions(variant: .staintools)
            o.minTissuePixels = 100
            guard let (m, conc) = try? Macenko.fitWithConcentrations(image, options: o) else { return (image, false) }
            let h = SIMD3(m.vectors[0][0], m.vectors[0][1], m.vectors[0][2]), e = SIMD3(m.vectors[1][0], m.vectors[1][1], m.vectors[1][2])
            image.pixels.withUnsafeBufferPointer { p in
                out.withUnsafeMutableBufferPointer { dst in
                    for i in 0..<n where !background(p, i) {
                        let ch = conc[2 * i] * alpha[0] + beta[0], ce = conc[2 * i + 1] * alpha[1] + beta[1]
                        let od = h * ch + e * ce
                        dst[3 * i] = Self.truncByte.byte(od.x)
                        dst[3 * i + 1] = Self.truncByte.byte(od.y)
                        dst[3 * i + 2] = Self.truncByte.byte(od.z)
                    }
                }
            }
            return (RGBImage(width: image.width, height: image.height, pixels: out), true)
        }
    }

    /// A double in [0, 1) from the top 53 bits.
    @inline(__always) static func uniform<G: RandomNumberGenerator>(_ rng: inout G) -> Double {
        Double(rng.next() >> 11) * 0x1p-53
    }
}
