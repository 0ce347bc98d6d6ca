import Foundation
import TesseraCore

/// Macenko et al. 2009 ("A method for normalizing histology slides for quantitative analysis",
/// ISBI): stain vectors from the extreme angles of optical-density vectors in the plane of their two
/// main principal directions.
///
/// Two deliberate variants:
/// - `.torchstain` (default; torchstain's numpy backend and the paper's reference code): Io = 240,
///   OD = −ln((I+1)/Io), tissue = pixels with OD ≥ β on every channel, eigenvectors of the sample
///   covariance (LAPACK dsyevd), angle percentiles α and 100−α with linear interpolation, H = the
///   vector with the larger red OD, least-squares concentrations over all pixels, 99th-percentile
///   maximum concentrations; output Io·exp(−HE_ref·C), clipped to 255 and truncated to uint8.
/// - `.staintools` (staintools / TIAToolbox): Io = 255, OD = max(−ln(I/255), 1e-6) with zeros as 1,
///   tissue = OpenCV 8-bit LAB L < 0.8·255, eigenvector signs made positive, unit-norm stain
///   vectors, non-negative lasso concentrations (λ = 0.01).
public struct MacenkoOptions: Sendable, Equatable, Codable {
    public enum Variant: String, Sendable, Codable, CaseIterable { case torchstain, staintools }
    public var variant: Variant = .torchstain
    public var io = 240.0
    public var alpha = 1.0
    public var beta = 0.15
    /// A fit needs at least this many tissue pixels (else the tile is passed through unchanged).
    public var minTissuePixels = 100
    public init(variant: Variant = .torchstain) {
        self.variant = variant
        if variant == .staintools { io = 255 }
    }
}

/// A fitted Macenko target: the two stain OD vectors and their 99th-percentile concentrations.
public struct StainMatrix: Sendable, Equatable, Codable {
    /// [H, E], each an RGB optical-density vector.
    public var vectors: [[Double]]
    public var maxConcentrations: [Double]
    public init(vectors: [[Double]], maxConcentrations: [Double]) {
        self.vectors = vectors
        self.maxConcentrations = maxConcentrations
    }

    /// The paper code's (and torchstain's) reference: HERef and maxCRef.
    public static let macenkoReference = StainMatrix(
        vectors: [[0.5626, 0.7201, 0.4062], [0.2159, 0.8012, 0.5581]], maxConcentrations: [1.9705, 1.0308])
}

/// Why a stain fit did not produce a usable result (the tile is then passed through unchanged).
public struct StainFitError: Error, CustomStringConvertible, Sendable {
    public var reason: String
    public var description: String { reason }
}

public enum Macenko {
    /// Fits stain vectors and maximum concentrations to an image (all of its pixels count for the
    /// concentrations; only tissue pixels for the vectors).
    public static func fit(_ image: RGBImage, options: MacenkoOptions = MacenkoOptions()) throws -> StainMatrix {
        let (matrix, _) = try fitWithConcentrations(image, options: options)
        return matrix
    }

    /// The fit plus the least-squares (or lasso) concentrations of every pixel (2 per pixel, H then E).
    static func fitWithConcentrations(_ image: RGBImage, options o: MacenkoOptions) throws -> (StainMatrix, [Double]) {
        let n = image.width * image.height
        guard n > 0 else { throw StainFitError(reason: "empty image") }
        let table = o.variant == .torchstain ? ODTable.plusOne(io: o.io) : ODTable.staintools()
        let tissue = try tissuePixels(image, options: o, table: table)
        let vectors = try stainVectors(image, tissue: tissue, table: table, options: o)
        var conc = concentrations(image, vectors: vectors, table: table, variant: o.variant)
        guard conc.allSatisfy(\.isFinite) else { throw StainFitError(reason: "the stain vectors are degenerate (a flat colour?)") }
        // 99th percentiles of each stain's concentration.
        var h = [Double](repeating: 0, count: n), e = [Double](repeating: 0, count: n)
        for i in 0..<n { h[i] = conc[2 * i]; e[i] = conc[2 * i + 1] }
        let maxC = [Percentile.linear(&h, 99), Percentile.linear(&e, 99)]
        guard maxC.allSatisfy({ $0.isFinite && $0 > 1e-9 }) else {
            conc.removeAll()
            throw StainFitError(reason: "a stain has no concentration (99th percentile \(maxC))")
        }
        return (StainMatrix(vectors: vectors, maxConcentrations: maxC), conc)
    }

