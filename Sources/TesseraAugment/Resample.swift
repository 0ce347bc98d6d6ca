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
        for o in 0..<output {
            let center = offset + (Double(o) + 0.5) * scale
            let lo = max(0, Int((center - support + 0.5).rounded(.down)))
            let hi = min(input, Int((center + support + 0.5).rounded(.down)))
            var w = [Double]()
            var total = 0.0
            for x in lo..<max(lo, hi) {
                let v = interpolation.weight((Double(x) - center + 0.5) / filterScale)
                w.append(v)
                total += v
            }
            let n = min(w.count, maxCount)
            start[o] = Int32(lo)
            count[o] = Int32(n)
            for k in 0..<n { weights[o * maxCount + k] = Float(total != 0 ? w[k] / total : 0) }
        }
        return Coefficients(start: start, count: count, weights: weights, maxCount: maxCount)
    }

    /// Resizes the region (x, y, width, height) of `image` to outWidth × outHeight.
    public static func crop(_ image: RGBImage, x: Int, y: Int, width: Int, height: Int, outWidth: Int, outHeight: Int,
                            interpolation: Interpolation) -> RGBImage {
        // Horizontal pass over the rows the vertical pass needs, then the vertical pass.
        let cx = coefficients(input: image.width, output: outWidth, offset: Double(x), length: Double(width), interpolation: interpolation)
        let cy = coefficients(input: image.height, output: outHeight, offset: Double(y), length: Double(height), interpolation: interpolation)
        let rowLo = Int(cy.start.min() ?? 0)
        let rowHi = zip(cy.start, cy.count).map { Int($0) + Int($1) }.max() ?? 0
        let rows = max(0, rowHi - rowLo)
        var mid = [Float](repeating: 0, count: rows * outWidth * 3)
        image.pixels.withUnsafeBufferPointer { src in
            mid.withUnsafeMutableBufferPointer { m in
                cx.weights.withUnsafeBufferPointer { w in
                    for r in 0..<rows {
                        let row = (rowLo + r) * image.width * 3
                        for o in 0..<outWidth {
                            let s = Int(cx.start[o]), n = Int(cx.count[o])
                            var acc = SIMD4<Float>.zero
                            for k in 0..<n {
                                let p = row + (s + k) * 3
                                acc += SIMD4(Float(src[p]), Float(src[p + 1]), Float(src[p + 2]), 0) * w[o * cx.maxCount + k]
                            }
                            let q = (r * outWidth + o) * 3
                            m[q] = acc.x; m[q + 1] = acc.y; m[q + 2] = acc.z
                        }
                    }
                }
            }
        }
        var out = [UInt8](repeating: 0, count: outWidth * outHeight * 3)
        let rowLen = outWidth * 3
        var acc = [Float](repeating: 0, count: rowLen)
        mid.withUnsafeBufferPointer { m in
            out.withUnsafeMutableBufferPointer { dst in
                cy.weights.withUnsafeBufferPointer { w in
                    acc.withUnsafeMutableBufferPointer { a in
                        // Whole rows at a time: contiguous, so the inner loop vectorizes.
                        for o in 0..<outHeight {
                            let s = Int(cy.start[o]) - rowLo, n = Int(cy.count[o])
                            for c in 0..<rowLen { a[c] = 0.5 }
                            let ap = a.baseAddress!
                            for k in 0..<n {
                                let wk = w[o * cy.maxCount + k]
                                let mp = m.baseAddress! + (s + k) * rowLen
                                for c in 0..<rowLen { ap[c] += mp[c] * wk }
                            }
                            let dp = dst.baseAddress! + o * rowLen
                            for c in 0..<rowLen { dp[c] = UInt8(max(0, min(255, ap[c]))) }
                        }
                    }
                }
            }
        }
        return RGBImage(width: outWidth, height: outHeight, pixels: out)
    }
}
