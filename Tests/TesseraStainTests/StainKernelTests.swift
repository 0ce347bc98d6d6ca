import Foundation
import TesseraCore
import TesseraSlide
@testable import TesseraStain
import TesseraTestSupport
import XCTest

/// The fast kernels against the straightforward reference paths they replace, on the fixture images
/// and on 256² tiles cut from them (the benchmark's tiles), plus edge cases of each shortcut.
final class StainKernelTests: XCTestCase {
    /// CIELAB's cube root (exponent guess + Halley steps) stays within 8 ulp (≈ 2e-15) of libm's cbrt over the
    /// range it serves (t > 0.008856 up to beyond white), including powers of two and the range ends.
    func testCIELabCubeRootMatchesLibm() {
        var rng = SplitMix64(seed: 31)
        var xs: [Double] = [0.008856, 0.0088561, 1, 2, 0.5, 0.25, 1.08883, 0.95047, 8, 27, 1e-3]
        for _ in 0..<200_000 { xs.append(0.008 + Double(rng.next() % 1_000_000_007) / 1_000_000_007 * 1.2) }
        var worst = 0.0
        for chunk in stride(from: 0, to: xs.count - 3, by: 4) {
            let r = CIELab.cubeRoot(SIMD4(xs[chunk], xs[chunk + 1], xs[chunk + 2], xs[chunk + 3]))
            for k in 0..<4 {
                let exact = cbrt(xs[chunk + k])
                worst = max(worst, abs(r[k] - exact) / exact.ulp)
            }
        }
        XCTAssertLessThanOrEqual(worst, 8, "worst error \(worst) ulp")
    }

    /// The sRGB byte by threshold search equals the gamma-and-truncate formula everywhere: at random
    /// linear values, at every threshold and just below it, and at the odd ones (NaN, ±∞, < 0, > 1).
    func testCIELabGammaByteSearchEqualsTheFormula() {
        var values: [Double] = [.nan, .infinity, -.infinity, -1, 0, -0.0, 1, 1.5, 0.0031308, 0.0031307, 1e-300]
        for t in CIELab.gammaThresholds { values += [t, t.nextDown, t.nextUp] }
        var rng = SplitMix64(seed: 8)
        for _ in 0..<500_000 { values.append(-0.05 + Double(rng.next() % 1_000_000_007) / 1_000_000_007 * 1.1) }
        for i in 0...CIELab.gammaBins { values.append(Double(i) / Double(CIELab.gammaBins)) }
        CIELab.gammaThresholds.withUnsafeBufferPointer { t in
            CIELab.gammaBinStart.withUnsafeBufferPointer { bins in
                for c in values where CIELab.gammaByte(c, t, bins) != CIELab.referenceGammaByte(c) {
                    XCTFail("c = \(c): lookup \(CIELab.gammaByte(c, t, bins)), formula \(CIELab.referenceGammaByte(c))")
                    return
                }
            }
        }
        // At most one threshold per bin, which the lookup relies on.
        for i in 0..<CIELab.gammaBins {
            let lo = Double(i) / Double(CIELab.gammaBins), hi = Double(i + 1) / Double(CIELab.gammaBins)
            XCTAssertLessThanOrEqual(CIELab.gammaThresholds.filter { $0 > lo && $0 < hi }.count, 1, "bin \(i)")
        }
        XCTAssertEqual(CIELab.gammaThresholds.count, 255)
        XCTAssertEqual(CIELab.referenceGammaByte(1), 254, "white rounds just below 1 in the formula")
        XCTAssertEqual(CIELab.referenceGammaByte(1.0000001), 255)
        XCTAssertEqual(CIELab.gammaThresholds, CIELab.gammaThresholds.sorted())
    }

    static func image(_ name: String) throws -> RGBImage { try ImageDecoder.readRGB(path: Fixtures.root + "/data/stain/" + name) }

    static let names = ["source", "target", "pen", "near_white", "BACK-AAQSHYMA", "TUM-AACHEHDV", "NORM-AAAWMSFI", "LYM-AATTSRNN"]

    /// Every fixture image, and every 256² tile of the two large ones.
    static func inputs() throws -> [(String, RGBImage)] {
        var out: [(String, RGBImage)] = []
        for name in names {
            let img = try image("input_\(name).png")
            out.append((name, img))
            for y in stride(from: 0, through: img.height - 256, by: 256) {
                for x in stride(from: 0, through: img.width - 256, by: 256) {
                    out.append(("\(name)@\(x),\(y)", img.crop(x: x, y: y, width: 256, height: 256)))
                }
            }
        }
        return out
    }

