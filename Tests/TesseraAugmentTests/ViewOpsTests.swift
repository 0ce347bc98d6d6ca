import Foundation
import TesseraCore
import TesseraSlide
@testable import TesseraAugment
import TesseraTestSupport
import XCTest

/// View operations on a real H&E tile (data/stain/input_TUM-AACHEHDV.png, 224² NCT-CRC-HE patch).
final class ViewOpsTests: XCTestCase {
    static func tile() throws -> RGBImage { try ImageDecoder.readRGB(path: Fixtures.root + "/data/stain/input_TUM-AACHEHDV.png") }

    func pixel(_ im: RGBImage, _ x: Int, _ y: Int) -> [UInt8] { Array(im.pixels[((y * im.width + x) * 3)..<((y * im.width + x) * 3 + 3)]) }

    func testFlipsAndRotationsArePixelPermutations() throws {
        let t = try Self.tile().crop(x: 0, y: 0, width: 200, height: 150)   // not square: catches w/h mix-ups
        let h = PixelOps.flipHorizontal(t), v = PixelOps.flipVertical(t), r = PixelOps.rotate90(t, times: 1)
        XCTAssertEqual(pixel(h, 0, 7), pixel(t, 199, 7))
        XCTAssertEqual(pixel(v, 5, 0), pixel(t, 5, 149))
        XCTAssertEqual(r.width, 150)
        XCTAssertEqual(r.height, 200)
        // numpy.rot90 (counter-clockwise): out[i][j] = in[j][W−1−i].
        XCTAssertEqual(pixel(r, 10, 20), pixel(t, 200 - 1 - 20, 10))
        XCTAssertEqual(PixelOps.rotate90(t, times: 4), t)
        XCTAssertEqual(PixelOps.rotate90(PixelOps.rotate90(t, times: 1), times: 3), t)
        XCTAssertEqual(PixelOps.flipHorizontal(h), t)
        XCTAssertEqual(PixelOps.rotate90(t, times: 2), PixelOps.flipVertical(PixelOps.flipHorizontal(t)))
        XCTAssertEqual(h.pixels.sorted(), t.pixels.sorted())
    }

    func testIdentityFactorsAndSolarize() throws {
        let t = try Self.tile()
        XCTAssertEqual(PixelOps.brightness(t, 1), t)
        XCTAssertEqual(PixelOps.contrast(t, 1), t)
        XCTAssertEqual(PixelOps.saturation(t, 1), t)
        let hue0 = PixelOps.hue(t, 0)
        XCTAssertLessThanOrEqual(zip(hue0.pixels, t.pixels).map { abs(Int($0) - Int($1)) }.max()!, 1, "hue 0 is the identity up to float rounding")
        XCTAssertEqual(PixelOps.brightness(t, 0).pixels.max(), 0)
        let g = PixelOps.saturation(t, 0)
        for i in stride(from: 0, to: g.pixels.count, by: 3) { XCTAssertTrue(g.pixels[i] == g.pixels[i + 1] && g.pixels[i] == g.pixels[i + 2]) }
        let s = PixelOps.solarize(t)
        for (a, b) in zip(s.pixels, t.pixels) { XCTAssertEqual(a, b >= 128 ? 255 - b : b) }
        XCTAssertEqual(PixelOps.gaussianBlur(t, sigma: 0), t)
        let blurred = PixelOps.gaussianBlur(t, sigma: 2)
        // Blur removes fine detail: neighbouring pixels become much more alike, the mean stays.
        func roughness(_ im: RGBImage) -> Double {
            var s = 0.0
            for i in 3..<im.pixels.count { s += abs(Double(im.pixels[i]) - Double(im.pixels[i - 3])) }
            return s / Double(im.pixels.count)
        }
        XCTAssertLessThan(roughness(blurred), roughness(t) * 0.5)
        let mean = { (im: RGBImage) in im.pixels.reduce(0.0) { $0 + Double($1) } / Double(im.pixels.count) }
        XCTAssertEqual(mean(blurred), mean(t), accuracy: 1)
    }

    func testResizeMatchesPillow() throws {
        // PIL's antialiased resize of the same crop, via the Python the tests already need.
        let dir = Fixtures.tempDir(self)
        let src = Fixtures.root + "/data/stain/input_TUM-AACHEHDV.png"
        let t = try Self.tile()
        for (box, size, method) in [((10, 20, 180, 150), 96, "bicubic"), ((0, 0, 224, 224), 224, "bicubic"), ((30, 5, 60, 80), 128, "bilinear"), ((3, 7, 200, 201), 50, "bilinear")] {
            let out = dir + "/pil.png"
            let script = """
            from PIL import Image
            im = Image.open('\(src)').convert('RGB')
            r = im.resize((\(size), \(size)), Image.\(method.uppercased()), box=(\(box.0), \(box.1), \(box.0 + box.2), \(box.1 + box.3)))
            r.save('\(out)')
            """
            let r = try Fixtures.run("python3", ["-c", script])
            XCTAssertEqual(r.status, 0, r.err)
            let pil = try ImageDecoder.readRGB(path: out)
            let ours = Resample.crop(t, x: box.0, y: box.1, width: box.2, height: box.3, outWidth: size, outHeight: size,
                                     interpolation: Interpolation(rawValue: method)!)
            let mad = zip(ours.pixels, pil.pixels).reduce(0.0) { $0 + Double(abs(Int($1.0) - Int($1.1))) } / Double(pil.pixels.count)
            XCTAssertLessThanOrEqual(mad, 1.0, "\(method) \(box) → \(size): mean |Δ| \(mad) grey levels (≤ 1/255)")
            if box == (0, 0, 224, 224) { XCTAssertEqual(ours, t, "a full-size crop at the same size is the tile itself") }
        }
    }

    func testCropBoxesFollowTheConfiguredRanges() {
        var areas: [Double] = [], ratios: [Double] = []
        for i in 0..<4000 {
            var g = ViewGenerator.rng(seed: 1, epoch: 0, sample: i, view: 0)
            let b = ViewGenerator.cropBox(width: 256, height: 256, scale: [0.08, 1], ratio: [0.75, 4.0 / 3], rng: &g)
            XCTAssertTrue(b.x >= 0 && b.y >= 0 && b.x + b.w <= 256 && b.y + b.h <= 256)
            areas.append(Double(b.w * b.h) / 65536)
            ratios.append(Double(b.w) / Double(b.h))
        }
        XCTAssertGreaterThanOrEqual(areas.min()!, 0.075)
        XCTAssertLessThanOrEqual(areas.max()!, 1.0)
        XCTAssertGreaterThan(ratios.min()!, 0.7)
        XCTAssertLessThan(ratios.max()!, 1.4)
        // Area ~ U(0.08, 1) on accepted tries: mean close to 0.54 (slightly less: large crops get rejected and retried).
        let mean = areas.reduce(0, +) / Double(areas.count)
        XCTAssertEqual(mean, 0.5, accuracy: 0.06)
        // Log-ratio uniform: as many crops wider than tall as taller than wide.
        let wide = ratios.filter { $0 > 1.02 }.count, tall = ratios.filter { $0 < 0.98 }.count
        XCTAssertEqual(Double(wide) / Double(tall), 1, accuracy: 0.15)
    }
}
