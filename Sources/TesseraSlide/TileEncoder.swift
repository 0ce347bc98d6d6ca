import CVipsShim
import Foundation
import TesseraCore

/// How tiles are stored in shards.
public enum TileFormat: String, Codable, Sendable, CaseIterable {
    case jpg, png, rgb8

    /// The file extension used in shards (WebDataset decodes by extension).
    public var fileExtension: String { rawValue }
}

/// Encodes RGB tiles with libvips' codecs. Output bytes depend only on pixels and settings.
public struct TileEncoder: Sendable {
    public var format: TileFormat
    public var quality: Int
    public init(format: TileFormat, quality: Int = 90) {
        self.format = format
        self.quality = quality
    }

    public func encode(_ image: RGBImage) throws -> [UInt8] {
        try encode(image, x: 0, y: 0, width: image.width, height: image.height)
    }

    /// Encodes the rectangle at (x, y) of `image` without copying it out first.
    public func encode(_ image: RGBImage, x: Int, y: Int, width: Int, height: Int) throws -> [UInt8] {
        guard x >= 0, y >= 0, width > 0, height > 0, x + width <= image.width, y + height <= image.height else {
            throw TesseraError(.io, "tile rectangle (\(x), \(y)) \(width)×\(height) lies outside its \(image.width)×\(image.height) source")
        }
        switch format {
        case .rgb8:
            return image.crop(x: x, y: y, width: width, height: height).pixels
        case .jpg:
            var out: UnsafeMutablePointer<UInt8>?
            var len = 0
            var message = [CChar](repeating: 0, count: 200)
            let rc = image.pixels.withUnsafeBufferPointer { p in
                // No chroma subsampling: pathology colour detail matters more than bytes.
                tsr_jpeg_encode_rgb(p.baseAddress! + (y * image.width + x) * 3, Int32(width), Int32(height), Int32(image.width * 3),
                                    Int32(quality), 0, &out, &len, &message, message.count)
            }
            guard rc == 0, let out else { throw TesseraError(.io, "encoding a tile as JPEG failed: \(String(cString: message))") }
            defer { free(out) }
            return Array(UnsafeBufferPointer(start: out, count: len))
        case .png:
            // libvips' PNG saver: start libvips first, as a views run whose tiles are all JPEG (decoded
            // without libvips) otherwise reached it uninitialized ("class pngsave_buffer not found").
            try VipsRuntime.start()
            let tile = (x == 0 && y == 0 && width == image.width && height == image.height) ? image : image.crop(x: x, y: y, width: width, height: height)
            var out: UnsafeMutableRawPointer?
            var len = 0
            let rc = tile.pixels.withUnsafeBufferPointer { p in
                tsr_png_encode(p.baseAddress, Int32(tile.width), Int32(tile.height), 3, 6, &out, &len)
            }
            guard rc == 0, let out else { throw TesseraError(.io, "encoding a tile as PNG failed: \(VipsRuntime.takeError())") }
            defer { tsr_free(out) }
            return Array(UnsafeRawBufferPointer(start: out, count: len))
        }
    }
}

/// Decodes encoded image bytes (JPEG, PNG, TIFF...) to RGB, for checks and readers.
public enum ImageDecoder {
    public static func decodeRGB(_ bytes: [UInt8]) throws -> RGBImage {
        if bytes.count > 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 { return try decodeJPEG(bytes) }
        try VipsRuntime.start()
        var pixels: UnsafeMutablePointer<UInt8>?
        var w: Int32 = 0, h: Int32 = 0, b: Int32 = 0
        let rc = bytes.withUnsafeBufferPointer { tsr_decode($0.baseAddress, $0.count, &pixels, &w, &h, &b) }
        guard rc == 0, let pixels else { throw TesseraError(.corrupt, "decoding image bytes failed: \(VipsRuntime.takeError())") }
        defer { tsr_free(pixels) }
        let n = Int(w) * Int(h)
        var rgb = [UInt8](repeating: 0, count: n * 3)
        let bands = Int(b)
        for i in 0..<n {
            for c in 0..<3 { rgb[3 * i + c] = pixels[i * bands + (bands >= 3 ? c : 0)] }
        }
        return RGBImage(width: Int(w), height: Int(h), pixels: rgb)
    }

    /// JPEG through libjpeg-turbo directly: libvips' per-image set-up would cost more than the
    /// decode of a 256² tile. 3-component JPEGs only (what Tessera writes and copies).
    static func decodeJPEG(_ bytes: [UInt8]) throws -> RGBImage {
        var out: UnsafeMutablePointer<UInt8>?
        var w: Int32 = 0, h: Int32 = 0
        var message = [CChar](repeating: 0, count: 200)
        let rc = bytes.withUnsafeBufferPointer { tsr_jpeg_decode_rgb($0.baseAddress, $0.count, &out, &w, &h, &message, message.count) }
        guard rc == 0, let out else { throw TesseraError(.corrupt, "decoding JPEG failed: \(String(cString: message))") }
        defer { free(out) }
        return RGBImage(width: Int(w), height: Int(h), pixels: Array(UnsafeBufferPointer(start: out, count: Int(w) * Int(h) * 3)))
    }

    /// Reads any image file libvips opens, converted to 8-bit RGB as tiling would.
    public static func readRGB(path: String) throws -> RGBImage {
        let slide = try Slide.open(path: path)
        return try slide.rgbLevel(0, depth: try slide.depthMap(.scale)).renderRGB(path: path)
    }
}

/// Writes a PNG file from an RGB raster.
public enum PNGWriter {
    /// `compression` 0–9: 1 writes QC thumbnails several times faster than the default 6.
    public static func write(_ image: RGBImage, to path: String, compression: Int = 6) throws {
        try VipsRuntime.start()
        let rc = image.pixels.withUnsafeBufferPointer { tsr_png_save($0.baseAddress, Int32(image.width), Int32(image.height), 3, Int32(compression), path) }
        if rc != 0 { throw TesseraError(.io, path: path, "writing PNG failed: \(VipsRuntime.takeError())") }
    }
}
