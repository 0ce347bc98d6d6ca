import Foundation
import TesseraCore

/// Exact pixel permutations and the colour operations of the SSL recipes, on 8-bit RGB. Colour
/// operations follow torchvision's tensor semantics on uint8 (compute in float, clamp, truncate).
public enum PixelOps {
    // MARK: Dihedral group (exact, no interpolation)

    public static func flipHorizontal(_ im: RGBImage) -> RGBImage {
        var out = im.pixels
        let w = im.width
        for y in 0..<im.height {
            for x in 0..<w {
                let s = (y * w + (w - 1 - x)) * 3, d = (y * w + x) * 3
                out[d] = im.pixels[s]; out[d + 1] = im.pixels[s + 1]; out[d + 2] = im.pixels[s + 2]
            }
        }
        return RGBImage(width: w, height: im.height, pixels: out)
    }

    public static func flipVertical(_ im: RGBImage) -> RGBImage {
        var out = im.pixels
        let row = im.width * 3
        for y in 0..<im.height {
            let s = (im.height - 1 - y) * row
            out.replaceSubrange((y * row)..<((y + 1) * row), with: im.pixels[s..<(s + row)])
        }
        return RGBImage(width: im.width, height: im.height, pixels: out)
    }

    /// Rotation by k·90° counter-clockwise (as numpy.rot90 / torch.rot90 on H×W).
    public static func rotate90(_ im: RGBImage, times k: Int) -> RGBImage {
        var out = im
        for _ in 0..<(((k % 4) + 4) % 4) {
            let w = out.width, h = out.height
            var px = [UInt8](repeating: 0, count: w * h * 3)
            // Counter-clockwise: new(x', y') with new width h, new height w; new[y'][x'] = old[x'][w-1-y'].
            for ny in 0..<w {
                for nx in 0..<h {
                    let s = (nx * w + (w - 1 - ny)) * 3, d = (ny * h + nx) * 3
                    px[d] = out.pixels[s]; px[d + 1] = out.pixels[s + 1]; px[d + 2] = out.pixels[s + 2]
                }
            }
            out = RGBImage(width: h, height: w, pixels: px)
        }
        return out
    }

    // MARK: Colour

    @inline(__always) static func truncate(_ v: Float) -> UInt8 { UInt8(max(0, min(255, v))) }

    /// torchvision rgb_to_grayscale on uint8: 0.2989 R + 0.587 G + 0.114 B, truncated.
    @inline(__always) static func gray(_ r: UInt8, _ g: UInt8, _ b: UInt8) -> UInt8 {
        truncate(0.2989 * Float(r) + 0.587 * Float(g) + 0.114 * Float(b))
    }

    public static func grayscale(_ im: RGBImage) -> RGBImage {
        var out = im.pixels
        for i in 0..<(im.width * im.height) {
            let v = gray(im.pixels[3 * i], im.pixels[3 * i + 1], im.pixels[3 * i + 2])
            out[3 * i] = v; out[3 * i + 1] = v; out[3 * i + 2] = v
        }
        return RGBImage(width: im.width, height: im.height, pixels: out)
    }

