import Foundation
import TesseraCore
import TesseraSlide

/// The quality-control picture of a slide: its thumbnail with background dimmed and tinted blue,
/// and every written tile outlined, so a user sees at a glance what was extracted.
public enum QCOverlay {
    public static func render(_ p: PreparedSlide, written: [Int]) -> RGBImage {
        var img = p.thumbnail
        let w = img.width, h = img.height
        let mask = p.mask
        img.pixels.withUnsafeMutableBufferPointer { px in
            for y in 0..<h {
                let my = min(mask.height - 1, y * mask.height / h)
                for x in 0..<w {
                    let mx = min(mask.width - 1, x * mask.width / w)
                    if mask.mask[my * mask.width + mx] == 0 {
                        let o = (y * w + x) * 3
                        px[o] = UInt8(Int(px[o]) / 2)
                        px[o + 1] = UInt8(Int(px[o + 1]) / 2)
                        px[o + 2] = UInt8(min(255, Int(px[o + 2]) / 2 + 90))
                    }
                }
            }
            let sx = Double(w) / Double(p.slide.width), sy = Double(h) / Double(p.slide.height)
            let foot = Double(p.grid.size) * p.plan.level0PerPixel
            for i in written {
                let pos = p.positions[i]
                let x0 = Int(Double(pos.level0X) * sx), y0 = Int(Double(pos.level0Y) * sy)
                let x1 = min(w - 1, Int((Double(pos.level0X) + foot) * sx) - 1), y1 = min(h - 1, Int((Double(pos.level0Y) + foot) * sy) - 1)
                guard x1 > x0, y1 > y0 else {
                    if x0 < w && y0 < h { set(px, w, x0, y0) }
                    continue
                }
                for x in x0...x1 { set(px, w, x, y0); set(px, w, x, y1) }
                for y in y0...y1 { set(px, w, x0, y); set(px, w, x1, y) }
            }
        }
        return img
    }

    @inline(__always) private static func set(_ px: UnsafeMutableBufferPointer<UInt8>, _ w: Int, _ x: Int, _ y: Int) {
        let o = (y * w + x) * 3
        px[o] = 255; px[o + 1] = 220; px[o + 2] = 0
    }
}
