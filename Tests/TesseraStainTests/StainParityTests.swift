import Foundation
import TesseraCore
import TesseraSlide
@testable import TesseraStain
import TesseraTestSupport
import XCTest

/// Tessera against the reference implementations on real H&E images: fixtures made by
/// scripts/make-stain-fixtures (torchstain 1.4.1 numpy, staintools 2.1.2 + spams, OpenCV 4.11),
/// see data/stain/PROVENANCE.md.
final class StainParityTests: XCTestCase {
    static let dir = Fixtures.root + "/data/stain/"
    nonisolated(unsafe) static let expected: [String: Any] = {
        let data = try! Data(contentsOf: URL(fileURLWithPath: dir + "expected.json"))
        return try! JSONSerialization.jsonObject(with: data) as! [String: Any]
    }()

    static func image(_ name: String) throws -> RGBImage { try ImageDecoder.readRGB(path: dir + name) }
    static func section(_ name: String) -> [String: Any] { expected[name] as! [String: Any] }
    static let nct = ["TUM-AACHEHDV", "NORM-AAAWMSFI", "LYM-AATTSRNN"]

    /// Largest per-channel difference and the share of channel values that differ at all.
    func compare(_ a: RGBImage, _ b: RGBImage) -> (max: Int, differing: Double) {
        XCTAssertEqual(a.width, b.width)
        XCTAssertEqual(a.height, b.height)
        var worst = 0, n = 0
        for (x, y) in zip(a.pixels, b.pixels) {
            let d = abs(Int(x) - Int(y))
            worst = max(worst, d)
            if d > 0 { n += 1 }
        }
        return (worst, Double(n) / Double(max(1, a.pixels.count)))
    }

    func testMacenkoTorchstainFitMatchesStainMatrix() throws {
        let s = Self.section("torchstain_macenko")
        let fit = try Macenko.fit(try Self.image("input_target.png"))
        let he = s["fitted_HERef"] as! [[Double]]   // 3×2, columns H, E
        for stain in 0..<2 {
            for c in 0..<3 { XCTAssertEqual(fit.vectors[stain][c], he[c][stain], accuracy: 0.005, "stain \(stain) channel \(c)") }
        }
        let maxC = s["fitted_maxCRef"] as! [Double]
        XCTAssertEqual(fit.maxConcentrations[0], maxC[0], accuracy: 1e-4)
        XCTAssertEqual(fit.maxConcentrations[1], maxC[1], accuracy: 1e-4)
    }

    func testMacenkoTorchstainNormalizesWithinOneGreyLevel() throws {
        let s = Self.section("torchstain_macenko")
        let he = s["fitted_HERef"] as! [[Double]]
        let target = StainMatrix(vectors: [[he[0][0], he[1][0], he[2][0]], [he[0][1], he[1][1], he[2][1]]],
                                 maxConcentrations: s["fitted_maxCRef"] as! [Double])
        for name in ["source", "pen"] + Self.nct {
            let out = try Macenko.normalize(try Self.image("input_\(name).png"), to: target)
            let ref = try Self.image("torchstain_macenko_\(name).png")
            let (worst, share) = compare(out, ref)
            XCTAssertLessThanOrEqual(worst, 1, "\(name): max |Δ| \(worst), \(share * 100)% of values differ")
        }
    }

    func testReinhardCielabMatchesTorchstain() throws {
        let s = Self.section("torchstain_reinhard")
        let (mean, std) = try Reinhard.statistics(try Self.image("input_target.png"), space: .cielab)
        let tm = s["target_means"] as! [Double], ts = s["target_stds"] as! [Double]
        for c in 0..<3 {
            // torchstain's statistics are float32: agree to float32 precision.
            XCTAssertEqual(mean[c], tm[c], accuracy: 1e-3)
            XCTAssertEqual(std[c], ts[c], accuracy: 1e-3)
        }
        for name in ["source", "pen", "near_white", "BACK-AAQSHYMA"] + Self.nct {
            let out = try Reinhard.normalize(try Self.image("input_\(name).png"), mean: tm, std: ts, space: .cielab)
            let (worst, share) = compare(out, try Self.image("torchstain_reinhard_\(name).png"))
            XCTAssertLessThanOrEqual(worst, 1, "\(name): max |Δ| \(worst), \(share * 100)% of values differ")
        }
    }

    func testReinhardOpenCVLab8MatchesStaintools() throws {
        let s = Self.section("staintools_reinhard")
        let (mean, std) = try Reinhard.statistics(try Self.image("input_target.png"), space: .opencvLab8)
        let tm = s["target_means"] as! [Double], ts = s["target_stds"] as! [Double]
        for c in 0..<3 {
            XCTAssertEqual(mean[c], tm[c], accuracy: 1e-6)
            XCTAssertEqual(std[c], ts[c], accuracy: 1e-6)
        }
        for name in ["source", "pen", "near_white", "BACK-AAQSHYMA"] + Self.nct {
            let out = try Reinhard.normalize(try Self.image("input_\(name).png"), mean: tm, std: ts, space: .opencvLab8)
            let (worst, share) = compare(out, try Self.image("staintools_reinhard_\(name).png"))
            XCTAssertLessThanOrEqual(worst, 1, "\(name): max |Δ| \(worst), \(share * 100)% of values differ")
        }
    }

    func testMacenkoStaintoolsStainMatrix() throws {
        let s = Self.section("staintools_macenko")
        var o = MacenkoOptions(variant: .staintools)
        o.minTissuePixels = 100
        let fit = try Macenko.fit(try Self.image("input_target.png"), options: o)
        let ref = s["stain_matrix_target"] as! [[Double]]
        for k in 0..<2 { for c in 0..<3 { XCTAssertEqual(fit.vectors[k][c], ref[k][c], accuracy: 0.005, "stain \(k) channel \(c)") } }
        let maxC = s["maxC_target"] as! [Double]
        XCTAssertEqual(fit.maxConcentrations[0], maxC[0], accuracy: 0.01)
        XCTAssertEqual(fit.maxConcentrations[1], maxC[1], accuracy: 0.01)
    }

    func testMacenkoStaintoolsNormalizesWithinOneGreyLevel() throws {
        let s = Self.section("staintools_macenko")
        let target = StainMatrix(vectors: s["stain_matrix_target"] as! [[Double]], maxConcentrations: s["maxC_target"] as! [Double])
        let out = try Macenko.normalize(try Self.image("input_source.png"), to: target, options: MacenkoOptions(variant: .staintools))
        let (worst, share) = compare(out, try Self.image("staintools_macenko_source.png"))
        XCTAssertLessThanOrEqual(worst, 1, "max |Δ| \(worst), \(share * 100)% of values differ")
    }

    func testVahadaneStainMatrixWithinTolerance() throws {
        let s = Self.section("staintools_vahadane")
        let fit = try Vahadane.fit(try Self.image("input_target.png"))
        let ref = s["stain_matrix_target"] as! [[Double]]
        for k in 0..<2 { for c in 0..<3 { XCTAssertEqual(fit.vectors[k][c], ref[k][c], accuracy: 0.02, "stain \(k) channel \(c): \(fit.vectors) vs \(ref)") } }
    }
}
