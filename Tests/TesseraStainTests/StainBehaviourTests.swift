import Foundation
import TesseraCore
import TesseraSlide
@testable import TesseraStain
import TesseraTestSupport
import XCTest

/// Robustness and determinism of the stain code on real H&E tiles (data/stain) and edge cases.
final class StainBehaviourTests: XCTestCase {
    static func image(_ name: String) throws -> RGBImage { try ImageDecoder.readRGB(path: Fixtures.root + "/data/stain/" + name) }

    func testPercentileMatchesSortedLinearInterpolation() {
        var rng = SplitMix64(seed: 9)
        for n in [1, 2, 3, 17, 1000, 4097] {
            let values = (0..<n).map { _ in Double(rng.next() % 1000) / 7 }   // with ties
            let sorted = values.sorted()
            for q in [0.0, 1, 25, 50, 99, 100] {
                let idx = q / 100 * Double(n - 1)
                let lo = Int(idx.rounded(.down)), hi = min(n - 1, lo + 1)
                let want = sorted[lo] + (sorted[hi] - sorted[lo]) * (idx - Double(lo))
                var copy = values
                XCTAssertEqual(Percentile.linear(&copy, q), want, accuracy: 1e-9, "n \(n) q \(q)")
                // The streaming histogram selection gives the same value, and indices holding the order statistics.
                let (v, iLo, iHi) = OrderStatistics.percentile(count: n, q) { values[$0] }
                XCTAssertEqual(v, want, accuracy: 1e-9, "histogram select n \(n) q \(q)")
                XCTAssertEqual(values[iLo], sorted[Int(idx.rounded(.down))])
                XCTAssertEqual(values[iHi], sorted[min(n - 1, Int(idx.rounded(.down)) + 1)])
                // With known bounds and several percentiles at once.
                let many = OrderStatistics.percentiles(count: n, [q, 100 - q], lower: sorted.first! - 1, upper: sorted.last! + 1) { values[$0] }
                XCTAssertEqual(many[0].value, want, accuracy: 1e-9)
                var again = values
                XCTAssertEqual(many[1].value, Percentile.linear(&again, 100 - q), accuracy: 1e-9)
            }
        }
    }

    func testPseudoAngleOrdersLikeAtan2() {
        var rng = SplitMix64(seed: 4)
        var pairs: [(Double, Double)] = [(0, 1), (1, 0), (0, -1), (-1, 0.0), (-1, 1e-300), (-1, -1e-300)]
        for _ in 0..<5000 { pairs.append((Double(rng.next() % 2001) / 1000 - 1, Double(rng.next() % 2001) / 1000 - 1)) }
        let byAngle = pairs.sorted { atan2($0.1, $0.0) < atan2($1.1, $1.0) }
        for (a, b) in zip(byAngle, byAngle.dropFirst()) where atan2(a.1, a.0) < atan2(b.1, b.0) {
            XCTAssertLessThanOrEqual(Macenko.pseudoAngle(a.1, a.0), Macenko.pseudoAngle(b.1, b.0), "\(a) \(b)")
        }
    }

    func testODToByteEqualsClippedTruncatedExp() {
        for io in [240.0, 255.0] {
            let table = ODToByte(io: io), rounding = ODToByte(io: io, rounding: true)
            var rng = SplitMix64(seed: 1)
            for _ in 0..<200_000 {
                let x = -0.2 + 6.5 * Double(rng.next() >> 11) * 0x1p-53
                let v = io * exp(-x)
                XCTAssertEqual(table.byte(x), UInt8(min(255, v).rounded(.towardZero)), "x \(x)")
                XCTAssertEqual(rounding.byte(x), UInt8(min(255, v + 0.5).rounded(.towardZero)), "x \(x)")
            }
            XCTAssertEqual(table.byte(.nan), 0)
            XCTAssertEqual(table.byte(-.infinity), 255)
            XCTAssertEqual(table.byte(.infinity), 0)
        }
    }

