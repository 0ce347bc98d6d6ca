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

    /// A tile prepared for resampling, made once per tile and shared by all its views: its bytes as
    /// floats in blocks of eight rows — per block and pixel, the eight rows' R, G, B and a zero — so
    /// the horizontal pass reads a pixel of eight rows as one contiguous run (rows past the bottom
    /// of the last block are zeros, read and never used).
    struct Source {
        let width: Int
        let height: Int
        let blocked: [Float]

        init(_ im: RGBImage, kernels: any ViewKernelSet.Type = ViewKernelChoice.preferred) {
            width = im.width
            height = im.height
            let count = max(1, (im.height + 7) / 8 * im.width * 32)
            blocked = im.pixels.withUnsafeBufferPointer { p in
                [Float](unsafeUninitializedCapacity: count) { out, n in
                    if let bytes = p.baseAddress, im.width > 0 && im.height > 0 {
                        kernels.blockRows(bytes, width: im.width, height: im.height, into: out.baseAddress!)
                    } else {
                        out.initialize(repeating: 0)
                    }
                    n = count
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
        // Rows some output reads (outputs without taps read none), inside the source.
        var rowLo = Int.max, rowHi = 0
        for o in 0..<outHeight where cy.count[o] > 0 {
            rowLo = min(rowLo, Int(cy.start[o]))
            rowHi = max(rowHi, Int(cy.start[o]) + Int(cy.count[o]))
        }
        if rowLo == Int.max { rowLo = 0 }
        rowHi = min(rowHi, source.height)
        // Whole blocks of eight source rows around the rows the vertical pass reads.
        let blockLo = rowLo / 8, blocks = max(0, (rowHi + 7) / 8 - blockLo)
        canvas.reshape(width: outWidth, height: outHeight)
        let midCount = blocks * 8 * 4 * outWidth
        let scratch = canvas.scratch(max(1, midCount) + 4 * outWidth)
        let mid = scratch, row = scratch + midCount
        let kernels = canvas.kernels
        source.blocked.withUnsafeBufferPointer { src in
            cx.weights.withUnsafeBufferPointer { w in
                cx.start.withUnsafeBufferPointer { start in
                    cx.count.withUnsafeBufferPointer { count in
                        kernels.resampleBlockRows(src.baseAddress!, srcWidth: source.width, blockLo: blockLo, blocks: blocks,
                                                  start: start.baseAddress!, count: count.baseAddress!, weights: w.baseAddress!,
                                                  stride: cx.maxCount, outWidth: outWidth, mirrored: mirrored, into: mid)
                    }
                }
            }
        }
        cy.weights.withUnsafeBufferPointer { w in
            cy.start.withUnsafeBufferPointer { start in
                cy.count.withUnsafeBufferPointer { count in
                    kernels.resampleColumns(mid, rowLo: blockLo * 8, start: start.baseAddress!, count: count.baseAddress!,
                                            weights: w.baseAddress!, stride: cy.maxCount, outWidth: outWidth, outHeight: outHeight,
                                            into: canvas.plane(0), planeStride: canvas.planeStride, scratch: row)
                }
            }
        }
    }
}
