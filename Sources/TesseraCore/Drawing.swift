/// An 8-bit RGB colour for drawing on `RGBImage`.
public struct RGBColor: Sendable, Equatable, Hashable {
    public var r: UInt8, g: UInt8, b: UInt8
    public init(_ r: UInt8, _ g: UInt8, _ b: UInt8) { self.r = r; self.g = g; self.b = b }

    public static let black = RGBColor(0, 0, 0)
    public static let white = RGBColor(255, 255, 255)
    public static let gray = RGBColor(128, 128, 128)
    public static let lightGray = RGBColor(220, 220, 220)

    /// The straight blend a + (b − a)·t for t in [0, 1] (clamped).
    public static func mix(_ a: RGBColor, _ b: RGBColor, _ t: Double) -> RGBColor {
        let u = min(1, max(0, t.isFinite ? t : 0))
        func ch(_ x: UInt8, _ y: UInt8) -> UInt8 { UInt8((Double(x) + (Double(y) - Double(x)) * u).rounded()) }
        return RGBColor(ch(a.r, b.r), ch(a.g, b.g), ch(a.b, b.b))
    }
}

/// Drawing primitives for figures. Everything clips to the image: a shape partly or wholly outside
/// draws only what falls inside and never traps.
extension RGBImage {
    public func pixel(x: Int, y: Int) -> RGBColor {
        let i = (y * width + x) * 3
        return RGBColor(pixels[i], pixels[i + 1], pixels[i + 2])
    }

    public mutating func setPixel(x: Int, y: Int, _ color: RGBColor) {
        guard x >= 0, y >= 0, x < width, y < height else { return }
        let i = (y * width + x) * 3
        pixels[i] = color.r; pixels[i + 1] = color.g; pixels[i + 2] = color.b
    }

    public mutating func fillRect(x: Int, y: Int, width w: Int, height h: Int, _ color: RGBColor) {
        let x0 = max(0, x), y0 = max(0, y), x1 = min(width, x + w), y1 = min(height, y + h)
        guard x0 < x1, y0 < y1 else { return }
        for row in y0..<y1 {
            for col in x0..<x1 {
                let i = (row * width + col) * 3
                pixels[i] = color.r; pixels[i + 1] = color.g; pixels[i + 2] = color.b
            }
        }
    }

    /// A line from (x0, y0) to (x1, y1) by Bresenham's algorithm, `thickness` pixels square pen.
    public mutating func drawLine(x0: Int, y0: Int, x1: Int, y1: Int, _ color: RGBColor, thickness: Int = 1) {
        let dx = abs(x1 - x0), dy = -abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1
        var (x, y, err) = (x0, y0, dx + dy)
        let half = (thickness - 1) / 2
        while true {
            if thickness <= 1 { setPixel(x: x, y: y, color) } else { fillRect(x: x - half, y: y - half, width: thickness, height: thickness, color) }
            if x == x1 && y == y1 { break }
            let e2 = 2 * err
            if e2 >= dy { err += dy; x += sx }
            if e2 <= dx { err += dx; y += sy }
        }
    }
}
