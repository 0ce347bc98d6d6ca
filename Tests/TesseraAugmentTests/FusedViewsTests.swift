import Foundation
import TesseraCore
import TesseraSlide
@testable import TesseraAugment
@testable import TesseraPipeline
@testable import TesseraViewKernels
import TesseraViewKernelsWide
import TesseraTestSupport
import XCTest

/// The in-place, vectorized view path (ViewCanvas, CanvasOps, the planar resampler) against the
/// straightforward one it replaced — one new RGBImage per operation, PixelOps in recipe order —
/// on real tiles: the bytes must be identical, not merely close.
final class FusedViewsTests: XCTestCase {
    /// PBC blood-cell images (360 × 363: odd sizes) and the 224² H&E tile.
    static func tiles() throws -> [RGBImage] {
        let dir = Fixtures.root + "/data/pbc-blood-cells"
        var paths: [String] = []
        for cls in try FileManager.default.contentsOfDirectory(atPath: dir).sorted() {
            let files = ((try? FileManager.default.contentsOfDirectory(atPath: dir + "/" + cls)) ?? []).sorted().filter { $0.hasSuffix(".jpg") }
            if let f = files.first { paths.append(dir + "/" + cls + "/" + f) }
        }
        paths = Array(paths.prefix(4)) + [Fixtures.root + "/data/stain/input_TUM-AACHEHDV.png"]
        return try paths.map { try ImageDecoder.readRGB(path: $0) }
    }

    /// The builds of the view kernels this CPU can run (baseline, and AVX2 and AVX-512 where
    /// supported), and the sixteen-float code built for baseline x86-64, which runs everywhere.
    static let kernelSets = ViewKernelChoice.supported + [("wide-baseline", TesseraViewKernelsWide.ViewKernels.self)]

    func canvas(_ im: RGBImage, _ kernels: any ViewKernelSet.Type = ViewKernelChoice.preferred) -> ViewCanvas {
        let c = ViewCanvas(kernels: kernels)
        c.load(im)
        return c
    }

    func testResampleEqualsTheBytewiseReference() throws {
        for t in try Self.tiles() {
            for (box, w, h) in [((10, 20, 180, 150), 96, 96), ((0, 0, t.width, t.height), 224, 224), ((30, 5, 60, 80), 128, 97),
                                ((3, 7, 200, 201), 50, 61), ((0, 0, 57, 43), 224, 224), ((t.width - 33, t.height - 41, 33, 41), 96, 96)] {
                for method in Interpolation.allCases {
                    let ours = Resample.crop(t, x: box.0, y: box.1, width: box.2, height: box.3, outWidth: w, outHeight: h, interpolation: method)
                    let ref = ReferenceViews.crop(t, x: box.0, y: box.1, width: box.2, height: box.3, outWidth: w, outHeight: h, interpolation: method)
                    let d = Self.difference(ours, ref)
                    XCTAssertEqual(d.count, 0, "\(method) \(box) → \(w)×\(h): max |Δ| \(d.max)")
                }
            }
        }
    }

