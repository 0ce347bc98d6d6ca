import Foundation
import TesseraCore

/// How tissue is told from background on the thumbnail.
public enum TissueMethod: String, Codable, Sendable, CaseIterable {
    /// Otsu threshold on HSV saturation (stained tissue is coloured, glass is grey/white), clamped to a sane range.
    case otsu
    /// Otsu threshold on luminance (tissue is darker than glass), for unstained or grey images.
    case gray
    /// Every pixel is tissue: plain microscopy fields, pre-cropped patches.
    case none
}

/// A binary tissue mask on a thumbnail of the slide, with O(1) tissue-fraction queries for any
/// level-0 rectangle. Its memory is set by the thumbnail size, never by the slide size.
public struct TissueMask: Sendable {
    public let width: Int
    public let height: Int
    /// 1 = tissue, row-major.
    public let mask: [UInt8]
    /// Thumbnail pixels per level-0 pixel, horizontally and vertically.
    public let scaleX: Double
    public let scaleY: Double
    /// Threshold used (0–255 on the method's channel), nil for `none` and user masks.
    public let threshold: Int?
    /// Fraction of the thumbnail that is tissue.
    public let tissueFraction: Double
    private let integral: [Int32]

    public init(mask: [UInt8], width: Int, height: Int, level0Width: Int, level0Height: Int, threshold: Int?) {
        precondition(mask.count == width * height)
        self.mask = mask
        self.width = width
        self.height = height
        self.scaleX = Double(width) / Double(level0Width)
        self.scaleY = Double(height) / Double(level0Height)
        self.threshold = threshold
        var integral = [Int32](repeating: 0, count: (width + 1) * (height + 1))
        var total = 0
        for y in 0..<height {
            var rowSum: Int32 = 0
            for x in 0..<width {
                rowSum += Int32(mask[y * width + x])
                integral[(y + 1) * (width + 1) + x + 1] = integral[y * (width + 1) + x + 1] + rowSum
            }
            total += Int(rowSum)
        }
        self.integral = integral
        self.tissueFraction = width * height > 0 ? Double(total) / Double(width * height) : 0
    }

    /// Fraction of tissue under a level-0 rectangle, weighting partly covered mask pixels by their overlap.
    public func fraction(x: Double, y: Double, width w: Double, height h: Double) -> Double {
        let x0 = x * scaleX, x1 = (x + w) * scaleX
        let y0 = y * scaleY, y1 = (y + h) * scaleY
        let area = (x1 - x0) * (y1 - y0)
        guard area > 0 else { return 0 }
        let ix0 = max(0, Int(x0.rounded(.down))), ix1 = min(width, Int(x1.rounded(.up)))
        let iy0 = max(0, Int(y0.rounded(.down))), iy1 = min(height, Int(y1.rounded(.up)))
        guard ix1 > ix0, iy1 > iy0 else { return 0 }
        if Double(ix0) == x0 && Double(ix1) == x1 && Double(iy0) == y0 && Double(iy1) == y1 {
            return Double(sum(ix0, iy0, ix1, iy1)) / area
        }
        // Partly covered mask pixels count by their overlap; a tile spans few mask pixels.
        var covered = 0.0
        for py in iy0..<iy1 {
            let wy = min(Double(py + 1), y1) - max(Double(py), y0)
            guard wy > 0 else { continue }
            for px in ix0..<ix1 where mask[py * width + px] != 0 {
                let wx = min(Double(px + 1), x1) - max(Double(px), x0)
                if wx > 0 { covered += wx * wy }
            }
        }
        return min(1, covered / area)
    }

    private func sum(_ x0: Int, _ y0: Int, _ x1: Int, _ y1: Int) -> Int {
        let w = width + 1
        return Int(integral[y1 * w + x1] - integral[y0 * w + x1] - integral[y1 * w + x0] + integral[y0 * w + x0])
    }

    // MARK: detection

    /// Parameters of tissue detection; the defaults suit H&E and IHC brightfield slides.
    public struct Options: Sendable, Codable, Equatable {
        public var method: TissueMethod = .otsu
        /// Otsu's threshold is clamped into this range (0–255) so that a slide that is all tissue
        /// or all glass is not split in two arbitrary halves.
        public var saturationClamp: ClosedRange<Int> = 20...90
        public var grayClamp: ClosedRange<Int> = 160...235
        /// Connected tissue regions smaller than this fraction of the thumbnail are specks (dust, debris) and are removed;
        /// background holes smaller than it are filled.
        public var minRegionFraction: Double = 0.0005
        public init() {}
    }

