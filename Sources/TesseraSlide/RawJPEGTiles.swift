import CVipsShim
import Foundation
import TesseraCore

/// Copies compressed JPEG tiles out of a TIFF page without decoding them (libtiff raw reads plus
/// the page's JPEG tables), for grids that coincide with the slide's own tile grid.
/// One instance per thread: libtiff handles are not thread-safe.
final class RawJPEGTiles {
    private let handle: OpaquePointer
    private let path: String
    let tileWidth: Int
    let tileHeight: Int

    /// Layout facts of a TIFF page that decide whether tiles can pass through.
    struct Layout {
        var tileWidth: Int, tileHeight: Int, compression: Int, photometric: Int, samplesPerPixel: Int
        /// JPEG-compressed, tiled, 3-sample RGB or YCbCr.
        var isPassThroughCapable: Bool {
            compression == 7 && tileWidth > 0 && samplesPerPixel == 3 && (photometric == 2 || photometric == 6)
        }
    }

    init(path: String, page: Int) throws {
        guard let h = tsr_tiff_open(path, Int32(page)) else {
            throw TesseraError(.unreadable, path: path, "libtiff cannot open page \(page): \(String(cString: tsr_tiff_last_error()))")
        }
        handle = h
        self.path = path
        let l = Self.layout(h)
        tileWidth = l.tileWidth
        tileHeight = l.tileHeight
    }
    deinit { tsr_tiff_close(handle) }

    static func layout(_ h: OpaquePointer) -> Layout {
        var w: Int32 = 0, ht: Int32 = 0, tw: Int32 = 0, th: Int32 = 0, comp: Int32 = 0, photo: Int32 = 0, spp: Int32 = 0
        tsr_tiff_info(h, &w, &ht, &tw, &th, &comp, &photo, &spp)
        return Layout(tileWidth: Int(tw), tileHeight: Int(th), compression: Int(comp), photometric: Int(photo), samplesPerPixel: Int(spp))
    }

    /// The page's layout, or nil when libtiff cannot read it.
    static func layout(path: String, page: Int) -> Layout? {
        guard let h = tsr_tiff_open(path, Int32(page)) else { return nil }
        defer { tsr_tiff_close(h) }
        return layout(h)
    }

    /// The tile whose top-left pixel is (x, y) (a multiple of the tile size) as a standalone JPEG.
    func jpeg(x: Int, y: Int) throws -> [UInt8] {
        var out: UnsafeMutablePointer<UInt8>?
        var len = 0
        guard tsr_tiff_jpeg_tile(handle, Int32(x / tileWidth), Int32(y / tileHeight), &out, &len) == 0, let out else {
            throw TesseraError(.corrupt, path: path, "reading the compressed tile at (\(x), \(y)) failed: \(String(cString: tsr_tiff_last_error()))")
        }
        defer { free(out) }
        return Array(UnsafeBufferPointer(start: out, count: len))
    }
}
