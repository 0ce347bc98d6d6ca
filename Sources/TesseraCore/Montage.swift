/// Images laid out on white for pictures people look at (previews, figures).
public enum Montage {
    public static func row(_ images: [RGBImage], gap: Int = 4) -> RGBImage {
        let w = images.reduce(0) { $0 + $1.width } + gap * max(0, images.count - 1)
        let h = images.map(\.height).max() ?? 0
        var canvas = blank(w, h)
        var x = 0
        for im in images { paste(im, into: &canvas, x: x, y: 0); x += im.width + gap }
        return canvas
    }

    public static func column(_ images: [RGBImage], gap: Int = 4) -> RGBImage {
        let h = images.reduce(0) { $0 + $1.height } + gap * max(0, images.count - 1)
        let w = images.map(\.width).max() ?? 0
        var canvas = blank(w, h)
        var y = 0
        for im in images { paste(im, into: &canvas, x: 0, y: y); y += im.height + gap }
        return canvas
    }

    /// Images in rows of `columns`.
    public static func grid(_ images: [RGBImage], columns: Int, gap: Int = 4) -> RGBImage {
        var rows: [RGBImage] = []
        var i = 0
        while i < images.count {
            rows.append(row(Array(images[i..<min(images.count, i + max(1, columns))]), gap: gap))
            i += max(1, columns)
        }
        return column(rows, gap: gap)
    }

    static func blank(_ w: Int, _ h: Int) -> RGBImage {
        RGBImage(width: max(1, w), height: max(1, h), pixels: [UInt8](repeating: 255, count: max(1, w) * max(1, h) * 3))
    }

    public static func paste(_ im: RGBImage, into canvas: inout RGBImage, x: Int, y: Int) {
        for r in 0..<im.height where y + r < canvas.height {
            let n = min(im.width, canvas.width - x) * 3
            guard n > 0 else { return }
            let src = r * im.width * 3, dst = ((y + r) * canvas.width + x) * 3
            canvas.pixels.replaceSubrange(dst..<(dst + n), with: im.pixels[src..<(src + n)])
        }
    }
}
