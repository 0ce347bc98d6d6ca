import Foundation
import TesseraCore

/// Vahadane et al. 2016 ("Structure-preserving color normalization and sparse stain separation for
/// histological images", IEEE TMI), in staintools' formulation: tissue = OpenCV 8-bit LAB
/// L < 0.8·255; OD = max(−ln(I/255), 1e-6); a 2-atom dictionary with non-negative atoms of norm ≤ 1
/// and non-negative sparse codes minimizing Σ ½‖x − Dα‖² + λ‖α‖₁ (λ = 0.1); H = the atom with the
/// larger red OD; unit-norm rows; concentrations by non-negative lasso (λ = 0.01); output
/// 255·exp(−C·D_target) truncated to uint8.
///
/// staintools runs spams' online dictionary learning for a time budget, so its result depends on the
/// machine. Here the same objective is minimized by batch alternation — exact codes for every pixel,
/// then block-coordinate dictionary updates (Mairal et al. 2010, JMLR 11, Algorithm 2) — for a fixed
/// number of iterations, from the Macenko angle extremes as the starting dictionary, on at most
/// `maxPixels` tissue pixels drawn with `seed`. Same input, same output, on any machine.
public struct VahadaneOptions: Sendable, Equatable, Codable {
    public var lambda = 0.1
    public var concentrationLambda = 0.01
    public var iterations = 60
    public var maxPixels = 200_000
    public var seed: UInt64 = 0
    public var minTissuePixels = 100
    public init() {}
}

public enum Vahadane {
    public static func fit(_ image: RGBImage, options: VahadaneOptions = VahadaneOptions()) throws -> StainMatrix {
        try fitWithConcentrations(image, options: options).0
    }

    static func fitWithConcentrations(_ image: RGBImage, options o: VahadaneOptions) throws -> (StainMatrix, [Double]) {
        let vectors = try stainVectors(image, options: o)
        let table = ODTable.staintools()
        let n = image.width * image.height
        let lasso = NonNegativeLasso2(dictionary: vectors, lambda: o.concentrationLambda)
        var conc = [Double](repeating: 0, count: 2 * n)
        var h = [Double](repeating: 0, count: n), e = [Double](repeating: 0, count: n)
        image.pixels.withUnsafeBufferPointer { px in
            for i in 0..<n {
                let c = lasso.solve(SIMD3(table.od[Int(px[3 * i])], table.od[Int(px[3 * i + 1])], table.od[Int(px[3 * i + 2])]))
                conc[2 * i] = c.x; conc[2 * i + 1] = c.y
                h[i] = c.x; e[i] = c.y
            }
        }
        let maxC = [Percentile.linear(&h, 99), Percentile.linear(&e, 99)]
        guard maxC.allSatisfy({ $0.isFinite && $0 > 1e-9 }) else {
            throw StainFitError(reason: "a stain has no concentration (99th percentile \(maxC))")
        }
        return (StainMatrix(vectors: vectors, maxConcentrations: maxC), conc)
    }

    /// The unit-norm [H, E] dictionary.
    public static func stainVectors(_ image: RGBImage, options o: VahadaneOptions) throws -> [[Double]] {
        var mo = MacenkoOptions(variant: .staintools)
        mo.minTissuePixels = o.minTissuePixels
        let table = ODTable.staintools()
        var tissue = try Macenko.tissuePixels(image, options: mo, table: table)
        if tissue.count > o.maxPixels {
            // A seeded partial Fisher–Yates: the first maxPixels of a random permutation.
            var rng = SplitMix64(seed: o.seed ^ 0x7661_6861_6461_6E65)
            for i in 0..<o.maxPixels {
                let j = i + Int(rng.next() % UInt64(tissue.count - i))
                tissue.swapAt(i, j)
            }
            tissue.removeLast(tissue.count - o.maxPixels)
            tissue.sort()
        }
        var x = [SIMD3<Double>]()
        x.reserveCapacity(tissue.count)
        image.pixels.withUnsafeBufferPointer { p in
            for i in tissue {
                let j = 3 * Int(i)
                x.append(SIMD3(table.od[Int(p[j])], table.od[Int(p[j + 1])], table.od[Int(p[j + 2])]))
            }
        }
        let start = try Macenko.stainVectors(image, tissue: tissue, table: table, options: mo)
        var d = [SIMD3(start[0][0], start[0][1], start[0][2]), SIMD3(start[1][0], start[1][1], start[1][2])]
        for k in 0..<2 { d[k] = project(d[k]) }
        for _ in 0..<o.iterations {
            // Codes for every pixel, then the sufficient statistics A = Σ ααᵀ and B = Σ x αᵀ.
            let lasso = NonNegativeLasso2(dictionary: d.map { [$0.x, $0.y, $0.z] }, lambda: o.lambda)
            var a00 = 0.0, a01 = 0.0, a11 = 0.0
            var b0 = SIMD3<Double>(0, 0, 0), b1 = SIMD3<Double>(0, 0, 0)
            for xi in x {
                let c = lasso.solve(xi)
                a00 += c.x * c.x; a01 += c.x * c.y; a11 += c.y * c.y
                b0 += xi * c.x; b1 += xi * c.y
            }
            // Block-coordinate descent on the atoms, a few sweeps.
            for _ in 0..<3 {
                if a00 > 1e-12 { d[0] = project(d[0] + (b0 - d[0] * a00 - d[1] * a01) / a00) }
                if a11 > 1e-12 { d[1] = project(d[1] + (b1 - d[0] * a01 - d[1] * a11) / a11) }
            }
        }
        if d[0].x < d[1].x { d.swapAt(0, 1) }
        let rows = d.map { v -> [Double] in
            let norm = (v * v).sum().squareRoot()
            return [v.x / norm, v.y / norm, v.z / norm]
        }
        guard rows.joined().allSatisfy(\.isFinite) else { throw StainFitError(reason: "dictionary learning collapsed an atom") }
        return rows
    }

    /// Onto {d ≥ 0, ‖d‖ ≤ 1}.
    static func project(_ v: SIMD3<Double>) -> SIMD3<Double> {
        let p = v.replacing(with: 0, where: v .< 0)
        let norm = (p * p).sum().squareRoot()
        return norm > 1 ? p / norm : p
    }

    public static func normalize(_ image: RGBImage, to target: StainMatrix, options o: VahadaneOptions = VahadaneOptions()) throws -> RGBImage {
        FixedTransform.lasso(image, source: try fit(image, options: o), target: target)
    }
}
