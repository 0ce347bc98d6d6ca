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
    public static func fit(_ image: RGBImage, options o: MacenkoOptions = MacenkoOptions()) throws -> StainMatrix {
        if o.variant == .torchstain { return try MacenkoFast.fit(image, options: o) }
        return try referenceFit(image, options: o)
    }

    /// The straightforward fit (index list of tissue pixels, two-pass covariance, histogram
    /// selections): the staintools variant, and the reference the fast torchstain path is tested against.
    static func referenceFit(_ image: RGBImage, options o: MacenkoOptions = MacenkoOptions()) throws -> StainMatrix {
        let n = image.width * image.height
        guard n > 0 else { throw StainFitError(reason: "empty image") }
        let table = o.variant == .torchstain ? ODTable.plusOne(io: o.io) : ODTable.staintools()
        let tissue = try tissuePixels(image, options: o, table: table)
        let vectors = try stainVectors(image, tissue: tissue, table: table, options: o)
        let maxC = try maxConcentrations(image, vectors: vectors, table: table, variant: o.variant)
        return StainMatrix(vectors: vectors, maxConcentrations: maxC)
    }

    /// 99th percentiles of each stain's concentration over all pixels.
    static func maxConcentrations(_ image: RGBImage, vectors: [[Double]], table: ODTable, variant: MacenkoOptions.Variant) throws -> [Double] {
        let n = image.width * image.height
        var maxC: [Double] = []
        switch variant {
        case .torchstain:
            // Least-squares concentrations are linear in OD: per-channel tables, computed on the fly.
            guard let p = pseudoInverse(vectors) else { throw StainFitError(reason: "the stain vectors are degenerate (a flat colour?)") }
            for row in [p.0, p.1] {
                var t = [Double](repeating: 0, count: 768)
                for v in 0..<256 { t[v] = row.x * table.od[v]; t[256 + v] = row.y * table.od[v]; t[512 + v] = row.z * table.od[v] }
                // Every value is a sum of one entry per channel table: that bounds the range.
                let lower = (0..<3).map { c in t[(256 * c)..<(256 * c + 256)].min()! }.reduce(0, +)
                let upper = (0..<3).map { c in t[(256 * c)..<(256 * c + 256)].max()! }.reduce(0, +)
                let value = t.withUnsafeBufferPointer { t in
                    image.pixels.withUnsafeBufferPointer { px in
                        OrderStatistics.percentiles(count: n, [99], lower: lower, upper: upper) { i in
                            t[Int(px[3 * i])] + t[256 + Int(px[3 * i + 1])] + t[512 + Int(px[3 * i + 2])]
                        }[0].value
                    }
                }
                maxC.append(value)
            }
        case .staintools:
            let conc = concentrations(image, vectors: vectors, table: table, variant: variant)
            guard conc.allSatisfy(\.isFinite) else { throw StainFitError(reason: "the stain vectors are degenerate (a flat colour?)") }
            for s in 0..<2 {
                maxC.append(conc.withUnsafeBufferPointer { c in OrderStatistics.percentile(count: n, 99) { c[2 * $0 + s] }.value })
            }
        }
        guard maxC.allSatisfy({ $0.isFinite && $0 > 1e-9 }) else {
            throw StainFitError(reason: "a stain has no concentration (99th percentile \(maxC))")
        }
        return maxC
    }

    /// The fit plus the per-pixel concentrations (2 per pixel, H then E).
    static func fitWithConcentrations(_ image: RGBImage, options o: MacenkoOptions) throws -> (StainMatrix, [Double]) {
        let m = try fit(image, options: o)
        let table = o.variant == .torchstain ? ODTable.plusOne(io: o.io) : ODTable.staintools()
        return (m, concentrations(image, vectors: m.vectors, table: table, variant: o.variant))
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
        // Angles only matter through their order until the two percentiles are found: select on a
        // pseudo-angle (monotone in atan2) and take atan2 of the chosen pixels alone.
        var t0 = [Double](repeating: 0, count: 768), t1 = [Double](repeating: 0, count: 768)
        for v in 0..<256 {
            t0[v] = e1.x * od[v]; t0[256 + v] = e1.y * od[v]; t0[512 + v] = e1.z * od[v]
            t1[v] = e2.x * od[v]; t1[256 + v] = e2.y * od[v]; t1[512 + v] = e2.z * od[v]
        }
        func angles(_ qs: [Double]) -> [Double] {
            tissue.withUnsafeBufferPointer { ts in
                image.pixels.withUnsafeBufferPointer { p in
                    @inline(__always) func xy(_ k: Int) -> (Double, Double) {
                        let j = 3 * Int(ts[k])
                        let r = Int(p[j]), g = 256 + Int(p[j + 1]), b = 512 + Int(p[j + 2])
                        return (t0[r] + t0[g] + t0[b], t1[r] + t1[g] + t1[b])
                    }
                    let stats = OrderStatistics.percentiles(count: m, qs, lower: -2, upper: 2) { k in
                        let (x, y) = xy(k)
                        return pseudoAngle(y, x)
                    }
                    // Interpolate between the true angles of the two order statistics, as numpy does.
                    return zip(qs, stats).map { q, s in
                        let index = (q / 100) * Double(m - 1)
                        let a = xy(s.lo), b = xy(s.hi)
                        return Percentile.lerp(atan2(a.1, a.0), atan2(b.1, b.0), index - index.rounded(.down))
                    }
                }
            }
        }
        let phis = angles([o.alpha, 100 - o.alpha])
        let minPhi = phis[0], maxPhi = phis[1]
        guard minPhi.isFinite && maxPhi.isFinite else { throw StainFitError(reason: "non-finite angles") }
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

    /// Increases with atan2(y, x) over (−π, π], without trigonometry.
    @inline(__always) static func pseudoAngle(_ y: Double, _ x: Double) -> Double {
        let d = abs(x) + abs(y)
        guard d > 0 else { return 0 }
        let p = x / d
        return y < 0 ? p - 1 : 1 - p
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
        let source = try fit(image, options: o)
        switch o.variant {
        case .torchstain: return FixedTransform.leastSquares(image, source: source, target: target, od: .cachedPlusOne(io: o.io), io: o.io)
        case .staintools: return FixedTransform.lasso(image, source: source, target: target)
        }
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
