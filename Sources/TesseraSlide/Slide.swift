import CVipsShim
import Foundation
import TesseraCore

/// One pyramid level as Tessera reads it.
public struct SlideLevel: Codable, Sendable, Equatable {
    public var index: Int
    public var width: Int
    public var height: Int
    /// Level-0 pixels per pixel of this level.
    public var downsample: Double
}

/// How 16-bit (and float) samples become 8-bit.
public enum DepthConversion: String, Codable, Sendable, CaseIterable {
    /// value × 255 / 65535: keeps absolute intensities comparable between images.
    case scale
    /// Linear stretch of the image's own min…max (measured on the coarsest level) onto 0…255:
    /// what a microscopist expects for 8-bit data stored in 16 bits.
    case stretch
}

/// An opened slide or image: its levels, µm/px and metadata. Pixels are read on demand.
///
/// TIFF-family slides (SVS, generic pyramidal TIFF) are read page by page through libvips'
/// TIFF loader, which costs 3–4× less CPU per tile than the OpenSlide path; formats only
/// OpenSlide understands (NDPI, MRXS, SCN, BIF, VMS) go through OpenSlide. Plain images are one level.
public final class Slide: @unchecked Sendable {
    enum LevelSource: Sendable { case tiffPage(Int), openslide(Int), loader(String), whole }

    public let path: String
    /// libvips loader used for pixels ("tiffload", "openslideload", "pngload", ...).
    public let reader: String
    /// Scanner vendor when OpenSlide recognises the file ("aperio", "generic-tiff", ...).
    public let vendor: String?
    public let levels: [SlideLevel]
    public let resolution: Resolution
    public let properties: [String: String]
    /// Bit depth and band layout of the source before conversion to 8-bit RGB, e.g. "ushort×1".
    public let sourcePixelFormat: String
    let sources: [LevelSource]
    let isHighDepth: Bool

    init(path: String, reader: String, vendor: String?, levels: [SlideLevel], sources: [LevelSource],
         resolution: Resolution, properties: [String: String], sourcePixelFormat: String, isHighDepth: Bool) {
        self.path = path
        self.reader = reader
        self.vendor = vendor
        self.levels = levels
        self.sources = sources
        self.resolution = resolution
        self.properties = properties
        self.sourcePixelFormat = sourcePixelFormat
        self.isHighDepth = isHighDepth
    }

    public var width: Int { levels[0].width }
    public var height: Int { levels[0].height }

    /// Default for `open`'s `maxPixels`: 10¹¹ level-0 pixels, 5× the largest real whole-slide scans.
    public static let defaultMaxPixels = 100_000_000_000

    /// Opens a slide or image. Throws a `TesseraError` naming the file for anything unreadable, and
    /// for a level 0 of more than `maxPixels` pixels: the header is all that has been read then, so a
    /// decompression bomb (a small file declaring 10⁶ × 10⁶ pixels) is refused before anything is
    /// allocated or decoded.
    public static func open(path: String, maxPixels: Int = defaultMaxPixels) throws -> Slide {
        let slide = try openUnchecked(path: path)
        let (pixels, overflow) = slide.width.multipliedReportingOverflow(by: slide.height)
        if overflow || pixels > maxPixels || slide.width <= 0 || slide.height <= 0 {
            throw TesseraError(.tooLarge, path: path, "declares \(slide.width) × \(slide.height) pixels, more than the limit of \(maxPixels)",
                               hint: "a damaged header or a decompression bomb; if the slide is real, raise --max-pixels (tile.max_pixels)")
        }
        return slide
    }

