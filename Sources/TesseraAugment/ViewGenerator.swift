import Foundation
import TesseraCore
import TesseraStain

/// Makes the views of one tile. Every random draw comes from a generator seeded by
/// (seed, epoch, sample index, view index) — the per-tile stain jitter by view index −1 — so a
/// sample's views can be regenerated alone, in any order, on any thread, byte for byte.
///
/// Per view, in order (torchvision's and DINO's pipelines): random resized crop (torchvision's
/// RandomResizedCrop parameters: ten tries of area × U(scale) and exp(U(log ratio)), then a centre
/// crop), resampling with antialiasing; horizontal flip; vertical flip; rotation by a random non-zero
/// multiple of 90°; colour jitter (brightness, contrast, saturation, hue in a random order, as
/// torchvision ColorJitter); grayscale; Gaussian blur with σ ~ U(sigma); solarization (threshold 128).
/// The steps run in place on a `ViewCanvas` and give the bytes of the same `PixelOps` sequence on
/// `RGBImage` (FusedViewsTests holds the two paths equal).
public struct ViewGenerator: Sendable {
    public let recipe: ViewRecipe
    public let seed: UInt64

    /// The recipe's normalization as Float, per channel.
    let mean: [Float], std: [Float]

    public init(recipe: ViewRecipe, seed: UInt64) throws {
        try recipe.validate()
        self.recipe = recipe
        self.seed = seed
        mean = recipe.normalize.mean.map(Float.init)
        std = recipe.normalize.std.map(Float.init)
    }

    /// Which build of the view loops this process runs: "avx512", "avx2" or "baseline" (the widest
    /// the CPU supports unless TESSERA_VIEW_KERNELS caps it; all give the same bytes).
    public static var kernelBuild: String { ViewKernelChoice.preferredName }

    /// The generator of one view's draws.
    public static func rng(seed: UInt64, epoch: Int, sample: Int, view: Int) -> SplitMix64 {
        var g = SplitMix64(seed: seed ^ 0x7465_7373_6572_6176)   // "tesserav"
        for part in [UInt64(bitPattern: Int64(epoch)), UInt64(bitPattern: Int64(sample)), UInt64(bitPattern: Int64(view))] {
            g.state ^= part &* 0x9E37_79B9_7F4A_7C15
            _ = g.next()
        }
        return g
    }

    @inline(__always) static func uniform(_ g: inout SplitMix64, _ lo: Double, _ hi: Double) -> Double {
        lo + (hi - lo) * Double(g.next() >> 11) * 0x1p-53
    }

    @inline(__always) static func randint(_ g: inout SplitMix64, _ n: Int) -> Int { n <= 1 ? 0 : Int(g.next() % UInt64(n)) }

    /// torchvision ColorJitter.get_params: a random order of the four operations (0 brightness,
    /// 1 contrast, 2 saturation, 3 hue), then their factors in that fixed order. All draws are made
    /// even for an operation whose range is 0 (the caller skips it), so the stream does not depend on it.
    static func jitterDraw(_ j: CropGroup.Jitter, _ g: inout SplitMix64) -> (order: [Int], factors: [Float]) {
        var order = [0, 1, 2, 3]
        for i in stride(from: 3, to: 0, by: -1) { order.swapAt(i, randint(&g, i + 1)) }
        let b = uniform(&g, max(0, 1 - j.brightness), 1 + j.brightness)
        let c = uniform(&g, max(0, 1 - j.contrast), 1 + j.contrast)
        let s = uniform(&g, max(0, 1 - j.saturation), 1 + j.saturation)
        let h = uniform(&g, -j.hue, j.hue)
        return (order, [Float(b), Float(c), Float(s), Float(h)])
    }

    /// All views of a tile, in recipe order (group by group).
    public func views(of tile: RGBImage, sample: Int, epoch: Int) -> [RGBImage] {
        views(of: tile, sample: sample, epoch: epoch, kernels: ViewKernelChoice.preferred)
    }

    func views(of tile: RGBImage, sample: Int, epoch: Int, kernels: any ViewKernelSet.Type) -> [RGBImage] {
        let source = Resample.Source(stained(tile, sample: sample, epoch: epoch), kernels: kernels)
        let canvas = ViewCanvas(kernels: kernels)
        var out: [RGBImage] = []
        var index = 0
        for group in recipe.crops {
            for k in 0..<group.count {
                render(source, group: group, position: k, sample: sample, epoch: epoch, view: index, into: canvas)
                out.append(canvas.image())
                index += 1
            }
        }
        return out
    }

