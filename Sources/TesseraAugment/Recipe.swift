import Foundation
import TesseraCore
import TesseraStain

/// A number that may differ per view of a crop group: a scalar for all views, or a list indexed by
/// the view's position in its group (the last entry repeats). DINO uses it for blur and
/// solarization, which differ between its two global crops.
public struct PerView: Codable, Sendable, Equatable {
    public var values: [Double]
    public init(_ v: Double) { values = [v] }
    public init(_ v: [Double]) { values = v.isEmpty ? [0] : v }
    public subscript(_ i: Int) -> Double { values[min(i, values.count - 1)] }

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let v = try? c.decode(Double.self) { values = [v] } else { values = try c.decode([Double].self) }
        if values.isEmpty { values = [0] }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        if values.count == 1 { try c.encode(values[0]) } else { try c.encode(values) }
    }
}

/// One group of crops of the same size (DINO: 2 global, 8 local).
public struct CropGroup: Codable, Sendable, Equatable {
    public struct Jitter: Codable, Sendable, Equatable {
        public var p = 0.8
        public var brightness = 0.4
        public var contrast = 0.4
        public var saturation = 0.2
        public var hue = 0.1
        public init() {}
        enum CodingKeys: String, CodingKey { case p, brightness, contrast, saturation, hue }
        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            let d = Jitter()
            p = try c.decodeIfPresent(Double.self, forKey: .p) ?? d.p
            brightness = try c.decodeIfPresent(Double.self, forKey: .brightness) ?? d.brightness
            contrast = try c.decodeIfPresent(Double.self, forKey: .contrast) ?? d.contrast
            saturation = try c.decodeIfPresent(Double.self, forKey: .saturation) ?? d.saturation
            hue = try c.decodeIfPresent(Double.self, forKey: .hue) ?? d.hue
        }
    }
    public struct Blur: Codable, Sendable, Equatable {
        public var p = PerView(0.5)
        public var sigma: [Double] = [0.1, 2.0]
        public init() {}
        enum CodingKeys: String, CodingKey { case p, sigma }
        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            p = try c.decodeIfPresent(PerView.self, forKey: .p) ?? Blur().p
            sigma = try c.decodeIfPresent([Double].self, forKey: .sigma) ?? Blur().sigma
        }
    }

    public var name = "view"
    public var count = 2
    public var size = 224
    public var scale: [Double] = [0.08, 1.0]
    public var ratio: [Double] = [3.0 / 4.0, 4.0 / 3.0]
    public var interpolation: Interpolation = .bicubic
    public var hflip = 0.5
    public var vflip = 0.0
    /// Probability of a rotation by a random non-zero multiple of 90°.
    public var rot90 = 0.0
    public var jitter: Jitter?
    public var grayscale = 0.0
    public var blur: Blur?
    public var solarize = PerView(0)

    public init() {}

    enum CodingKeys: String, CodingKey {
        case name, count, size, scale, ratio, interpolation, hflip, vflip, rot90, jitter, grayscale, blur, solarize
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = CropGroup()
        name = try c.decodeIfPresent(String.self, forKey: .name) ?? d.name
        count = try c.decodeIfPresent(Int.self, forKey: .count) ?? d.count
        size = try c.decodeIfPresent(Int.self, forKey: .size) ?? d.size
        scale = try c.decodeIfPresent([Double].self, forKey: .scale) ?? d.scale
        ratio = try c.decodeIfPresent([Double].self, forKey: .ratio) ?? d.ratio
        interpolation = try c.decodeIfPresent(Interpolation.self, forKey: .interpolation) ?? d.interpolation
        hflip = try c.decodeIfPresent(Double.self, forKey: .hflip) ?? d.hflip
        vflip = try c.decodeIfPresent(Double.self, forKey: .vflip) ?? d.vflip
        rot90 = try c.decodeIfPresent(Double.self, forKey: .rot90) ?? d.rot90
        jitter = try c.decodeIfPresent(Jitter.self, forKey: .jitter)
        grayscale = try c.decodeIfPresent(Double.self, forKey: .grayscale) ?? d.grayscale
        blur = try c.decodeIfPresent(Blur.self, forKey: .blur)
        solarize = try c.decodeIfPresent(PerView.self, forKey: .solarize) ?? d.solarize
    }
}