    /// Detects tissue on an RGB thumbnail of the whole slide.
    public static func detect(thumbnail: RGBImage, level0Width: Int, level0Height: Int, options: Options = Options()) -> TissueMask {
        let n = thumbnail.width * thumbnail.height
        var channel = [UInt8](repeating: 0, count: n)
        var darkOrBright = [Bool](repeating: false, count: n)
        thumbnail.pixels.withUnsafeBufferPointer { p in
            for i in 0..<n {
                let r = Int(p[3 * i]), g = Int(p[3 * i + 1]), b = Int(p[3 * i + 2])
                let mx = max(r, g, b), mn = min(r, g, b)
                switch options.method {
                case .otsu:
                    channel[i] = mx == 0 ? 0 : UInt8((mx - mn) * 255 / mx)
                    // Near-black pixels (scanner borders, pen) have unstable saturation: never tissue.
                    darkOrBright[i] = mx < 30
                case .gray, .none:
                    channel[i] = UInt8((299 * r + 587 * g + 114 * b) / 1000)
                }
            }
        }
        var mask = [UInt8](repeating: 1, count: n)
        var threshold: Int? = nil
        switch options.method {
        case .none:
            break
        case .otsu:
            let t = clamp(otsu(channel), options.saturationClamp)
            threshold = t
            for i in 0..<n { mask[i] = (channel[i] > UInt8(t) && !darkOrBright[i]) ? 1 : 0 }
        case .gray:
            let t = clamp(otsu(channel), options.grayClamp)
            threshold = t
            for i in 0..<n { mask[i] = channel[i] < UInt8(t) ? 1 : 0 }
        }
        if options.method != .none {
            let minArea = max(1, Int(Double(n) * options.minRegionFraction))
            removeSmallRegions(&mask, width: thumbnail.width, height: thumbnail.height, value: 1, minArea: minArea)
            removeSmallRegions(&mask, width: thumbnail.width, height: thumbnail.height, value: 0, minArea: minArea)
        }
        return TissueMask(mask: mask, width: thumbnail.width, height: thumbnail.height,
                          level0Width: level0Width, level0Height: level0Height, threshold: threshold)
    }

    /// A user-supplied mask image (any size; non-zero = tissue) resampled to a thumbnail grid.
    public static func fromUserMask(_ image: RGBImage, width: Int, height: Int, level0Width: Int, level0Height: Int) -> TissueMask {
        var mask = [UInt8](repeating: 0, count: width * height)
        for y in 0..<height {
            let sy = min(image.height - 1, y * image.height / height)
            for x in 0..<width {
                let sx = min(image.width - 1, x * image.width / width)
                let o = (sy * image.width + sx) * 3
                mask[y * width + x] = (image.pixels[o] | image.pixels[o + 1] | image.pixels[o + 2]) != 0 ? 1 : 0
            }
        }
        return TissueMask(mask: mask, width: width, height: height, level0Width: level0Width, level0Height: level0Height, threshold: nil)
    }

    static func clamp(_ v: Int, _ r: ClosedRange<Int>) -> Int { min(max(v, r.lowerBound), r.upperBound) }

    /// Otsu's threshold (Otsu 1979): the level maximising between-class variance of the histogram.
    public static func otsu(_ values: [UInt8]) -> Int {
        var hist = [Int](repeating: 0, count: 256)
        for v in values { hist[Int(v)] += 1 }
        let total = Double(values.count)
        guard total > 0 else { return 0 }
        var sumAll = 0.0
        for i in 0..<256 { sumAll += Double(i * hist[i]) }
        var sumB = 0.0, wB = 0.0, best = -1.0, threshold = 0
        for t in 0..<256 {
            wB += Double(hist[t])
            if wB == 0 { continue }
            let wF = total - wB
            if wF == 0 { break }
            sumB += Double(t * hist[t])
            let mB = sumB / wB, mF = (sumAll - sumB) / wF
            let between = wB * wF * (mB - mF) * (mB - mF)
            if between > best { best = between; threshold = t }
        }
        return threshold
    }

    /// Flips 4-connected regions of `value` smaller than `minArea` pixels. For background (value 0),
    /// regions touching the border are kept: they are the glass around the tissue, not holes.
    static func removeSmallRegions(_ mask: inout [UInt8], width: Int, height: Int, value: UInt8, minArea: Int) {
        var seen = [Bool](repeating: false, count: mask.count)
        var stack: [Int] = []
        var region: [Int] = []
        for start in 0..<mask.count where !seen[start] && mask[start] == value {
            stack.append(start)
            seen[start] = true
            region.removeAll(keepingCapacity: true)
            var touchesBorder = false
            while let p = stack.popLast() {
                region.append(p)
                let x = p % width, y = p / width
                if x == 0 || y == 0 || x == width - 1 || y == height - 1 { touchesBorder = true }
                if x > 0, !seen[p - 1], mask[p - 1] == value { seen[p - 1] = true; stack.append(p - 1) }
                if x < width - 1, !seen[p + 1], mask[p + 1] == value { seen[p + 1] = true; stack.append(p + 1) }
                if y > 0, !seen[p - width], mask[p - width] == value { seen[p - width] = true; stack.append(p - width) }
                if y < height - 1, !seen[p + width], mask[p + width] == value { seen[p + width] = true; stack.append(p + width) }
            }
            let keep = region.count >= minArea || (value == 0 && touchesBorder)
            if !keep { for p in region { mask[p] = 1 - value } }
        }
    }
}