    /// blend(a, b, f) = clamp(f·a + (1−f)·b), truncated (torchvision `_blend`), with b a constant.
    static func blend(_ im: RGBImage, factor f: Float, constant: Float) -> RGBImage {
        var out = [UInt8](repeating: 0, count: im.pixels.count)
        let add = (1 - f) * constant
        im.pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for i in 0..<src.count { dst[i] = truncate(f * Float(src[i]) + add) }
            }
        }
        return RGBImage(width: im.width, height: im.height, pixels: out)
    }

    public static func brightness(_ im: RGBImage, _ f: Float) -> RGBImage { blend(im, factor: f, constant: 0) }

    public static func contrast(_ im: RGBImage, _ f: Float) -> RGBImage {
        var sum: Float = 0
        let n = im.width * im.height
        im.pixels.withUnsafeBufferPointer { p in
            for i in 0..<n { sum += Float(gray(p[3 * i], p[3 * i + 1], p[3 * i + 2])) }
        }
        return blend(im, factor: f, constant: sum / Float(max(1, n)))
    }

    public static func saturation(_ im: RGBImage, _ f: Float) -> RGBImage {
        var out = [UInt8](repeating: 0, count: im.pixels.count)
        im.pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for i in 0..<(im.width * im.height) {
                    let g = (1 - f) * Float(gray(src[3 * i], src[3 * i + 1], src[3 * i + 2]))
                    dst[3 * i] = truncate(f * Float(src[3 * i]) + g)
                    dst[3 * i + 1] = truncate(f * Float(src[3 * i + 1]) + g)
                    dst[3 * i + 2] = truncate(f * Float(src[3 * i + 2]) + g)
                }
            }
        }
        return RGBImage(width: im.width, height: im.height, pixels: out)
    }

    /// Hue shift by `h` turns (−0.5…0.5) in HSV, as torchvision adjust_hue (uint8 → float → uint8, truncated).
    public static func hue(_ im: RGBImage, _ h: Float) -> RGBImage {
        var out = [UInt8](repeating: 0, count: im.pixels.count)
        im.pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for i in 0..<(im.width * im.height) {
                    let r = Float(src[3 * i]) / 255, g = Float(src[3 * i + 1]) / 255, b = Float(src[3 * i + 2]) / 255
                    let maxc = max(r, g, b), minc = min(r, g, b)
                    let v = maxc, cr = maxc - minc
                    let s = cr / (maxc == 0 ? 1 : maxc)
                    let crDiv = cr == 0 ? 1 : cr
                    let rc = (maxc - r) / crDiv, gc = (maxc - g) / crDiv, bc = (maxc - b) / crDiv
                    var hh: Float
                    if maxc == r { hh = bc - gc } else if maxc == g { hh = 2 + rc - bc } else { hh = 4 + gc - rc }
                    // (hh/6 + 1) mod 1, then + h mod 1; both stay within one period.
                    hh = hh / 6 + 1
                    if hh >= 1 { hh -= 1 }
                    hh += h
                    if hh >= 1 { hh -= 1 } else if hh < 0 { hh += 1 }
                    let i6 = (hh * 6).rounded(.down)
                    let f = hh * 6 - i6
                    let p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f))
                    let (ro, go, bo): (Float, Float, Float)
                    switch Int(i6) % 6 {
                    case 0: (ro, go, bo) = (v, t, p)
                    case 1: (ro, go, bo) = (q, v, p)
                    case 2: (ro, go, bo) = (p, v, t)
                    case 3: (ro, go, bo) = (p, q, v)
                    case 4: (ro, go, bo) = (t, p, v)
                    default: (ro, go, bo) = (v, p, q)
                    }
                    dst[3 * i] = truncate(ro * 255); dst[3 * i + 1] = truncate(go * 255); dst[3 * i + 2] = truncate(bo * 255)
                }
            }
        }
        return RGBImage(width: im.width, height: im.height, pixels: out)
    }

    /// PIL ImageOps.solarize: values at or above the threshold are inverted.
    public static func solarize(_ im: RGBImage, threshold: Int = 128) -> RGBImage {
        RGBImage(width: im.width, height: im.height, pixels: im.pixels.map { Int($0) >= threshold ? 255 - $0 : $0 })
    }

    /// The normalized 1-D Gaussian of radius ⌈3σ⌉ (at least 1, less than the image's shorter side).
    static func gaussianKernel(sigma: Double, width w: Int, height h: Int) -> (radius: Int, weights: [Float]) {
        let radius = min(max(1, Int((3 * sigma).rounded(.up))), max(1, min(w, h) - 1))
        let kernel = (-radius...radius).map { Float(exp(-Double($0 * $0) / (2 * sigma * sigma))) }
        let total = kernel.reduce(0, +)
        return (radius, kernel.map { $0 / total })
    }

    /// Mirror reflection of index i into 0..<n (edge pixel not repeated), as the blur's border rule.
    @inline(__always)
    static func reflectIndex(_ i: Int, _ n: Int) -> Int {
        var i = i
        if n == 1 { return 0 }
        while i < 0 || i >= n { i = i < 0 ? -i : 2 * (n - 1) - i }
        return i
    }

    /// Gaussian blur with standard deviation σ (pixels): separable kernel of radius ⌈3σ⌉, edges
    /// reflected, rounded to bytes.
    public static func gaussianBlur(_ im: RGBImage, sigma: Double) -> RGBImage {
        guard sigma > 0 else { return im }
        let w = im.width, h = im.height
        let (radius, kernel) = gaussianKernel(sigma: sigma, width: w, height: h)
        let reflect = reflectIndex
        // Horizontal pass: each row copied once into a reflected, padded float row.
        var mid = [Float](repeating: 0, count: w * h * 3)
        var row = [Float](repeating: 0, count: (w + 2 * radius) * 3)
        let taps = 2 * radius + 1
        kernel.withUnsafeBufferPointer { k in
            im.pixels.withUnsafeBufferPointer { src in
                mid.withUnsafeMutableBufferPointer { m in
                    row.withUnsafeMutableBufferPointer { r in
                        for y in 0..<h {
                            for x in 0..<(w + 2 * radius) {
                                let sx = (y * w + reflect(x - radius, w)) * 3
                                r[3 * x] = Float(src[sx]); r[3 * x + 1] = Float(src[sx + 1]); r[3 * x + 2] = Float(src[sx + 2])
                            }
                            // Tap-outer over the whole row: contiguous, vectorizable.
                            let mp = m.baseAddress! + y * w * 3, rp = r.baseAddress!
                            for x in 0..<(w * 3) { mp[x] = 0 }
                            for t in 0..<taps {
                                let kt = k[t], src = rp + 3 * t
                                for x in 0..<(w * 3) { mp[x] += src[x] * kt }
                            }
                        }
                    }
                }
            }
        }
        // Vertical pass over whole rows (contiguous), reflected row indices.
        var out = [UInt8](repeating: 0, count: w * h * 3)
        let rowLen = w * 3
        kernel.withUnsafeBufferPointer { k in
            mid.withUnsafeBufferPointer { m in
                out.withUnsafeMutableBufferPointer { dst in
                    var acc = [Float](repeating: 0, count: rowLen)
                    acc.withUnsafeMutableBufferPointer { a in
                        for y in 0..<h {
                            let ap = a.baseAddress!
                            for c in 0..<rowLen { ap[c] = 0.5 }
                            for t in 0..<taps {
                                let mp = m.baseAddress! + reflect(y + t - radius, h) * rowLen
                                let kt = k[t]
                                for c in 0..<rowLen { ap[c] += mp[c] * kt }
                            }
                            let dp = dst.baseAddress! + y * rowLen
                            for c in 0..<rowLen { dp[c] = UInt8(max(0, min(255, ap[c]))) }
                        }
                    }
                }
            }
        }
        return RGBImage(width: w, height: h, pixels: out)
    }

    /// Float32 planar CHW of (v/255 − mean)/std, appended to `out`.
    public static func normalize(_ im: RGBImage, mean: [Float], std: [Float], into out: inout [Float]) {
        let n = im.width * im.height
        let base = out.count
        out.append(contentsOf: repeatElement(0, count: 3 * n))
        out.withUnsafeMutableBufferPointer { dst in
            im.pixels.withUnsafeBufferPointer { src in
                for c in 0..<3 {
                    let scale = 1 / (255 * std[c]), shift = mean[c] / std[c]
                    for i in 0..<n { dst[base + c * n + i] = Float(src[3 * i + c]) * scale - shift }
                }
            }
        }
    }
}