/// A view recipe (`views:` section of a pipeline file): per-tile stain jitter, then crop groups, then
/// normalization to float32.
public struct ViewRecipe: Codable, Sendable, Equatable {
    public struct StainJitterStep: Codable, Sendable, Equatable {
        public var p = 1.0
        public var space: StainJitter.Space = .hed
        public var sigma1: Double?
        public var sigma2: Double?
        public var augmentBackground = false
        enum CodingKeys: String, CodingKey { case p, space, sigma1, sigma2, augmentBackground = "augment_background" }
        public init() {}
        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            p = try c.decodeIfPresent(Double.self, forKey: .p) ?? 1
            space = try c.decodeIfPresent(StainJitter.Space.self, forKey: .space) ?? .hed
            sigma1 = try c.decodeIfPresent(Double.self, forKey: .sigma1)
            sigma2 = try c.decodeIfPresent(Double.self, forKey: .sigma2)
            augmentBackground = try c.decodeIfPresent(Bool.self, forKey: .augmentBackground) ?? false
        }

        public var jitter: StainJitter {
            var j = StainJitter(space: space)
            if let sigma1 { j.sigma1 = sigma1 }
            if let sigma2 { j.sigma2 = sigma2 }
            j.augmentBackground = augmentBackground
            return j
        }
    }
    public struct Normalize: Codable, Sendable, Equatable {
        /// ImageNet statistics (torchvision's pretrained models; DINO's main_dino.py).
        public var mean: [Double] = [0.485, 0.456, 0.406]
        public var std: [Double] = [0.229, 0.224, 0.225]
        public init() {}
        enum CodingKeys: String, CodingKey { case mean, std }
        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            mean = try c.decodeIfPresent([Double].self, forKey: .mean) ?? Normalize().mean
            std = try c.decodeIfPresent([Double].self, forKey: .std) ?? Normalize().std
        }
    }

    public var stainJitter: StainJitterStep?
    public var crops: [CropGroup] = [CropGroup()]
    public var normalize = Normalize()

    enum CodingKeys: String, CodingKey { case stainJitter = "stain_jitter", crops, normalize }

    public init() {}

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        stainJitter = try c.decodeIfPresent(StainJitterStep.self, forKey: .stainJitter)
        crops = try c.decodeIfPresent([CropGroup].self, forKey: .crops) ?? [CropGroup()]
        normalize = try c.decodeIfPresent(Normalize.self, forKey: .normalize) ?? Normalize()
    }

    public var viewCount: Int { crops.reduce(0) { $0 + $1.count } }

    /// Rejects values that cannot work, naming the crop group and setting.
    public func validate() throws {
        guard !crops.isEmpty else { throw TesseraError(.invalidConfig, "views: no crop groups") }
        for g in crops {
            func bad(_ m: String) -> TesseraError { TesseraError(.invalidConfig, "views.crops[\(g.name)]: \(m)") }
            guard g.count >= 1 && g.count <= 64 else { throw bad("count must be 1–64, got \(g.count)") }
            guard g.size >= 8 && g.size <= 4096 else { throw bad("size must be 8–4096, got \(g.size)") }
            guard g.scale.count == 2, g.scale[0] > 0, g.scale[0] <= g.scale[1], g.scale[1] <= 1 else { throw bad("scale must be [min, max] with 0 < min ≤ max ≤ 1, got \(g.scale)") }
            guard g.ratio.count == 2, g.ratio[0] > 0, g.ratio[0] <= g.ratio[1] else { throw bad("ratio must be [min, max] with 0 < min ≤ max, got \(g.ratio)") }
            for (name, p) in [("hflip", g.hflip), ("vflip", g.vflip), ("rot90", g.rot90), ("grayscale", g.grayscale)] where !(0...1).contains(p) {
                throw bad("\(name) is a probability 0–1, got \(p)")
            }
            if let j = g.jitter, !(0...1).contains(j.p) || j.brightness < 0 || j.contrast < 0 || j.saturation < 0 || !(0...0.5).contains(j.hue) {
                throw bad("jitter: p in 0–1, brightness/contrast/saturation ≥ 0, hue in 0–0.5")
            }
            if let b = g.blur, b.sigma.count != 2 || b.sigma[0] <= 0 || b.sigma[0] > b.sigma[1] || b.p.values.contains(where: { !(0...1).contains($0) }) {
                throw bad("blur: sigma [min, max] > 0 and p in 0–1")
            }
        }
        guard normalize.mean.count == 3, normalize.std.count == 3, normalize.std.allSatisfy({ $0 > 0 }) else {
            throw TesseraError(.invalidConfig, "views.normalize: mean and std need three values each (std > 0)")
        }
        if let s = stainJitter { try s.jitter.validate() }
    }
}
