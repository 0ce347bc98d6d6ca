import Foundation
import TesseraCore
@testable import TesseraStain
import XCTest

/// OpenCV's 8-bit LAB conversions over every input, against the sha256 of cv2.cvtColor's output
/// (OpenCV 4.11, all 2²⁴ RGB triples r·65536 + g·256 + b, resp. all 2²⁴ Lab codes, as bytes L,a,b /
/// R,G,B; computed by scripts/make-stain-fixtures' verification step).
final class OpenCVLabTests: XCTestCase {
    func table(_ f: (UInt8, UInt8, UInt8) -> SIMD3<UInt8>) -> String {
        var out = [UInt8](repeating: 0, count: 3 << 24)
        out.withUnsafeMutableBufferPointer { p in
            for i in 0..<(1 << 24) {
                let v = f(UInt8(i >> 16), UInt8((i >> 8) & 255), UInt8(i & 255))
                p[3 * i] = v.x; p[3 * i + 1] = v.y; p[3 * i + 2] = v.z
            }
        }
        return SHA256.hexDigest(of: out)
    }

    func testRGBToLabIsBitExactWithOpenCV() {
        XCTAssertEqual(table(OpenCVLab8.shared.lab), "b3067516fa862bb008af4ffb4da5555722524a70776bf7ffd523a90f4331480c")
    }

    func testLabToRGBIsBitExactWithOpenCV() {
        XCTAssertEqual(table(OpenCVLab8.shared.rgb), "fe94a44a1fb178c1b5041a43095c4d99f4d37fb7b32258da356d8bd63bba9b0d")
    }

    /// The whole-buffer kernels the normalizers use give the same bytes as the per-pixel ones.
    func testBufferKernelsMatchOpenCV() {
        var every = [UInt8](repeating: 0, count: 3 << 24)
        for i in 0..<(1 << 24) { every[3 * i] = UInt8(i >> 16); every[3 * i + 1] = UInt8((i >> 8) & 255); every[3 * i + 2] = UInt8(i & 255) }
        var out = [UInt8](repeating: 0, count: 3 << 24)
        var st = OpenCVLab8.Statistics()
        every.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in OpenCVLab8.shared.labImage(src, into: dst, statistics: &st) }
        }
        XCTAssertEqual(SHA256.hexDigest(of: out), "b3067516fa862bb008af4ffb4da5555722524a70776bf7ffd523a90f4331480c")
        // The gathered statistics are those of the codes written.
        var counts = [Int](repeating: 0, count: 256)
        var sums = [0, 0, 0, 0]
        for i in 0..<(1 << 24) {
            counts[Int(out[3 * i])] += 1
            let a = Int(out[3 * i + 1]) - 128, b = Int(out[3 * i + 2]) - 128
            sums[0] += a; sums[1] += a * a; sums[2] += b; sums[3] += b * b
        }
        XCTAssertEqual(st.count, 1 << 24)
        XCTAssertEqual(st.lightnessCounts, counts)
        XCTAssertEqual([st.aSum, st.aSquares, st.bSum, st.bSquares], sums)
        let identity = (0..<768).map { UInt8($0 % 256) }
        every.withUnsafeBufferPointer { src in
            identity.withUnsafeBufferPointer { m in
                out.withUnsafeMutableBufferPointer { OpenCVLab8.shared.rgbImage(src, maps: m, into: $0) }
            }
        }
        XCTAssertEqual(SHA256.hexDigest(of: out), "fe94a44a1fb178c1b5041a43095c4d99f4d37fb7b32258da356d8bd63bba9b0d")
    }

    /// The statistics gathered inside the conversion loop (unrolled by four, 32-bit lane sums over
    /// blocks of 2¹⁵ pixels) equal those of the codes written, at lengths around those boundaries.
    func testFusedStatisticsAtEveryLength() {
        var rng = SystemRandomNumberGenerator()
        for n in [1, 2, 3, 4, 5, 7, 8, 9, 1000, 32766, 32767, 32768, 32769, 32770, 65535, 65536, 65537, 98307] {
            let src = (0..<(3 * n)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            var lab = [UInt8](repeating: 0, count: 3 * n), reference = lab
            var fused = OpenCVLab8.Statistics(), separate = OpenCVLab8.Statistics()
            src.withUnsafeBufferPointer { s in
                lab.withUnsafeMutableBufferPointer { OpenCVLab8.shared.labImage(s, into: $0, statistics: &fused) }
                reference.withUnsafeMutableBufferPointer { OpenCVLab8.shared.labImage(s, into: $0) }
            }
            XCTAssertEqual(lab, reference, "n = \(n)")
            for i in 0..<n {
                XCTAssertEqual(SIMD3(lab[3 * i], lab[3 * i + 1], lab[3 * i + 2]), OpenCVLab8.shared.lab(src[3 * i], src[3 * i + 1], src[3 * i + 2]))
            }
            reference.withUnsafeBufferPointer { OpenCVLab8.gather($0, into: &separate) }
            XCTAssertEqual(fused.count, n)
            XCTAssertEqual(fused.lightnessCounts, separate.lightnessCounts, "n = \(n)")
            XCTAssertEqual([fused.aSum, fused.aSquares, fused.bSum, fused.bSquares],
                           [separate.aSum, separate.aSquares, separate.bSum, separate.bSquares], "n = \(n)")
        }
    }
}