    /// The tile after the recipe's per-tile stain jitter (the tile itself without one).
    func stained(_ tile: RGBImage, sample: Int, epoch: Int) -> RGBImage {
        guard let step = recipe.stainJitter else { return tile }
        var g = Self.rng(seed: seed, epoch: epoch, sample: sample, view: -1)
        return Self.uniform(&g, 0, 1) < step.p ? step.jitter.apply(tile, rng: &g).image : tile
    }

    /// torchvision RandomResizedCrop.get_params: (x, y, width, height).
    public static func cropBox(width: Int, height: Int, scale: [Double], ratio: [Double], rng g: inout SplitMix64) -> (x: Int, y: Int, w: Int, h: Int) {
        let area = Double(width * height)
        let logRatio = (log(ratio[0]), log(ratio[1]))
        for _ in 0..<10 {
            let target = area * uniform(&g, scale[0], scale[1])
            let aspect = exp(uniform(&g, logRatio.0, logRatio.1))
            let w = Int((target * aspect).squareRoot().rounded(.toNearestOrEven))
            let h = Int((target / aspect).squareRoot().rounded(.toNearestOrEven))
            if w > 0 && w <= width && h > 0 && h <= height {
                let y = randint(&g, height - h + 1), x = randint(&g, width - w + 1)
                return (x, y, w, h)
            }
        }
        let inRatio = Double(width) / Double(height)
        var w = width, h = height
        if inRatio < ratio[0] {
            h = Int((Double(w) / ratio[0]).rounded(.toNearestOrEven))
        } else if inRatio > ratio[1] {
            w = Int((Double(h) * ratio[1]).rounded(.toNearestOrEven))
        }
        return ((width - w) / 2, (height - h) / 2, w, h)
    }

    /// Makes view `view` (position k of `group`) of a prepared tile in `canvas`.
    func render(_ source: Resample.Source, group: CropGroup, position k: Int, sample: Int, epoch: Int, view: Int,
                into v: ViewCanvas) {
        var g = Self.rng(seed: seed, epoch: epoch, sample: sample, view: view)
        let box = Self.cropBox(width: source.width, height: source.height, scale: group.scale, ratio: group.ratio, rng: &g)
        // The flip draw comes next in the sequence either way; drawing it before resampling lets the
        // resampler write the rows mirrored instead of a separate pass.
        let hflip = Self.uniform(&g, 0, 1) < group.hflip
        Resample.crop(source, x: box.x, y: box.y, width: box.w, height: box.h, outWidth: group.size, outHeight: group.size,
                      interpolation: group.interpolation, mirrored: hflip, into: v)
        if Self.uniform(&g, 0, 1) < group.vflip { v.flipVertical() }
        if Self.uniform(&g, 0, 1) < group.rot90 { v.rotate90(times: 1 + Self.randint(&g, 3)) }
        if let j = group.jitter, Self.uniform(&g, 0, 1) < j.p {
            let (order, f) = Self.jitterDraw(j, &g)
            for op in order {
                switch op {
                case 0 where j.brightness > 0: v.brightness(f[0])
                case 1 where j.contrast > 0: v.contrast(f[1])
                case 2 where j.saturation > 0: v.saturation(f[2])
                case 3 where j.hue > 0: v.hue(f[3])
                default: break
                }
            }
        }
        if Self.uniform(&g, 0, 1) < group.grayscale { v.grayscale() }
        if let blur = group.blur, Self.uniform(&g, 0, 1) < blur.p[k] {
            v.gaussianBlur(sigma: Self.uniform(&g, blur.sigma[0], blur.sigma[1]))
        }
        if Self.uniform(&g, 0, 1) < group.solarize[k] { v.solarize() }
    }

    /// The views of a tile as float32 CHW tensors (normalized), one array per view.
    public func tensors(of tile: RGBImage, sample: Int, epoch: Int) -> [[Float]] {
        let source = Resample.Source(stained(tile, sample: sample, epoch: epoch))
        let canvas = ViewCanvas()
        var out: [[Float]] = []
        var index = 0
        for group in recipe.crops {
            let count = 3 * group.size * group.size
            for k in 0..<group.count {
                render(source, group: group, position: k, sample: sample, epoch: epoch, view: index, into: canvas)
                out.append([Float](unsafeUninitializedCapacity: count) { buffer, n in
                    canvas.normalize(mean: mean, std: std, into: buffer.baseAddress!)
                    n = count
                })
                index += 1
            }
        }
        return out
    }
}
