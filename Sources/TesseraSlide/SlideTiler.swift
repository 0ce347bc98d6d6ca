import CVipsShim
import Foundation
import TesseraCore

/// A slide ready to be cut: the working image at the target resolution, its tissue mask,
/// the thumbnail the mask came from, and the kept tile positions in reading order.
public final class PreparedSlide: @unchecked Sendable {
    public let slide: Slide
    public let plan: TilePlan
    public let grid: TileGrid
    public let mask: TissueMask
    public let thumbnail: RGBImage
    public let positions: [TilePosition]
    /// The TIFF page whose compressed tiles are copied as they are, when the grid coincides with
    /// the slide's JPEG tile grid and no pixel change is asked for.
    public let passThroughPage: Int?
    /// The whole working image, decoded once, when it is small (microscopy fields, patches):
    /// its tiles and thumbnail come from memory instead of a second decode.
    let decoded: RGBImage?
    let work: VipsImageRef

    /// Options that shape what is cut from a slide.
    public struct Options: Sendable, Equatable {
        public var tileSize = 256
        public var stride = 256
        public var minTissue = 0.5
        public var tissue = TissueMask.Options()
        /// Longest side of the thumbnail the tissue mask is computed on; bounds its memory.
        public var maskSize = 2048
        public var depth: DepthConversion = .stretch
        /// An optional user mask image (non-zero = tissue), used instead of detection.
        public var userMaskPath: String?
        /// Copy compressed JPEG tiles without decoding when the grid allows it (JPEG output, no pixel change).
        public var allowPassThrough = false
        /// Working images up to this many pixels are decoded once and kept in memory (≤ 12 MB at the default).
        public var inMemoryPixels = 4 << 20
        public init() {}
    }

    init(slide: Slide, plan: TilePlan, grid: TileGrid, mask: TissueMask, thumbnail: RGBImage, positions: [TilePosition],
         passThroughPage: Int?, decoded: RGBImage?, work: VipsImageRef) {
        self.passThroughPage = passThroughPage
        self.decoded = decoded
        self.slide = slide
        self.plan = plan
        self.grid = grid
        self.mask = mask
        self.thumbnail = thumbnail
        self.positions = positions
        self.work = work
    }

    /// Opens the working image, computes the thumbnail and tissue mask and the kept tile positions.
    public static func prepare(_ slide: Slide, plan: TilePlan, options: Options) throws -> PreparedSlide {
        let depth = try slide.depthMap(options.depth)
        var work = try slide.rgbLevel(plan.level, depth: depth)
        if plan.scale != 1 {
            let src = work
            work = try VipsImageRef.make(path: slide.path, "resampling level \(plan.level)") {
                tsr_resize(src.pointer, $0, plan.scale, "lanczos3")
            }
        }
        var decoded: RGBImage? = nil
        if work.width * work.height <= options.inMemoryPixels {
            decoded = try VipsRegionReader(work).read(x: 0, y: 0, width: work.width, height: work.height, path: slide.path)
        }
        let thumbnail = try decoded.map { boxDownsample($0, maxSide: options.maskSize) }
            ?? makeThumbnail(slide, maxSide: options.maskSize, depth: depth)
        let mask: TissueMask
        if let maskPath = options.userMaskPath {
            let user = try Slide.open(path: maskPath)
            let userImage = try makeThumbnail(user, maxSide: max(thumbnail.width, thumbnail.height), depth: try user.depthMap(.scale))
            mask = TissueMask.fromUserMask(userImage, width: thumbnail.width, height: thumbnail.height,
                                           level0Width: slide.width, level0Height: slide.height)
        } else {
            mask = TissueMask.detect(thumbnail: thumbnail, level0Width: slide.width, level0Height: slide.height, options: options.tissue)
        }
        let grid = TileGrid(size: options.tileSize, stride: options.stride, width: work.width, height: work.height,
                            level0PerPixel: plan.level0PerPixel)
        let positions = grid.positions(mask: options.tissue.method == .none && options.userMaskPath == nil ? nil : mask,
                                       minTissue: options.minTissue)
        var passThrough: Int? = nil
        if options.allowPassThrough, plan.scale == 1, options.stride == options.tileSize, !slide.isHighDepth,
           case .tiffPage(let page) = slide.sources[plan.level],
           let layout = RawJPEGTiles.layout(path: slide.path, page: page), layout.isPassThroughCapable,
           layout.tileWidth == options.tileSize, layout.tileHeight == options.tileSize {
            passThrough = page
        }
        return PreparedSlide(slide: slide, plan: plan, grid: grid, mask: mask, thumbnail: thumbnail, positions: positions,
                             passThroughPage: passThrough, decoded: decoded, work: work)
    }