    func testFastMacenkoFitEqualsReferenceFit() throws {
        var fitted = 0
        for (name, img) in try Self.inputs() {
            let ref = Result { try Macenko.referenceFit(img) }
            let fast = Result { try MacenkoFast.fit(img, options: MacenkoOptions()) }
            switch (ref, fast) {
            case (.success(let r), .success(let f)):
                fitted += 1
                for k in 0..<2 {
                    for c in 0..<3 { XCTAssertEqual(f.vectors[k][c], r.vectors[k][c], accuracy: 1e-9, "\(name) stain \(k) channel \(c)") }
                    XCTAssertEqual(f.maxConcentrations[k], r.maxConcentrations[k], accuracy: 1e-9, "\(name) maxC \(k)")
                }
            case (.failure, .failure):
                break
            default:
                XCTFail("\(name): reference \(ref), fast \(fast)")
            }
        }
        XCTAssertGreaterThan(fitted, 8)
    }

    func testTailPercentileIsExactIncludingFallbacks() {
        var rng = SplitMix64(seed: 21)
        for n in [1, 2, 5, 100, 4096, 5000, 65536] {
            for ties in [false, true] {
                let values: [Double] = (0..<n).map { _ in
                    ties ? Double(rng.next() % 7) : Double(rng.next() >> 11) * 0x1p-53 - 0.3
                }
                let sorted = values.sorted()
                for q in [0.0, 1, 50, 99, 100] {
                    let index = q / 100 * Double(n - 1)
                    let lo = Int(index.rounded(.down)), hi = min(n - 1, lo + 1)
                    let want = Percentile.lerp(sorted[lo], sorted[hi], index - Double(lo))
                    // With a sampled threshold, a hopeless one (fallback: nil) and none at all.
                    for mode in 0..<3 {
                        var tail = TailPercentile(count: n, q: q)
                        if mode == 0 {
                            let size = min(n, 1024), stride = max(1, n / size)
                            var sample = (0..<size).map { values[($0 * stride + stride / 2) % n] }
                            sample.withUnsafeMutableBufferPointer { tail.setThreshold(sample: $0) }
                        } else if mode == 1 {
                            tail.threshold = tail.upper ? sorted[n - 1] + 1 : sorted[0] - 1
                        }
                        var collected = values.filter { tail.upper ? $0 >= tail.threshold : $0 <= tail.threshold }
                        let r = collected.withUnsafeMutableBufferPointer { tail.finish($0) }
                        if mode == 1 { XCTAssertNil(r); continue }
                        XCTAssertEqual(r?.value, want, "n \(n) q \(q) ties \(ties) mode \(mode)")
                    }
                }
            }
        }
    }

    func testProductTransformMatchesExactPath() throws {
        let target = StainMatrix.macenkoReference
        var compared = 0, differing = 0
        for (name, img) in try Self.inputs() {
            guard let source = try? Macenko.fit(img),
                  let m = FixedTransform.leastSquaresMap(source: source, target: target) else { continue }
            let exact = FixedTransform.leastSquaresExact(img, map: m, od: .plusOne240, io: 240)
            guard let fast = FixedTransform.leastSquaresProduct(img, map: m, od: .plusOne240, io: 240) else {
                XCTFail("\(name): no product path"); continue
            }
            for (a, b) in zip(exact.pixels, fast.pixels) {
                XCTAssertLessThanOrEqual(abs(Int(a) - Int(b)), 1, name)
                if a != b { differing += 1 }
            }
            compared += img.pixels.count
        }
        // Float rounding only shows where the exact value is within ~1e-4 of an integer.
        XCTAssertLessThan(Double(differing), 1e-3 * Double(compared), "\(differing) of \(compared) bytes differ")
        // A degenerate map (huge exponents) goes to the exact path, without NaN.
        let huge = [400.0, -300, 0, 0, 1, 0, 0, 0, 1]
        let img = try Self.image("input_pen.png")
        XCTAssertNil(FixedTransform.leastSquaresProduct(img, map: huge, od: .plusOne240, io: 240))
    }
}