    func testBackgroundAndFlatTilesPassThroughUnchanged() throws {
        let target = try StainNormalizer.fit(try Self.image("input_target.png"), method: .macenko)
        let flat = RGBImage(width: 64, height: 64, pixels: [UInt8](repeating: 200, count: 64 * 64 * 3))
        let black = RGBImage(width: 64, height: 64, pixels: [UInt8](repeating: 0, count: 64 * 64 * 3))
        for input in [try Self.image("input_near_white.png"), try Self.image("input_BACK-AAQSHYMA.png"), flat, black] {
            for method in [StainMethod.macenko, .macenkoStaintools, .vahadane] {
                var t = target
                t.method = method
                let (out, changed) = try StainNormalizer(target: t).normalize(input)
                if !changed { XCTAssertEqual(out, input, "\(method): an unfitted tile must come back as it was") }
                // Whatever happens, no garbage: a background tile stays a background tile.
                let mean = out.pixels.reduce(0) { $0 + Int($1) } / out.pixels.count
                let inMean = input.pixels.reduce(0) { $0 + Int($1) } / input.pixels.count
                XCTAssertLessThan(abs(mean - inMean), 60, "\(method) turned a background tile into something else")
            }
        }
        // Flat images have no LAB spread: Reinhard refuses to fit them and passes them through.
        let reinhard = try StainNormalizer.fit(try Self.image("input_target.png"), method: .reinhard)
        let (out, changed) = try StainNormalizer(target: reinhard).normalize(flat)
        XCTAssertFalse(changed)
        XCTAssertEqual(out, flat)
        XCTAssertThrowsError(try StainNormalizer.fit(flat, method: .macenko)) { XCTAssertTrue("\($0)".contains("cannot fit macenko"), "\($0)") }
        XCTAssertThrowsError(try StainNormalizer.fit(try Self.image("input_near_white.png"), method: .macenko)) { XCTAssertTrue("\($0)".contains("stained pixels"), "\($0)") }
    }

    func testHEDJitterIsDeterministicPerSeedAndKeepsBackground() throws {
        let tile = try Self.image("input_TUM-AACHEHDV.png")
        let jitter = StainJitter(space: .hed)
        var a = SplitMix64(seed: 5), b = SplitMix64(seed: 5), c = SplitMix64(seed: 6)
        let x = jitter.apply(tile, rng: &a).image, y = jitter.apply(tile, rng: &b).image, z = jitter.apply(tile, rng: &c).image
        XCTAssertEqual(x, y)
        XCTAssertNotEqual(x, z)
        XCTAssertNotEqual(x, tile)
        // Against scikit-image 0.24 (hed2rgb(rgb2hed(I)·α + β), rounded): the round trip itself
        // (α = 1, β = 0; not the identity, the deconvolution clips negative stain amounts) and a jitter.
        var all = StainJitter(space: .hed)
        all.augmentBackground = true
        for (name, alpha, beta) in [("identity", [1.0, 1, 1], [0.0, 0, 0]), ("jitter", [1.05, 0.93, 1.02], [0.01, -0.015, 0.005])] {
            let ours = all.apply(tile, alpha: alpha, beta: beta).image
            let ref = try Self.image("skimage_hed_\(name)_TUM-AACHEHDV.png")
            XCTAssertLessThanOrEqual(zip(ours.pixels, ref.pixels).map { abs(Int($0) - Int($1)) }.max()!, 1, name)
        }
        // Background pixels are untouched unless asked for.
        let background = try Self.image("input_near_white.png")
        var s = SplitMix64(seed: 3)
        XCTAssertEqual(jitter.apply(background, rng: &s).image, background)
        var strong = StainJitter(space: .hed)
        strong.augmentBackground = true
        strong.sigma2 = 0.2
        var t = SplitMix64(seed: 3)
        XCTAssertNotEqual(strong.apply(background, rng: &t).image, background)
    }

    func testMacenkoJitterChangesTissueAndPassesBackground() throws {
        let jitter = StainJitter(space: .macenko)
        var rng = SplitMix64(seed: 11)
        let tile = try Self.image("input_TUM-AACHEHDV.png")
        let (out, changed) = jitter.apply(tile, rng: &rng)
        XCTAssertTrue(changed)
        XCTAssertNotEqual(out, tile)
        var rng2 = SplitMix64(seed: 11)
        let back = try Self.image("input_near_white.png")
        let (b, bChanged) = jitter.apply(back, rng: &rng2)
        XCTAssertFalse(bChanged)
        XCTAssertEqual(b, back)
    }

    func testStainFilesRoundTripAndBadFilesAreClearErrors() throws {
        let dir = Fixtures.tempDir(self)
        let target = try StainNormalizer.fit(try Self.image("input_target.png"), method: .vahadane, source: "input_target.png")
        try target.save(path: dir + "/v.json")
        XCTAssertEqual(try StainTarget.load(path: dir + "/v.json"), target)
        try #"{"format": 1, "method": "reinhard", "lab_mean": [1, 2]}"#.write(toFile: dir + "/bad.json", atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try StainTarget.load(path: dir + "/bad.json")) { e in
            XCTAssertTrue("\(e)".contains("bad.json") && "\(e)".contains("lab_mean"), "\(e)")
        }
        try #"{"format": 1, "method": "macenko-v2"}"#.write(toFile: dir + "/m.json", atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try StainTarget.load(path: dir + "/m.json")) { XCTAssertTrue("\($0)".contains("not a valid stain file"), "\($0)") }
    }
}
