import Foundation
import TesseraCore

/// Line charts for loss and learning-rate curves: axes with "nice" tick values (1, 2 or 5 × 10ⁿ),
/// light grid lines, a title, axis labels and a legend, all in the 5×7 bitmap font. Non-finite points
/// (a diverged loss) are skipped and break the line rather than flattening the scale.
public enum LineChart {
    public struct Series: Sendable {
        public var name: String
        public var points: [(x: Double, y: Double)]
        public var color: RGBColor
        public init(name: String, points: [(x: Double, y: Double)], color: RGBColor) {
            self.name = name
            self.points = points
            self.color = color
        }
    }

    /// Distinct colours for series drawn without a chosen colour (matplotlib's first "tab10" hues).
    public static let palette = [RGBColor(31, 119, 180), RGBColor(255, 127, 14), RGBColor(44, 160, 44),
                                 RGBColor(214, 39, 40), RGBColor(148, 103, 189), RGBColor(140, 86, 75)]

    public static func render(series: [Series], title: String, xLabel: String, yLabel: String,
                              width: Int = 800, height: Int = 480) -> RGBImage {
        var image = RGBImage(width: max(width, 160), height: max(height, 120), fill: 255)
        let finite = series.flatMap(\.points).filter { $0.x.isFinite && $0.y.isFinite }
        let (xTicks, xRange) = ticks(finite.map(\.x))
        let (yTicks, yRange) = ticks(finite.map(\.y))
        let yTickLabels = yTicks.map(format)
        let pad = 10, tick = 4
        let left = pad + BitmapFont.glyphHeight + pad + (yTickLabels.map { BitmapFont.width(of: $0) }.max() ?? 0) + tick + 2
        let top = pad + BitmapFont.height(scale: 2) + pad
        let bottom = tick + 2 + BitmapFont.glyphHeight + pad + BitmapFont.glyphHeight + pad
        let right = pad + BitmapFont.width(of: format(xTicks.last ?? 0)) / 2
        let plotW = max(1, image.width - left - right), plotH = max(1, image.height - top - bottom)
        func px(_ x: Double) -> Int { left + Int(((x - xRange.lowerBound) / (xRange.upperBound - xRange.lowerBound) * Double(plotW)).rounded()) }
        func py(_ y: Double) -> Int { top + plotH - Int(((y - yRange.lowerBound) / (yRange.upperBound - yRange.lowerBound) * Double(plotH)).rounded()) }

        image.drawText(title, x: (image.width - BitmapFont.width(of: title, scale: 2)) / 2, y: pad, color: .black, scale: 2)
        image.drawText(xLabel, x: left + (plotW - BitmapFont.width(of: xLabel)) / 2, y: image.height - pad - BitmapFont.glyphHeight, color: .black)
        image.drawText(yLabel, x: pad, y: top + (plotH + BitmapFont.width(of: yLabel)) / 2, color: .black, vertical: true)
        for t in xTicks {
            let x = px(t), label = format(t)
            image.drawLine(x0: x, y0: top, x1: x, y1: top + plotH, .lightGray)
            image.drawLine(x0: x, y0: top + plotH, x1: x, y1: top + plotH + tick, .black)
            image.drawText(label, x: x - BitmapFont.width(of: label) / 2, y: top + plotH + tick + 2, color: .black)
        }
        for (t, label) in zip(yTicks, yTickLabels) {
            let y = py(t)
            image.drawLine(x0: left, y0: y, x1: left + plotW, y1: y, .lightGray)
            image.drawLine(x0: left - tick, y0: y, x1: left, y1: y, .black)
            image.drawText(label, x: left - tick - 2 - BitmapFont.width(of: label), y: y - BitmapFont.glyphHeight / 2, color: .black)
        }
        image.drawLine(x0: left, y0: top, x1: left, y1: top + plotH, .black)
        image.drawLine(x0: left, y0: top + plotH, x1: left + plotW, y1: top + plotH, .black)

        for s in series {
            var previous: (Int, Int)?
            for p in s.points {
                guard p.x.isFinite && p.y.isFinite else { previous = nil; continue }
                let point = (px(p.x), py(p.y))
                if let q = previous { image.drawLine(x0: q.0, y0: q.1, x1: point.0, y1: point.1, s.color, thickness: 2) }
                else { image.fillRect(x: point.0 - 1, y: point.1 - 1, width: 2, height: 2, s.color) }
                previous = point
            }
        }
        drawLegend(series, into: &image, right: left + plotW - 6, top: top + 6)
        return image
    }

    /// Names with colour swatches in a boxed list at the plot's top-right corner.
    private static func drawLegend(_ series: [Series], into image: inout RGBImage, right: Int, top: Int) {
        guard !series.isEmpty else { return }
        let line = BitmapFont.glyphHeight + 6, swatch = 14
        let boxW = 6 + swatch + 4 + (series.map { BitmapFont.width(of: $0.name) }.max() ?? 0) + 6
        let boxH = series.count * line + 6
        let x0 = right - boxW
        image.fillRect(x: x0, y: top, width: boxW, height: boxH, .white)
        image.drawLine(x0: x0, y0: top, x1: right, y1: top, .gray)
        image.drawLine(x0: x0, y0: top + boxH, x1: right, y1: top + boxH, .gray)
        image.drawLine(x0: x0, y0: top, x1: x0, y1: top + boxH, .gray)
        image.drawLine(x0: right, y0: top, x1: right, y1: top + boxH, .gray)
        for (i, s) in series.enumerated() {
            let y = top + 6 + i * line
            image.fillRect(x: x0 + 6, y: y + BitmapFont.glyphHeight / 2 - 1, width: swatch, height: 3, s.color)
            image.drawText(s.name, x: x0 + 6 + swatch + 4, y: y, color: .black)
        }
    }

    /// Tick values covering `values` at a step of 1, 2 or 5 × 10ⁿ (about five ticks), and the axis
    /// range: the outermost ticks, so every point lies inside the plot.
    static func ticks(_ values: [Double]) -> ([Double], ClosedRange<Double>) {
        var lo = values.min() ?? 0, hi = values.max() ?? 1
        if lo == hi { let d = lo == 0 ? 1 : abs(lo) * 0.1; lo -= d; hi += d }
        let raw = (hi - lo) / 5
        let magnitude = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? 10 * magnitude
        let first = floor(lo / step), last = ceil(hi / step)
        let ticks = stride(from: first, through: last, by: 1).map { $0 * step }
        return (ticks, (first * step)...(last * step))
    }

    /// A short tick label: up to four significant digits, no "-0".
    static func format(_ v: Double) -> String {
        let s = String(format: "%.4g", abs(v) < 1e-12 ? 0 : v)
        return s
    }
}