    /// Indices of the pixels that count as stained.
    static func tissuePixels(_ image: RGBImage, options o: MacenkoOptions, table: ODTable) throws -> [Int32] {
        let n = image.width * image.height
        var out: [Int32] = []
        out.reserveCapacity(n)
        image.pixels.withUnsafeBufferPointer { p in
            switch o.variant {
            case .torchstain:
                // Keep pixels whose OD is ≥ β on all three channels: OD decreases with intensity,
                // so this is intensity ≤ a cutoff per channel.
                var cutoff = -1
                for v in 0..<256 where table.od[v] >= o.beta { cutoff = v }
                for i in 0..<n where Int(p[3 * i]) <= cutoff && Int(p[3 * i + 1]) <= cutoff && Int(p[3 * i + 2]) <= cutoff {
                    out.append(Int32(i))
                }
            case .staintools:
                let lab = OpenCVLab8.shared
                for i in 0..<n where Double(lab.lightness(p[3 * i], p[3 * i + 1], p[3 * i + 2])) / 255 < 0.8 {
                    out.append(Int32(i))
                }
            }
        }
        guard out.count >= max(2, o.minTissuePixels) else {
            throw StainFitError(reason: "only \(out.count) stained pixels (need \(max(2, o.minTissuePixels)))")
        }
        return out
    }

    static func stainVectors(_ image: RGBImage, tissue: [Int32], table: ODTable, options o: MacenkoOptions) throws -> [[Double]] {
        let od = table.od
        let m = tissue.count
        // Sample covariance (ddof = 1), two passes as numpy does (mean first, then centred products).
        var mean = SIMD3<Double>(0, 0, 0)
        image.pixels.withUnsafeBufferPointer { p in
            for i in tissue { let j = 3 * Int(i); mean += SIMD3(od[Int(p[j])], od[Int(p[j + 1])], od[Int(p[j + 2])]) }
        }
        mean /= Double(m)
        var c00 = 0.0, c01 = 0.0, c02 = 0.0, c11 = 0.0, c12 = 0.0, c22 = 0.0
        image.pixels.withUnsafeBufferPointer { p in
            for i in tissue {
                let j = 3 * Int(i)
                let d = SIMD3(od[Int(p[j])], od[Int(p[j + 1])], od[Int(p[j + 2])]) - mean
                c00 += d.x * d.x; c01 += d.x * d.y; c02 += d.x * d.z
                c11 += d.y * d.y; c12 += d.y * d.z; c22 += d.z * d.z
            }
        }
        let f = 1 / Double(m - 1)
        let cov = [c00, c01, c02, c01, c11, c12, c02, c12, c22].map { $0 * f }
        guard let (_, v) = LinearAlgebra.symmetricEigen(cov, n: 3) else {
            throw StainFitError(reason: "eigen-decomposition failed")
        }
        // Columns 1 and 2: the middle and the largest principal directions.
        var e1 = SIMD3(v[1], v[4], v[7]), e2 = SIMD3(v[2], v[5], v[8])
        if o.variant == .staintools {
            // staintools orders them (largest, middle) and makes the first entries positive.
            let largest = e2, middle = e1
            e1 = largest.x < 0 ? -largest : largest
            e2 = middle.x < 0 ? -middle : middle
        }
        var phi = [Double](repeating: 0, count: m)
        image.pixels.withUnsafeBufferPointer { p in
            for (k, i) in tissue.enumerated() {
                let j = 3 * Int(i)
                let x = SIMD3(od[Int(p[j])], od[Int(p[j + 1])], od[Int(p[j + 2])])
                phi[k] = atan2((x * e2).sum(), (x * e1).sum())
            }
        }
        guard phi.allSatisfy(\.isFinite) else { throw StainFitError(reason: "non-finite angles") }
        let minPhi = Percentile.linear(&phi, o.alpha)
        let maxPhi = Percentile.linear(&phi, 100 - o.alpha)
        var vMin = e1 * cos(minPhi) + e2 * sin(minPhi)
        var vMax = e1 * cos(maxPhi) + e2 * sin(maxPhi)
        if o.variant == .staintools {
            vMin /= (vMin * vMin).sum().squareRoot()
            vMax /= (vMax * vMax).sum().squareRoot()
        }
        let (h, e) = vMin.x > vMax.x ? (vMin, vMax) : (vMax, vMin)
        let out = [[h.x, h.y, h.z], [e.x, e.y, e.z]]
        guard out.joined().allSatisfy(\.isFinite) else { throw StainFitError(reason: "non-finite stain vectors") }
        return out
    }

    /// Per-pixel concentrations [h0, e0, h1, e1, …]: least squares (torchstain) or non-negative lasso
    /// with λ = 0.01 (staintools).
    static func concentrations(_ image: RGBImage, vectors: [[Double]], table: ODTable, variant: MacenkoOptions.Variant) -> [Double] {
        let n = image.width * image.height
        var out = [Double](repeating: 0, count: 2 * n)
        let od = table.od
        switch variant {
        case .torchstain:
            guard let p = pseudoInverse(vectors) else { return out.map { _ in .nan } }
            image.pixels.withUnsafeBufferPointer { px in
                for i in 0..<n {
                    let x = SIMD3(od[Int(px[3 * i])], od[Int(px[3 * i + 1])], od[Int(px[3 * i + 2])])
                    out[2 * i] = (p.0 * x).sum()
                    out[2 * i + 1] = (p.1 * x).sum()
                }
            }
        case .staintools:
            let lasso = NonNegativeLasso2(dictionary: vectors, lambda: 0.01)
            image.pixels.withUnsafeBufferPointer { px in
                for i in 0..<n {
                    let c = lasso.solve(SIMD3(od[Int(px[3 * i])], od[Int(px[3 * i + 1])], od[Int(px[3 * i + 2])]))
                    out[2 * i] = c.x
                    out[2 * i + 1] = c.y
                }
            }
        }
        return out
    }

