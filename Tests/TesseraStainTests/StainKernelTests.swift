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

    func testSelectPutsEveryRankInPlace() {
        var rng = SplitMix64(seed: 5)
        let patterns: [(String, (Int) -> [Double])] = [
            ("random", { n in (0..<n).map { _ in Double(rng.next() >> 11) * 0x1p-53 } }),
            ("ties", { n in (0..<n).map { _ in Double(rng.next() % 3) } }),
            ("equal", { n in [Double](repeating: 0.25, count: n) }),
            ("sorted", { n in (0..<n).map(Double.init) }),
            ("reversed", { n in (0..<n).map { Double(n - $0) } }),
            ("zeros", { n in (0..<n).map { $0 % 2 == 0 ? 0.0 : -0.0 } }),
            ("organ pipe", { n in (0..<n).map { Double(min($0, n - $0)) } }),
        ]
        for n in [1, 2, 15, 16, 17, 40, 257] {
            for (name, make) in patterns {
                let values = make(n)
                let sorted = values.sorted()
                for k in Set([0, 1, n / 3, n / 2, n - 2, n - 1].filter { $0 >= 0 && $0 < n }) {
                    var a = values
                    a.withUnsafeMutableBufferPointer { Percentile.select($0, k) }
                    XCTAssertEqual(a[k], sorted[k], "\(name) n \(n) k \(k)")
                    XCTAssertTrue(a[..<k].allSatisfy { $0 <= a[k] } && a[(k + 1)...].allSatisfy { $0 >= a[k] }, "\(name) n \(n) k \(k)")
                    XCTAssertEqual(a.sorted(), sorted, "\(name) n \(n) k \(k): a permutation")
                }
            }
        }
    }

    #if arch(x86_64)
    func testTissueBlocksMatchPixelByPixelList() {
        var rng = SplitMix64(seed: 9)
        for n in [0, 1, 16, 17, 18, 33, 48, 49, 70, 1000] {
            for cut in [0, 100, 205, 254, 255] as [UInt8] {
                // Bytes near the cutoff on both sides, so every byte position decides some pixels.
                let px = (0..<(3 * n)).map { _ in UInt8(clamping: Int(cut) + Int(rng.next() % 9) - 5) }
                var want: [UInt32] = []
                for i in 0..<n where max(px[3 * i], px[3 * i + 1], px[3 * i + 2]) <= cut {
                    want.append(UInt32(px[3 * i]) | UInt32(px[3 * i + 1]) << 8 | UInt32(px[3 * i + 2]) << 16)
                }
                let blocks = n >= 17 ? (n - 1) / 16 * 16 : 0
                let wantBlocks = (0..<blocks).filter { max(px[3 * $0], px[3 * $0 + 1], px[3 * $0 + 2]) <= cut }.count
                let out = UnsafeMutablePointer<UInt32>.allocate(capacity: max(n, 1))
                defer { out.deallocate() }
                let m = px.withUnsafeBufferPointer { p in p.baseAddress.map { MacenkoFast.tissueBlocks($0, count: n, cut: cut, into: out) } ?? 0 }
                XCTAssertEqual(m, wantBlocks, "n \(n) cut \(cut)")
                XCTAssertEqual(Array(UnsafeBufferPointer(start: out, count: m)), Array(want.prefix(m)), "n \(n) cut \(cut)")
            }
        }
    }
    #endif

    func testAngleScreenKeepsEveryPixelTheExactTestsKeep() {
        var rng = SplitMix64(seed: 13)
        func uniform(_ a: Double, _ b: Double) -> Double { a + (b - a) * Double(rng.next() >> 11) * 0x1p-53 }
        var kept = 0, screenedOut = 0
        for _ in 0..<200 {
            let lt = uniform(-2, 1), ht = uniform(lt, 2)
            let screen = MacenkoFast.AngleScreen(low: lt, high: ht)
            for _ in 0..<500 {
                // Points whose angle lies at a threshold (to the last bits), and anywhere.
                var q = SIMD2(uniform(-3, 3), uniform(-3, 3))
                if rng.next() % 2 == 0 {
                    let a = rng.next() % 2 == 0 ? lt : ht, r = uniform(1e-6, 3)
                    // pseudoAngle a: y < 0 for a < 0 (x/d = a + 1), else x/d = 1 − a.
                    let p = a < 0 ? a + 1 : 1 - a
                    q = SIMD2(p * r, (a < 0 ? -1 : 1) * (1 - abs(p)) * r)
                    for _ in 0..<(rng.next() % 3) { q.x = rng.next() % 2 == 0 ? q.x.nextUp : q.x.nextDown }
                }
                if rng.next() % 50 == 0 { q = .zero }
                let other = SIMD2(uniform(-3, 3), uniform(-3, 3))
                let a = MacenkoFast.pseudoAngles(q, other)
                if a.x <= lt || a.x >= ht || a.y <= lt || a.y >= ht {
                    kept += 1
                    XCTAssertTrue(screen.mayKeep(q, other), "q \(q) lt \(lt) ht \(ht)")
                } else if !screen.mayKeep(q, other) {
                    screenedOut += 1
                }
                XCTAssertEqual(a.x, Macenko.pseudoAngle(q.y, q.x))
            }
        }
        XCTAssertGreaterThan(kept, 1000)
        #if arch(x86_64)
        XCTAssertGreaterThan(screenedOut, 1000, "the screen passes (nearly) everything")
        #endif
        XCTAssertTrue(MacenkoFast.AngleScreen(low: .infinity, high: -.infinity).mayKeep(SIMD2(1, 0), SIMD2(0, 1)))
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
