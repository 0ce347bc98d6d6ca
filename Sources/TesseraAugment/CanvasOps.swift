import Foundation

/// The view operations in place on a `ViewCanvas`, byte-identical to their `PixelOps` reference:
/// each computes the same float expression, in the same order, on the same whole-number inputs and
/// truncates the same way, only a vector of pixels at a time and without a new image per step.
extension ViewCanvas {
    // MARK: Dihedral group

    func flipHorizontal() {
        let w = width
        for c in 0..<3 {
            let p = plane(c)
            for y in 0..<height {
                let row = p + y * w
                var a = 0, b = w - 1
                while a < b { swap(&row[a], &row[b]); a += 1; b -= 1 }
            }
        }
    }

    func flipVertical() {
        let w = width
        for c in 0..<3 {
            let p = plane(c)
            var a = 0, b = height - 1
            while a < b {
                let ra = p + a * w, rb = p + b * w
                for x in 0..<w { swap(&ra[x], &rb[x]) }
                a += 1; b -= 1
            }
        }
    }

    /// Counter-clockwise by k·90°, as `PixelOps.rotate90`.
    func rotate90(times k: Int) {
        let k = ((k % 4) + 4) % 4
        if k == 0 { return }
        if k == 2 { flipHorizontal(); flipVertical(); return }
        let w = width, h = height, dst = sparePlanes()
        for c in 0..<3 {
            let s = plane(c), d = dst + c * planeStride
            // Output (ny, nx) of a w-high, h-wide image.
            if k == 1 {
                for ny in 0..<w { for nx in 0..<h { d[ny * h + nx] = s[nx * w + (w - 1 - ny)] } }
            } else {
                for ny in 0..<w { for nx in 0..<h { d[ny * h + nx] = s[(h - 1 - nx) * w + ny] } }
            }
        }
        swapPlanes(width: h, height: w)
    }

    // MARK: Colour (torchvision semantics on uint8, see PixelOps; the loops are in ViewKernels)

    func brightness(_ f: Float) { kernels.blend(planes, count: 3 * planeStride, factor: f, add: (1 - f) * 0) }

    func contrast(_ f: Float) {
        let n = pixelCount
        let sum = kernels.graySum(plane(0), plane(1), plane(2), count: n)
        kernels.blend(planes, count: 3 * planeStride, factor: f, add: (1 - f) * (sum / Float(max(1, n))))
    }

    func saturation(_ f: Float) { kernels.saturation(plane(0), plane(1), plane(2), count: planeStride, factor: f) }

    /// HSV hue shift by `h` turns.
    func hue(_ h: Float) { kernels.hue(plane(0), plane(1), plane(2), count: planeStride, shift: h) }

    func grayscale() { kernels.grayscale(plane(0), plane(1), plane(2), count: planeStride) }

    func solarize(threshold: Int = 128) { kernels.solarize(planes, count: 3 * planeStride, threshold: Float(threshold)) }

    /// Separable Gaussian blur as `PixelOps.gaussianBlur` (same kernel, reflected edges, same
    /// order of sums), one plane at a time.
    func gaussianBlur(sigma: Double) {
        guard sigma > 0 else { return }
        let w = width, h = height
        let (radius, kernel) = PixelOps.gaussianKernel(sigma: sigma, width: w, height: h)
        let mid = scratch(w * h + w + 4 * radius + 16)
        kernel.withUnsafeBufferPointer { k in
            for c in 0..<3 {
                kernels.gaussianBlur(plane(c), width: w, height: h, kernel: k.baseAddress!, radius: radius, scratch: mid)
            }
        }
    }
}