    /// Rows of (AᵀA)⁻¹Aᵀ for the 3×2 matrix A whose columns are the two vectors.
    static func pseudoInverse(_ v: [[Double]]) -> (SIMD3<Double>, SIMD3<Double>)? {
        let a = SIMD3(v[0][0], v[0][1], v[0][2]), b = SIMD3(v[1][0], v[1][1], v[1][2])
        let aa = (a * a).sum(), ab = (a * b).sum(), bb = (b * b).sum()
        let det = aa * bb - ab * ab
        guard det.isFinite && abs(det) > 1e-12 else { return nil }
        return ((a * bb - b * ab) / det, (b * aa - a * ab) / det)
    }

    /// Normalizes `image` to `target` (fits the image first). Throws `StainFitError` when the image
    /// cannot be fitted (too little stain); callers pass such tiles through unchanged.
    public static func normalize(_ image: RGBImage, to target: StainMatrix, options o: MacenkoOptions = MacenkoOptions()) throws -> RGBImage {
        let (source, conc) = try fitWithConcentrations(image, options: o)
        return reconstruct(image, source: source, concentrations: conc, target: target, io: o.io)
    }

    /// Io·exp(−target vectors · concentrations rescaled to the target's maxima), as bytes.
    static func reconstruct(_ image: RGBImage, source: StainMatrix, concentrations conc: [Double], target: StainMatrix, io: Double) -> RGBImage {
        let scale = (0..<2).map { source.maxConcentrations[$0] / target.maxConcentrations[$0] }
        let h = SIMD3(target.vectors[0][0], target.vectors[0][1], target.vectors[0][2])
        let e = SIMD3(target.vectors[1][0], target.vectors[1][1], target.vectors[1][2])
        let toByte = ODToByte(io: io)
        let n = image.width * image.height
        var out = [UInt8](repeating: 0, count: 3 * n)
        out.withUnsafeMutableBufferPointer { dst in
            for i in 0..<n {
                let x = h * (conc[2 * i] / scale[0]) + e * (conc[2 * i + 1] / scale[1])
                guard x.x.isFinite && x.y.isFinite && x.z.isFinite else { continue }
                dst[3 * i] = toByte.byte(x.x)
                dst[3 * i + 1] = toByte.byte(x.y)
                dst[3 * i + 2] = toByte.byte(x.z)
            }
        }
        return RGBImage(width: image.width, height: image.height, pixels: out)
    }
}

/// Exact non-negative lasso for two atoms: min ½‖x − Dᵀc‖² + λ(c₁ + c₂), c ≥ 0 (spams.lasso with
/// mode 2, pos = true). With two unknowns the active set is one of four; each has a closed form.
struct NonNegativeLasso2: Sendable {
    let d0: SIMD3<Double>, d1: SIMD3<Double>
    let g00: Double, g01: Double, g11: Double, det: Double
    let lambda: Double

    init(dictionary v: [[Double]], lambda: Double) {
        d0 = SIMD3(v[0][0], v[0][1], v[0][2])
        d1 = SIMD3(v[1][0], v[1][1], v[1][2])
        g00 = (d0 * d0).sum(); g01 = (d0 * d1).sum(); g11 = (d1 * d1).sum()
        det = g00 * g11 - g01 * g01
        self.lambda = lambda
    }

    @inline(__always) func solve(_ x: SIMD3<Double>) -> SIMD2<Double> {
        let b0 = (d0 * x).sum() - lambda, b1 = (d1 * x).sum() - lambda
        // Both active: G c = b − λ.
        if det > 1e-15 {
            let c0 = (g11 * b0 - g01 * b1) / det
            let c1 = (g00 * b1 - g01 * b0) / det
            if c0 > 0 && c1 > 0 { return SIMD2(c0, c1) }
        }
        // One active: the better of the two single-atom solutions (or none).
        let s0 = g00 > 0 ? max(0, b0 / g00) : 0
        let s1 = g11 > 0 ? max(0, b1 / g11) : 0
        // Objective drop of a single atom solution c: −(b·c − ½ g c²) (lower is better).
        let f0 = -(b0 * s0 - 0.5 * g00 * s0 * s0)
        let f1 = -(b1 * s1 - 0.5 * g11 * s1 * s1)
        if s0 == 0 && s1 == 0 { return .zero }
        return f0 <= f1 ? SIMD2(s0, 0) : SIMD2(0, s1)
    }
}