    private static func openUnchecked(path: String) throws -> Slide {
        try VipsRuntime.start()
        try checkFile(path)
        FaultInjection.maybeHang(.open, path: path)
        // JPEG and PNG are recognised by their first bytes: asking every loader (OpenSlide's
        // vendor detection included) costs more than decoding a small microscopy image.
        switch magic(path) {
        case .jpeg: return try openPlain(path: path, loader: "jpegload")
        case .png: return try openPlain(path: path, loader: "pngload")
        case .other: break
        }
        guard let loaderC = tsr_find_loader(path) else {
            throw TesseraError(.unsupportedFormat, path: path, "not a format libvips or OpenSlide can read",
                               hint: "supported: SVS, NDPI, MRXS, SCN, BIF, VMS, pyramidal TIFF, PNG, JPEG, TIFF; check the file is not truncated or mislabelled")
        }
        // libvips names loaders by class ("VipsForeignLoadOpenslideFile"); keep the short operation name.
        let loader = shortLoaderName(String(cString: loaderC))
        if loader == "magickload" {
            // Only ImageMagick claims it (it is blocked): a damaged or truncated slide, or a foreign format.
            throw TesseraError(.corrupt, path: path, "not readable as a slide or image (no libvips or OpenSlide loader accepts it; truncated or damaged?)",
                               hint: "check the file's size and checksum against the original, or re-export it")
        }
        if loader == "openslideload" {
            return try openWithOpenSlide(path: path)
        }
        return try openPlain(path: path, loader: loader)
    }

    static func shortLoaderName(_ className: String) -> String {
        var name = className
        for prefix in ["VipsForeignLoad"] where name.hasPrefix(prefix) { name.removeFirst(prefix.count) }
        for suffix in ["File", "Source", "Buffer"] where name.hasSuffix(suffix) { name.removeLast(suffix.count) }
        return name.lowercased() + "load"
    }

