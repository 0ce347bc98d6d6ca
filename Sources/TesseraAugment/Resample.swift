import Foundation
import TesseraCore

/// Interpolation for resizing crops.
public enum Interpolation: String, Sendable, Codable, CaseIterable {
    case bilinear, bicubic
    /// Kernel support radius at scale 1.
    var support: Double { self == .bilinear ? 1 : 2 }

    @inline(__always) func weight(_ x: Double) -> Double {
        let t = abs(x)
        switch self {
        case .bilinear:
            return t < 1 ? 1 - t : 0
        case .bicubic:
            // Keys' cubic with a = −0.5, as PIL and torchvision's antialiased resize use.
            let a = -0.5
            if t < 1 { return ((a + 2) * t - (a + 3)) * t * t + 1 }
            if t < 2 { return (((t - 5) * t + 8) * t - 4) * a }
            return 0
        }
    }
}

/// Separable resampling with antialiasing when downscaling (the kernel widened by the scale factor,
/// as PIL's `Image.resize` and torchvision's `antialias=True` do): a crop of the source is mapped onto
/// an output of any size without aliasing.
public enum Resample {
    /// Per output index: the first input index and the normalized weights.
    struct Coefficients {
        var start: [Int32]
        var count: [Int32]
        var weights: [Float]   // out × maxCount
        var maxCount: Int
    }

    static func coefficients(input: Int, output: Int, offset: Double, length: Double, interpolation: Interpolation) -> Coefficients {
        let scale = length / Double(output)
        let filterScale = max(scale, 1)
        let support = interpolation.support * filterScale
        let maxCount = Int(support.rounded(.up)) * 2 + 1
        var start = [Int32](repeating: 0, count: output), count = [Int32](repeating: 0, count: output)
        var weights = [Float](repeating: 0, count: output * maxCount)
        // One scratch row for all outputs (hi − lo never exceeds 2·support + 1 taps).
        var w = [Double](repeating: 0, count: Int((2 * support).rounded(.up)) + 2)
        for o in 0..<output {
            let center = offset + (Double(o) + 0.5) * scale
            let lo = max(0, Int((center - support + 0.5).rounded(.down)))
            let hi = min(input, Int((center + support + 0.5).rounded(.down)))
            let taps = max(0, hi - lo)
            if taps > w.count { w += [Double](repeating: 0, count: taps - w.count) }
            var total = 0.0
            for k in 0..<taps {
                let v = interpolation.weight((Double(lo + k) - center + 0.5) / filterScale)
                w[k] = v
                total += v
            }
            let n = min(taps, maxCount)
            start[o] = Int32(lo)
            count[o] = Int32(n)
            for k in 0..<n { weights[o * maxCount + k] = Float(total != 0 ? w[k] / total : 0) }
        }
        return Coefficients(start: start, count: count, weights: weights, maxCount: maxCount)
    }

    /// A tile prepared for resampling: its bytes as floats, RGB interleaved plus one float of
    /// padding, so one SIMD4 load at a pixel fetches its R, G, B (and a neighbour's R, which is
    /// weighted and discarded). Made once per tile and shared by all its views.
    struct Source {
        let width: Int
        let height: Int
        let rgb: [Float]

        init(_ im: RGBImage) {
            width = im.width
            height = im.height
            let n = im.pixels.count
            rgb = im.pixels.withUnsafeBufferPointer { p in
                [Float](unsafeUninitializedCapacity: n + 1) { out, count in
                    // A plain element-wise conversion, which the compiler vectorizes.
                    for i in 0..<n { out[i] = Float(p[i]) }
                    out[n] = 0
                    count = n + 1
                }
            }
        }
    }

    /// Resizes the region (x, y, width, height) of `image` to outWidth × outHeight.
    public static func crop(_ image: RGBImage, x: Int, y: Int, width: Int, height: Int, outWidth: Int, outHeight: Int,
                            interpolation: Interpolation) -> RGBImage {
        let canvas = ViewCanvas()
        crop(Source(image), x: x, y: y, width: width, height: height, outWidth: outWidth, outHeight: outHeight,
             interpolation: interpolation, into: canvas)
        return canvas.image()
    }

    /// Resizes a region of `source` into `canvas` (reshaped to outWidth × outHeight): the bytes of
    /// `crop(_:…)`, which is this plus conversions. `mirrored` writes each row right to left — a
    /// horizontal flip for free, as each output value is computed the same either way.
    static func crop(_ source: Source, x: Int, y: Int, width: Int, height: Int, outWidth: Int, outHeight: Int,
                     interpolation: Interpolation, mirrored: Bool = false, into canvas: ViewCanvas) {
        // Horizontal pass over the rows the vertical pass needs, then the vertical pass.
        let cx = coefficients(input: source.width, output: outWidth, offset: Double(x), length: Double(width), interpolation: interpolation)
        let cy = coefficients(input: source.height, output: outHeight, offset: Double(y), length: Double(height), interpolation: interpolation)
        var rowLo = Int.max, rowHi = 0
        for o in 0..<outHeight {
            rowLo = min(rowLo, Int(cy.start[o]))
            rowHi = max(rowHi, Int(cy.start[o]) + Int(cy.count[o]))
        }
        if outHeight == 0 { rowLo = 0 }
        let rows = max(0, rowHi - rowLo)
        canvas.reshape(width: outWidth, height: outHeight)
        let planeLen = rows * outWidth
        let mid = canvas.scratch(max(1, 3 * planeLen))
        let kernels = canvas.kernels
        source.rgb.withUnsafeBufferPointer { src in
            // Weights broadcast to all four lanes ahead of the loop: one load per tap instead of a
            // load and a shuffle, for every row.
            cx.weights.map { SIMD4<Float>(repeating: $0) }.withUnsafeBufferPointer { w in
                cx.start.withUnsafeBufferPointer { start in
                    cx.count.withUnsafeBufferPointer { count in
                        kernels.resampleRows(src.baseAddress!, srcWidth: source.width, rowLo: rowLo, rows: rows,
                                             start: start.baseAddress!, count: count.baseAddress!, weights: w.baseAddress!,
                                             stride: cx.maxCount, outWidth: outWidth, mirrored: mirrored, into: mid, planeLen: planeLen)
                    }
                }
            }
        }
        cy.weights.withUnsafeBufferPointer { w in
            cy.start.withUnsafeBufferPointer { start in
                cy.count.withUnsafeBufferPointer { count in
                    for c in 0..<3 {
                        kernels.resampleColumns(mid + c * planeLen, rowLo: rowLo, start: start.baseAddress!, count: count.baseAddress!,
                                                weights: w.baseAddress!, stride: cy.maxCount, outWidth: outWidth, outHeight: outHeight,
                                                into: canvas.plane(c))
                    }
                }
            }
        }

    }
}
