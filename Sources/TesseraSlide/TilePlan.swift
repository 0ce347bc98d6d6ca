import Foundation
import TesseraCore

/// The resolution a user asks tiles at.
public enum ResolutionTarget: Sendable, Equatable, Codable {
    /// Level 0 as scanned.
    case native
    /// Micrometres per pixel.
    case mpp(Double)
    /// Objective magnification (20 = "20×").
    case magnification(Double)
}

/// Which pyramid level to read and how much to resample it so that tiles come out at the target µm/px.
public struct TilePlan: Sendable, Equatable, Codable {
    public var level: Int
    /// Resampling applied to the level (1 = read as is, < 1 = downsample).
    public var scale: Double
    /// Level-0 pixels per output pixel.
    public var level0PerPixel: Double
    /// µm/px of the tiles, when known.
    public var mpp: Double?
    public var mppSource: MppSource
    /// Why this level: "level within 5% of target", "downsampled from finer level", "native".
    public var reason: String

    /// Relative tolerance within which a pyramid level is used without resampling.
    public static let levelTolerance = 0.05

    /// Chooses the level and resampling. Throws, naming the slide, when the target cannot be met honestly.
    public static func make(for slide: Slide, target: ResolutionTarget, assumeMpp: Double? = nil,
                            allowUpsample: Bool = false) throws -> TilePlan {
        var resolution = slide.resolution
        if resolution.mpp == nil, let assumeMpp {
            resolution = Resolution(mpp: assumeMpp, source: .assumed, objectivePower: resolution.objectivePower)
        }
        let wanted: Double  // level-0 pixels per output pixel
        var source = resolution.source
        switch target {
        case .native:
            return TilePlan(level: 0, scale: 1, level0PerPixel: 1, mpp: resolution.mpp, mppSource: resolution.source, reason: "native")
        case .mpp(let m):
            guard m > 0 else { throw TesseraError(.invalidConfig, "--mpp must be positive, got \(m)") }
            guard let mpp0 = resolution.mpp else {
                throw TesseraError(.missingResolution, path: slide.path, "the slide records no µm/px, so tiles at \(m) µm/px cannot be cut",
                                   hint: "pass --assume-mpp VALUE if you know the scanner's resolution, or tile at native resolution")
            }
            wanted = m / mpp0
        case .magnification(let mag):
            guard mag > 0 else { throw TesseraError(.invalidConfig, "--magnification must be positive, got \(mag)") }
            if let power = resolution.objectivePower, power > 0 {
                wanted = power / mag
            } else if let mpp0 = resolution.mpp {
                wanted = (Resolution.nominalMicronsAtOneX / mag) / mpp0
                source = .objectivePower
            } else {
                throw TesseraError(.missingResolution, path: slide.path, "the slide records neither objective power nor µm/px, so \(mag)× cannot be located",
                                   hint: "pass --assume-mpp VALUE")
            }
        }
        let mppOut = resolution.mpp.map { $0 * wanted }
        if wanted < 1 - levelTolerance {
            guard allowUpsample else {
                throw TesseraError(.invalidConfig, path: slide.path,
                                   "target is finer than the scan (level 0 is \(fmt(resolution.mpp)) µm/px; target needs \(fmt(wanted))× upsampling)",
                                   hint: "choose a coarser target or pass --allow-upsample")
            }
            return TilePlan(level: 0, scale: 1 / wanted, level0PerPixel: wanted, mpp: mppOut, mppSource: source, reason: "upsampled level 0")
        }
        if let near = slide.levels.first(where: { abs($0.downsample - wanted) / wanted <= levelTolerance }) {
            return TilePlan(level: near.index, scale: 1, level0PerPixel: near.downsample,
                            mpp: resolution.mpp.map { $0 * near.downsample }, mppSource: source,
                            reason: "level \(near.index) within 5% of target")
        }
        let finer = slide.levels.filter { $0.downsample <= wanted }.max(by: { $0.downsample < $1.downsample }) ?? slide.levels[0]
        return TilePlan(level: finer.index, scale: finer.downsample / wanted, level0PerPixel: wanted, mpp: mppOut,
                        mppSource: source, reason: "downsampled from level \(finer.index) (Lanczos-3)")
    }

    static func fmt(_ v: Double?) -> String { v.map { String(format: "%.4g", $0) } ?? "?" }
}

/// One output tile: its position in the working image and at level 0, and its tissue fraction.
public struct TilePosition: Sendable, Equatable {
    public var x: Int
    public var y: Int
    public var level0X: Int
    public var level0Y: Int
    public var tissue: Double
}

/// The regular grid of tile positions over the working image: tiles of `size` every `stride` pixels,
/// whole tiles only, row-major order.
public struct TileGrid: Sendable {
    public var size: Int
    public var stride: Int
    public var width: Int
    public var height: Int
    public var level0PerPixel: Double

    public init(size: Int, stride: Int, width: Int, height: Int, level0PerPixel: Double) {
        self.size = size
        self.stride = stride
        self.width = width
        self.height = height
        self.level0PerPixel = level0PerPixel
    }

    public var columns: Int { width < size ? 0 : (width - size) / stride + 1 }
    public var rows: Int { height < size ? 0 : (height - size) / stride + 1 }

    /// Positions whose tissue fraction is at least `minTissue`; tiles are never decoded to decide this.
    public func positions(mask: TissueMask?, minTissue: Double) -> [TilePosition] {
        var out: [TilePosition] = []
        let foot = Double(size) * level0PerPixel
        for r in 0..<rows {
            for c in 0..<columns {
                let x = c * stride, y = r * stride
                let lx = Double(x) * level0PerPixel, ly = Double(y) * level0PerPixel
                let t = mask?.fraction(x: lx, y: ly, width: foot, height: foot) ?? 1
                if t >= minTissue {
                    out.append(TilePosition(x: x, y: y, level0X: Int(lx.rounded()), level0Y: Int(ly.rounded()), tissue: t))
                }
            }
        }
        return out
    }
}
