import Foundation
import TesseraCore

/// Pictures for checking stain work by eye: panels side by side on white, and colour swatches of
/// stain vectors (the colour of one unit of each stain: 255·exp(−v)).
public enum StainFigure {
    /// source | reference (if any) | normalized; below, swatches: the source's H and E (left pair)
    /// and the target's H and E (right pair).
    public static func render(source: RGBImage, reference: RGBImage?, normalized: RGBImage,
                              sourceTarget: StainTarget?, target: StainTarget) -> RGBImage {
        let panels = [source] + (reference.map { [$0] } ?? []) + [normalized]
        let top = row(panels, gap: 8)
        var swatches: [RGBImage] = []
        for t in [sourceTarget, target] {
            for v in t?.stainVectors ?? [] { swatches.append(swatch(v, side: 48)) }
        }
        guard !swatches.isEmpty else { return top }
        return column([top, row(swatches, gap: 8)], gap: 8)
    }

    /// Images in rows of `columns`.
    public static func grid(_ images: [RGBImage], columns: Int) -> RGBImage {
        var rows: [RGBImage] = []
        var i = 0
        while i < images.count {
            rows.append(row(Array(images[i..<min(images.count, i + columns)]), gap: 4))
            i += columns
        }
        return column(rows, gap: 4)
    }

    static func swatch(_ v: [Double], side: Int) -> RGBImage {
        let c = v.map { UInt8(max(0, min(255, (255 * exp(-$0)).rounded()))) }
        var px = [UInt8](repeating: 0, count: side * side * 3)
        for i in 0..<(side * side) { px[3 * i] = c[0]; px[3 * i + 1] = c[1]; px[3 * i + 2] = c[2] }
        return RGBImage(width: side, height: side, pixels: px)
    }

    static func row(_ images: [RGBImage], gap: Int) -> RGBImage {
        let w = images.reduce(0) { $0 + $1.width } + gap * max(0, images.count - 1)
        let h = images.map(\.height).max() ?? 0
        var canvas = RGBImage(width: max(1, w), height: max(1, h), pixels: [UInt8](repeating: 255, count: max(1, w) * max(1, h) * 3))
        var x = 0
        for im in images { paste(im, into: &canvas, x: x, y: 0); x += im.width + gap }
        return canvas
    }

    static func column(_ images: [RGBImage], gap: Int) -> RGBImage {
        let h = images.reduce(0) { $0 + $1.height } + gap * max(0, images.count - 1)
        let w = images.map(\.width).max() ?? 0
        var canvas = RGBImage(width: max(1, w), height: max(1, h), pixels: [UInt8](repeating: 255, count: max(1, w) * max(1, h) * 3))
        var y = 0
        for im in images { paste(im, into: &canvas, x: 0, y: y); y += im.height + gap }
        return canvas
    }

    static func paste(_ im: RGBImage, into canvas: inout RGBImage, x: Int, y: Int) {
        for r in 0..<im.height {
            let src = r * im.width * 3, dst = ((y + r) * canvas.width + x) * 3
            canvas.pixels.replaceSubrange(dst..<(dst + im.width * 3), with: im.pixels[src..<(src + im.width * 3)])
        }
    }
}