    func testCanvasOperationsEqualPixelOps() throws {
        for full in try Self.tiles() {
          for (kname, kernels) in Self.kernelSets {
            // A size that is not a whole number of SIMD vectors, and a square one.
            for t in [full.crop(x: 3, y: 5, width: 97, height: 61), full.crop(x: 0, y: 0, width: 96, height: 96)] {
                func check(_ name: String, _ op: (ViewCanvas) -> Void, _ ref: (RGBImage) -> RGBImage) {
                    let c = canvas(t, kernels)
                    op(c)
                    let d = Self.difference(c.image(), ref(t))
                    XCTAssertEqual(d.count, 0, "\(kname) \(name) on \(t.width)×\(t.height): max |Δ| \(d.max)")
                }
                for f: Float in [0, 0.37, 0.6, 1, 1.35, 1.8] {
                    check("brightness \(f)", { $0.brightness(f) }, { PixelOps.brightness($0, f) })
                    check("contrast \(f)", { $0.contrast(f) }, { PixelOps.contrast($0, f) })
                    check("saturation \(f)", { $0.saturation(f) }, { PixelOps.saturation($0, f) })
                }
                for h: Float in [-0.5, -0.2, -0.013, 0, 0.05, 0.1, 0.2, 0.49] {
                    check("hue \(h)", { $0.hue(h) }, { PixelOps.hue($0, h) })
                }
                check("grayscale", { $0.grayscale() }, { PixelOps.grayscale($0) })
                check("solarize", { $0.solarize() }, { PixelOps.solarize($0) })
                for s in [0.1, 0.7, 1.3, 2.0, 25] {
                    check("blur \(s)", { $0.gaussianBlur(sigma: s) }, { PixelOps.gaussianBlur($0, sigma: s) })
                }
                check("hflip", { $0.flipHorizontal() }, { PixelOps.flipHorizontal($0) })
                check("vflip", { $0.flipVertical() }, { PixelOps.flipVertical($0) })
                for k in -1...4 { check("rot90 \(k)", { $0.rotate90(times: k) }, { PixelOps.rotate90($0, times: k) }) }
                var fast: [Float] = [], plain: [Float] = []
                PixelOps.normalize(t, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], into: &plain)
                fast = [Float](repeating: .nan, count: plain.count)
                canvas(t, kernels).normalize(mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], into: &fast)
                XCTAssertEqual(fast, plain, "\(kname) normalize")
            }
          }
        }
    }

    func testChainedColourOperationsEqualTheSequentialOnes() throws {
        var g = SplitMix64(seed: 5)
        for full in try Self.tiles() {
            // A crop and a whole PBC image, whose grey sum passes 2²⁴ (contrast's mean then rounds).
            for t in [full.crop(x: 7, y: 2, width: 201, height: 173), full] {
                for _ in 0..<2 {
                    var ops = [0, 1, 2, 3, 4, 5, 6]
                    for i in stride(from: 6, to: 0, by: -1) { ops.swapAt(i, Int(g.next() % UInt64(i + 1))) }
                    let factors = ops.map { _ in Float(0.2 + Double(g.next() >> 11) * 0x1p-53 * 1.6) }
                    var ref = t
                    for (op, f) in zip(ops, factors) {
                        switch op {
                        case 0: ref = PixelOps.brightness(ref, f)
                        case 1: ref = PixelOps.contrast(ref, f)
                        case 2: ref = PixelOps.saturation(ref, f)
                        case 3: ref = PixelOps.hue(ref, f - 1)
                        case 4: ref = PixelOps.gaussianBlur(ref, sigma: Double(f))
                        case 5: ref = PixelOps.grayscale(ref)
                        default: ref = PixelOps.solarize(ref)
                        }
                    }
                    for (kname, kernels) in Self.kernelSets {
                        let c = canvas(t, kernels)
                        for (op, f) in zip(ops, factors) {
                            switch op {
                            case 0: c.brightness(f)
                            case 1: c.contrast(f)
                            case 2: c.saturation(f)
                            case 3: c.hue(f - 1)
                            case 4: c.gaussianBlur(sigma: Double(f))
                            case 5: c.grayscale()
                            default: c.solarize()
                            }
                        }
                        let d = Self.difference(c.image(), ref)
                        XCTAssertEqual(d.count, 0, "\(kname) ops \(ops) on \(t.width)×\(t.height): max |Δ| \(d.max)")
                    }
                }
            }
        }
    }

    /// The kernels' x/255 (two multiplies and an add) is the division's result for every byte.
    func testOver255IsTheQuotientForEveryByte() {
        let x = SIMD8<Float>(0, 1, 2, 3, 4, 5, 6, 7)
        for base in stride(from: 0, to: 256, by: 8) {
            let v = x + Float(base)
            let ours = TesseraViewKernels.ViewKernels.over255(v), quotient = v / 255
            for l in 0..<8 { XCTAssertEqual(ours[l].bitPattern, quotient[l].bitPattern, "\(v[l])/255") }
        }
    }

    /// The hue kernel (both builds) against `PixelOps.hue` on a wide sample of all colours: every
    /// red and green level with every 17th blue level, at shifts that wrap both ways. (All 2²⁴
    /// colours at ten shifts passed too, in a release build with testing enabled; in a debug build
    /// that takes minutes.)
    func testHueKernelEqualsPixelOpsOnAllColours() {
        let blues = Array(stride(from: 0, through: 255, by: 17))
        var px: [UInt8] = []
        px.reserveCapacity(256 * 256 * blues.count * 3)
        for b in blues { for g in 0..<256 { for r in 0..<256 { px += [UInt8(r), UInt8(g), UInt8(b)] } } }
        let im = RGBImage(width: 256 * 256, height: blues.count, pixels: px)
        for h: Float in [-0.1234, 0.5] {
            let ref = PixelOps.hue(im, h)
            for (kname, kernels) in Self.kernelSets {
                let c = canvas(im, kernels)
                c.hue(h)
                let d = Self.difference(c.image(), ref)
                XCTAssertEqual(d.count, 0, "\(kname) hue \(h): max |Δ| \(d.max)")
            }
        }
    }

    /// Largest byte difference and how many bytes differ (images of one size).
    static func difference(_ a: RGBImage, _ b: RGBImage) -> (max: Int, count: Int) {
        guard a.width == b.width && a.height == b.height else { return (256, a.pixels.count) }
        var m = 0, n = 0
        for (x, y) in zip(a.pixels, b.pixels) where x != y {
            m = max(m, abs(Int(x) - Int(y)))
            n += 1
        }
        return (m, n)
    }

    func testViewsAndTensorsEqualTheSequentialReference() throws {
        let tiles = Array(try Self.tiles().suffix(3))
        for name in ["dino", "simclr", "histo"] {
            let recipe = try RecipeTests.recipe(name)
            let gen = try ViewGenerator(recipe: recipe, seed: 11)
            for (s, t) in tiles.enumerated() {
                do {
                    let epoch = s % 2
                    let expected = ReferenceViews.views(gen, of: t, sample: s, epoch: epoch)
                    for (kname, kernels) in Self.kernelSets {
                        let ours = gen.views(of: t, sample: s, epoch: epoch, kernels: kernels)
                        XCTAssertEqual(ours.count, expected.count)
                        for (v, (a, b)) in zip(ours, expected).enumerated() {
                            let d = Self.difference(a, b)
                            XCTAssertEqual(d.count, 0, "\(kname) \(name) sample \(s) epoch \(epoch) view \(v): max |Δ| \(d.max)")
                        }
                    }
                    if epoch == 0 {
                        let tensors = gen.tensors(of: t, sample: s, epoch: epoch)
                        for (v, im) in expected.enumerated() {
                            var plain: [Float] = []
                            PixelOps.normalize(im, mean: gen.mean, std: gen.std, into: &plain)
                            XCTAssertEqual(tensors[v], plain, "\(name) sample \(s) view \(v) tensor")
                        }
                    }
                }
            }
        }
    }
}