    /// A thumbnail whose longest side is at most `maxSide`, made from the coarsest level that is
    /// still at least that large, so memory stays constant whatever the slide size.
    static func makeThumbnail(_ slide: Slide, maxSide: Int, depth: (scale: Double, offset: Double)) throws -> RGBImage {
        let candidates = slide.levels.filter { max($0.width, $0.height) >= maxSide }
        let level = candidates.last ?? slide.levels[0]
        var image = try slide.rgbLevel(level.index, depth: depth)
        let longest = max(image.width, image.height)
        if longest > maxSide {
            let src = image
            let scale = Double(maxSide) / Double(longest)
            image = try VipsImageRef.make(path: slide.path, "making a thumbnail") { tsr_resize(src.pointer, $0, scale, "linear") }
        }
        return try image.renderRGB(path: slide.path)
    }

    /// Area-average downsample by the smallest integer factor that fits `maxSide`; the mask needs no finer filter.
    static func boxDownsample(_ image: RGBImage, maxSide: Int) -> RGBImage {
        let f = (max(image.width, image.height) + maxSide - 1) / maxSide
        guard f > 1 else { return image }
        let w = image.width / f, h = image.height / f
        var out = RGBImage(width: w, height: h)
        let n = f * f
        image.pixels.withUnsafeBufferPointer { src in
            out.pixels.withUnsafeMutableBufferPointer { dst in
                for y in 0..<h {
                    for x in 0..<w {
                        var r = 0, g = 0, b = 0
                        for dy in 0..<f {
                            var o = ((y * f + dy) * image.width + x * f) * 3
                            for _ in 0..<f { r += Int(src[o]); g += Int(src[o + 1]); b += Int(src[o + 2]); o += 3 }
                        }
                        let d = (y * w + x) * 3
                        dst[d] = UInt8(r / n); dst[d + 1] = UInt8(g / n); dst[d + 2] = UInt8(b / n)
                    }
                }
            }
        }
        return out
    }

    /// Groups positions into reading units: runs of neighbouring tiles in one row, at most `maxTiles` long,
    /// so that each unit reads one strip and decodes the source tiles under it once.
    public func units(maxTiles: Int) -> [Range<Int>] {
        var out: [Range<Int>] = []
        var start = 0
        for i in positions.indices.dropFirst() {
            let prev = positions[i - 1], cur = positions[i]
            if cur.y != prev.y || cur.x - prev.x > grid.size || i - start >= maxTiles {
                out.append(start..<i)
                start = i
            }
        }
        if !positions.isEmpty { out.append(start..<positions.count) }
        return out
    }

    /// A reader for one thread; each thread needs its own.
    public func makeReader() throws -> TileReader { try TileReader(self) }
}

/// Reads tiles of one prepared slide. Not thread-safe: one per worker thread.
public final class TileReader {
    private let prepared: PreparedSlide
    private let region: VipsRegionReader
    private let raw: RawJPEGTiles?

    init(_ prepared: PreparedSlide) throws {
        self.prepared = prepared
        self.region = try VipsRegionReader(prepared.work)
        self.raw = try prepared.passThroughPage.map { try RawJPEGTiles(path: prepared.slide.path, page: $0) }
    }

    /// The unit's tiles as the slide's own compressed JPEG bytes; nil when the slide is not pass-through.
    public func readCompressed(_ unit: Range<Int>) throws -> [[UInt8]]? {
        guard let raw else { return nil }
        FaultInjection.maybeHang(.read, path: prepared.slide.path)
        return try unit.map { try raw.jpeg(x: prepared.positions[$0].x, y: prepared.positions[$0].y) }
    }

    /// Pixels under a unit and where each of its tiles starts in them: a strip read for this unit,
    /// or the whole decoded image of a small slide.
    public func readStrip(_ unit: Range<Int>) throws -> (image: RGBImage, origins: [(x: Int, y: Int)]) {
        FaultInjection.maybeHang(.read, path: prepared.slide.path)
        let p = prepared.positions
        if let decoded = prepared.decoded {
            return (decoded, unit.map { (p[$0].x, p[$0].y) })
        }
        let size = prepared.grid.size
        let x0 = p[unit.lowerBound].x, y0 = p[unit.lowerBound].y
        let x1 = p[unit.upperBound - 1].x + size
        precondition(unit.allSatisfy { p[$0].y == y0 && p[$0].x >= x0 }, "a reading unit spans one row, left to right")
        let strip = try region.read(x: x0, y: y0, width: x1 - x0, height: size, path: prepared.slide.path)
        return (strip, unit.map { (p[$0].x - x0, 0) })
    }
}
