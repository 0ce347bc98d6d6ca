import Foundation
import TesseraCore
import TesseraSlide
import TesseraStain

/// The pixels a stain target is fitted on: a small image as it is, or, for a slide, a mosaic of
/// tissue tiles spread evenly over it (background never counts).
public enum StainReference {
    public struct Options: Sendable {
        /// Resolution of the sampled tiles (nil: the slide's own level 0, or as recorded).
        public var mpp: Double?
        public var tileSize = 256
        public var tiles = 64
        /// µm/px for slides that record none (needed only with `mpp`).
        public var assumeMpp: Double?
        public var minTissue = 0.5
        /// Images up to this many pixels are used whole.
        public var wholeImagePixels = 16 << 20
        public init() {}
    }

    public static func load(path: String, options o: Options = Options()) throws -> RGBImage {
        let slide = try Slide.open(path: path)
        if slide.levels.count == 1 && slide.width * slide.height <= o.wholeImagePixels && o.mpp == nil {
            return try slide.readRegion(x: 0, y: 0, width: slide.width, height: slide.height)
        }
        let target: ResolutionTarget = o.mpp.map { .mpp($0) } ?? .native
        let plan = try TilePlan.make(for: slide, target: target, assumeMpp: o.assumeMpp)
        var options = PreparedSlide.Options()
        options.tileSize = o.tileSize
        options.stride = o.tileSize
        options.minTissue = o.minTissue
        let prepared = try PreparedSlide.prepare(slide, plan: plan, options: options)
        guard !prepared.positions.isEmpty else {
            throw TesseraError(.noTissue, path: path, "no tile with at least \(Int(o.minTissue * 100))% tissue to fit stains on",
                               hint: "lower --min-tissue, or fit on another reference")
        }
        return try mosaic(prepared, tiles: o.tiles, reader: try prepared.makeReader())
    }

    /// Up to `tiles` kept tiles of a prepared slide, evenly spaced over its positions (reading order,
    /// so the sample covers the slide), stacked into one image.
    public static func mosaic(_ prepared: PreparedSlide, tiles: Int, reader: TileReader) throws -> RGBImage {
        guard !prepared.positions.isEmpty else {
            throw TesseraError(.noTissue, path: prepared.slide.path, "no tiles to fit stains on")
        }
        let count = min(tiles, prepared.positions.count)
        let picks = (0..<count).map { $0 * prepared.positions.count / count }
        let size = prepared.grid.size
        var pixels: [UInt8] = []
        pixels.reserveCapacity(count * size * size * 3)
        for i in picks {
            let (strip, origins) = try reader.readStrip(i..<(i + 1))
            pixels += strip.crop(x: origins[0].x, y: origins[0].y, width: size, height: size).pixels
        }
        return RGBImage(width: size, height: size * count, pixels: pixels)
    }
}