/// The view path before it was vectorized, kept as the reference the fast path must equal.
enum ReferenceViews {
    static func views(_ gen: ViewGenerator, of tile: RGBImage, sample: Int, epoch: Int) -> [RGBImage] {
        var source = tile
        if let step = gen.recipe.stainJitter {
            var g = ViewGenerator.rng(seed: gen.seed, epoch: epoch, sample: sample, view: -1)
            if ViewGenerator.uniform(&g, 0, 1) < step.p { source = step.jitter.apply(tile, rng: &g).image }
        }
        var out: [RGBImage] = []
        var index = 0
        for group in gen.recipe.crops {
            for k in 0..<group.count {
                var g = ViewGenerator.rng(seed: gen.seed, epoch: epoch, sample: sample, view: index)
                out.append(view(of: source, group: group, position: k, rng: &g))
                index += 1
            }
        }
        return out
    }

    static func view(of tile: RGBImage, group: CropGroup, position k: Int, rng g: inout SplitMix64) -> RGBImage {
        typealias G = ViewGenerator
        let box = G.cropBox(width: tile.width, height: tile.height, scale: group.scale, ratio: group.ratio, rng: &g)
        var v = crop(tile, x: box.x, y: box.y, width: box.w, height: box.h, outWidth: group.size, outHeight: group.size,
                     interpolation: group.interpolation)
        if G.uniform(&g, 0, 1) < group.hflip { v = PixelOps.flipHorizontal(v) }
        if G.uniform(&g, 0, 1) < group.vflip { v = PixelOps.flipVertical(v) }
        if G.uniform(&g, 0, 1) < group.rot90 { v = PixelOps.rotate90(v, times: 1 + G.randint(&g, 3)) }
        if let j = group.jitter, G.uniform(&g, 0, 1) < j.p {
            let (order, f) = G.jitterDraw(j, &g)
            for op in order {
                switch op {
                case 0 where j.brightness > 0: v = PixelOps.brightness(v, f[0])
                case 1 where j.contrast > 0: v = PixelOps.contrast(v, f[1])
                case 2 where j.saturation > 0: v = PixelOps.saturation(v, f[2])
                case 3 where j.hue > 0: v = PixelOps.hue(v, f[3])
                default: break
                }
            }
        }
        if G.uniform(&g, 0, 1) < group.grayscale { v = PixelOps.grayscale(v) }
        if let blur = group.blur, G.uniform(&g, 0, 1) < blur.p[k] {
            v = PixelOps.gaussianBlur(v, sigma: G.uniform(&g, blur.sigma[0], blur.sigma[1]))
        }
        if G.uniform(&g, 0, 1) < group.solarize[k] { v = PixelOps.solarize(v) }
        return v
    }