    static func checkFile(_ path: String) throws {
        var st = stat()
        guard stat(path, &st) == 0 else {
            let reason = String(cString: strerror(errno))
            if errno == ENOENT && path.contains("\u{FFFD}") {
                // Listed from a folder, a name that is not valid UTF-8 comes back with U+FFFD in place of
                // its bytes, and that name does not exist: say so rather than "no such file".
                throw TesseraError(.unreadable, path: path, "the file name is not valid UTF-8 (shown with �), so it cannot be opened by name",
                                   hint: "rename the file to a UTF-8 name (e.g. `convmv -f latin1 -t utf8`)")
            }
            throw TesseraError(.unreadable, path: path, "cannot open: \(reason)")
        }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            throw TesseraError(.unsupportedFormat, path: path, "is a directory, not a slide",
                               hint: "MIRAX (.mrxs) slides are opened by their .mrxs file, not their data folder")
        }
        if (st.st_mode & S_IFMT) != S_IFREG {
            throw TesseraError(.unsupportedFormat, path: path, "is not a regular file (a pipe, socket or device)",
                               hint: "copy the slide to a regular file")
        }
        if st.st_size == 0 { throw TesseraError(.corrupt, path: path, "file is empty (0 bytes)", hint: "re-copy the file") }
        guard access(path, R_OK) == 0 else {
            throw TesseraError(.unreadable, path: path, "no permission to read", hint: "check the file's permissions")
        }
    }

    private static func fieldMap(_ image: VipsImageRef) -> [String: String] {
        var map: [String: String] = [:]
        for name in image.fieldNames where !name.hasSuffix("-data") && name != "filename" {
            if let v = image.string(name) { map[name] = v }
        }
        return map
    }

    private static func openWithOpenSlide(path: String) throws -> Slide {
        let base = try VipsImageRef.make(path: path, "opening with OpenSlide") { tsr_open_openslide_level(path, 0, $0) }
        let fields = fieldMap(base)
        let count = Int(fields["openslide.level-count"] ?? "1") ?? 1
        var levels: [SlideLevel] = []
        for i in 0..<count {
            guard let w = Int(fields["openslide.level[\(i)].width"] ?? ""),
                  let h = Int(fields["openslide.level[\(i)].height"] ?? ""),
                  let d = Double(fields["openslide.level[\(i)].downsample"] ?? "") else {
                throw TesseraError(.corrupt, path: path, "OpenSlide reports level \(i) without a size")
            }
            levels.append(SlideLevel(index: i, width: w, height: h, downsample: d))
        }
        let resolution = Resolution.find(fields: fields, xresPerMM: nil)
        let vendor = fields["openslide.vendor"]
        // Prefer the TIFF loader page by page when every level is a page of the same size.
        if isTIFF(path), let pages = tiffPages(path: path, matching: levels) {
            return Slide(path: path, reader: "tiffload", vendor: vendor, levels: levels, sources: pages.map { .tiffPage($0) },
                         resolution: resolution, properties: fields, sourcePixelFormat: "uchar×3", isHighDepth: false)
        }
        return Slide(path: path, reader: "openslideload", vendor: vendor, levels: levels,
                     sources: (0..<count).map { .openslide($0) }, resolution: resolution, properties: fields,
                     sourcePixelFormat: "uchar×4", isHighDepth: false)
    }

    /// What a file's first bytes say it is.
    public enum Magic: Sendable { case jpeg, png, other }

    public static func magic(_ path: String) -> Magic {
        guard let h = FileHandle(forReadingAtPath: path) else { return .other }
        defer { try? h.close() }
        let b = [UInt8]((try? h.read(upToCount: 8)) ?? Data())
        if b.count >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF { return .jpeg }
        if b == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] { return .png }
        return .other
    }

    static func isTIFF(_ path: String) -> Bool {
        guard let h = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? h.close() }
        let magic = [UInt8]((try? h.read(upToCount: 4)) ?? Data())
        return magic == [0x49, 0x49, 0x2A, 0x00] || magic == [0x4D, 0x4D, 0x00, 0x2A]
            || magic == [0x49, 0x49, 0x2B, 0x00] || magic == [0x4D, 0x4D, 0x00, 0x2B]
    }

    /// Maps each OpenSlide level to a TIFF page of identical size whose pixels the TIFF loader decodes
    /// (checked by reading a small patch); nil when any level has no such page.
    private static func tiffPages(path: String, matching levels: [SlideLevel]) -> [Int]? {
        guard let first = try? VipsImageRef.make(path: path, "tiffload", { tsr_open_tiff_page(path, 0, $0) }) else {
            _ = VipsRuntime.takeError(); return nil
        }
        let n = Int(tsr_n_pages(first.pointer))
        var sizes: [(Int, Int, Int)] = []  // page, w, h
        for p in 0..<n {
            guard let im = try? VipsImageRef.make(path: path, "tiffload", { tsr_open_tiff_page(path, Int32(p), $0) }) else {
                _ = VipsRuntime.takeError(); continue
            }
            sizes.append((p, im.width, im.height))
        }
        var pages: [Int] = []
        for level in levels {
            guard let page = sizes.first(where: { $0.1 == level.width && $0.2 == level.height })?.0 else { return nil }
            // The TIFF loader cannot decode some vendor compressions (Aperio JPEG 2000): fall back then.
            guard let im = try? VipsImageRef.make(path: path, "tiffload", { tsr_open_tiff_page(path, Int32(page), $0) }),
                  let rgb = try? rgb8(im, path: path, depth: nil),
                  let reader = try? VipsRegionReader(rgb),
                  (try? reader.read(x: 0, y: 0, width: min(16, level.width), height: min(16, level.height), path: path)) != nil
            else { _ = VipsRuntime.takeError(); return nil }
            pages.append(page)
        }
        return pages
    }

    private static func openPlain(path: String, loader: String) throws -> Slide {
        let isTiff = loader == "tiffload"
        let first = try VipsImageRef.make(path: path, "opening") {
            isTiff ? tsr_open_tiff_page(path, 0, $0) : (loader == "jpegload" || loader == "pngload") ? tsr_open_with(loader, path, $0) : tsr_open_default(path, $0)
        }
        let fields = fieldMap(first)
        let hasResolutionTag = fields["resolution-unit"] != nil
        let xres = Double(tsr_xres(first.pointer))
        let resolution = Resolution.find(fields: fields, xresPerMM: hasResolutionTag ? xres : nil)
        let format = Int(tsr_format(first.pointer))
        let highDepth = format != 0 && format != 1  // VIPS_FORMAT_UCHAR = 0, CHAR = 1
        let formatName = ["uchar", "char", "ushort", "short", "uint", "int", "float", "complex", "double", "dpcomplex"]
        let pixelFormat = "\(format >= 0 && format < formatName.count ? formatName[format] : "?")×\(first.bands)"

        var levels = [SlideLevel(index: 0, width: first.width, height: first.height, downsample: 1)]
        var sources: [LevelSource] = [isTiff ? .tiffPage(0) : (loader == "jpegload" || loader == "pngload") ? .loader(loader) : .whole]
        if isTiff {
            // A multi-page TIFF whose pages shrink steadily is a pyramid OpenSlide did not claim.
            let n = Int(tsr_n_pages(first.pointer))
            var prev = (first.width, first.height)
            for p in 1..<max(n, 1) {
                guard let im = try? VipsImageRef.make(path: path, "tiffload", { tsr_open_tiff_page(path, Int32(p), $0) }) else {
                    _ = VipsRuntime.takeError(); break
                }
                let ratioW = Double(first.width) / Double(im.width)
                let ratioH = Double(first.height) / Double(im.height)
                guard im.width < prev.0, im.height < prev.1, abs(ratioW - ratioH) / ratioW < 0.05, im.bands == first.bands else { break }
                levels.append(SlideLevel(index: levels.count, width: im.width, height: im.height, downsample: (ratioW + ratioH) / 2))
                sources.append(.tiffPage(p))
                prev = (im.width, im.height)
            }
        }
        return Slide(path: path, reader: loader, vendor: nil, levels: levels, sources: sources, resolution: resolution,
                     properties: fields, sourcePixelFormat: pixelFormat, isHighDepth: highDepth)
    }

    /// The raw (unconverted) image of a level.
    func rawLevel(_ i: Int) throws -> VipsImageRef {
        switch sources[i] {
        case .tiffPage(let p): return try VipsImageRef.make(path: path, "reading TIFF page \(p)") { tsr_open_tiff_page(path, Int32(p), $0) }
        case .openslide(let l): return try VipsImageRef.make(path: path, "reading level \(l)") { tsr_open_openslide_level(path, Int32(l), $0) }
        case .loader(let name): return try VipsImageRef.make(path: path, "opening") { tsr_open_with(name, path, $0) }
        case .whole: return try VipsImageRef.make(path: path, "opening") { tsr_open_default(path, $0) }
        }
    }

    /// The linear map (scale, offset) that brings this slide's samples to 8 bits.
    func depthMap(_ conversion: DepthConversion) throws -> (scale: Double, offset: Double) {
        guard isHighDepth else { return (1, 0) }
        switch conversion {
        case .scale: return (255.0 / 65535.0, 0)
        case .stretch:
            let coarsest = try rawLevel(levels.count - 1)
            var lo = 0.0, hi = 0.0
            if tsr_minmax(coarsest.pointer, &lo, &hi) != 0 {
                throw TesseraError(.corrupt, path: path, "measuring the intensity range failed: \(VipsRuntime.takeError())")
            }
            return hi > lo ? (255.0 / (hi - lo), -lo * 255.0 / (hi - lo)) : (1, -lo)
        }
    }

    /// A level as 3-band 8-bit sRGB: 16-bit mapped by `depth`, grey replicated, alpha flattened onto white.
    func rgbLevel(_ i: Int, depth: (scale: Double, offset: Double)) throws -> VipsImageRef {
        try Self.rgb8(try rawLevel(i), path: path, depth: depth)
    }

    static func rgb8(_ image: VipsImageRef, path: String, depth: (scale: Double, offset: Double)?) throws -> VipsImageRef {
        let d = depth ?? (255.0 / 65535.0, 0)
        return try VipsImageRef.make(path: path, "converting to 8-bit RGB") { tsr_to_rgb8(image.pointer, $0, d.scale, d.offset) }
    }
}

extension Slide {
    /// Reads a rectangle of a level as 8-bit RGB (converted as tiling converts it). For checks and
    /// one-off reads; tiling uses `PreparedSlide`/`TileReader`, which reuse decoded strips.
    public func readRegion(level: Int = 0, x: Int, y: Int, width: Int, height: Int, depth: DepthConversion = .stretch) throws -> RGBImage {
        let image = try rgbLevel(level, depth: try depthMap(depth))
        return try VipsRegionReader(image).read(x: x, y: y, width: width, height: height, path: path)
    }
}