    /// Separable resize on bytes: horizontal pass to floats, vertical pass rounded to bytes.
    static func crop(_ image: RGBImage, x: Int, y: Int, width: Int, height: Int, outWidth: Int, outHeight: Int,
                     interpolation: Interpolation) -> RGBImage {
        let cx = Resample.coefficients(input: image.width, output: outWidth, offset: Double(x), length: Double(width), interpolation: interpolation)
        let cy = Resample.coefficients(input: image.height, output: outHeight, offset: Double(y), length: Double(height), interpolation: interpolation)
        let rowLo = Int(cy.start.min() ?? 0)
        let rowHi = zip(cy.start, cy.count).map { Int($0) + Int($1) }.max() ?? 0
        let rows = max(0, rowHi - rowLo)
        var mid = [Float](repeating: 0, count: rows * outWidth * 3)
        for r in 0..<rows {
            let row = (rowLo + r) * image.width * 3
            for o in 0..<outWidth {
                let s = Int(cx.start[o]), n = Int(cx.count[o])
                var acc = SIMD4<Float>.zero
                for k in 0..<n {
                    let p = row + (s + k) * 3
                    acc += SIMD4(Float(image.pixels[p]), Float(image.pixels[p + 1]), Float(image.pixels[p + 2]), 0) * cx.weights[o * cx.maxCount + k]
                }
                let q = (r * outWidth + o) * 3
                mid[q] = acc.x; mid[q + 1] = acc.y; mid[q + 2] = acc.z
            }
        }
        var out = [UInt8](repeating: 0, count: outWidth * outHeight * 3)
        let rowLen = outWidth * 3
        for o in 0..<outHeight {
            let s = Int(cy.start[o]) - rowLo, n = Int(cy.count[o])
            for c in 0..<rowLen {
                var a: Float = 0.5
                for k in 0..<n { a += mid[(s + k) * rowLen + c] * cy.weights[o * cy.maxCount + k] }
                out[o * rowLen + c] = UInt8(max(0, min(255, a)))
            }
        }
        return RGBImage(width: outWidth, height: outHeight, pixels: out)
    }
}

extension TesseraViewKernelsWide.ViewKernels: ViewKernelSet {}
