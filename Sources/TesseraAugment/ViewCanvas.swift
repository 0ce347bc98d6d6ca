import Foundation
import TesseraCore

/// A view in the making: three planes (R, G, B) of Float that only ever hold whole numbers 0…255 —
/// exactly the bytes an `RGBImage` would hold after each step — so the operations of `CanvasOps`
/// give the same bytes as the `PixelOps` reference on `RGBImage`, while working in place on
/// contiguous, vectorizable rows and allocating nothing per operation.
///
/// One canvas serves many views in turn (one per worker call); it is not thread-safe.
final class ViewCanvas {
    private(set) var width = 0
    private(set) var height = 0
    /// Floats per plane: width × height rounded up to a multiple of 16 (whole vectors in every
    /// kernel build). The padding lanes hold finite values that no result reads.
    private(set) var planeStride = 0
    private(set) var planes: UnsafeMutablePointer<Float>
    /// Second set of planes, for operations that cannot work in place (rotation).
    private var spare: UnsafeMutablePointer<Float>
    private var capacity = 0
    private var temp: UnsafeMutablePointer<Float>
    private var tempCapacity = 0
    /// The build of the loops this canvas runs (both give the same bytes).
    var kernels: any ViewKernelSet.Type

    init(kernels: any ViewKernelSet.Type = ViewKernelChoice.preferred) {
        self.kernels = kernels
        planes = .allocate(capacity: 8)
        spare = .allocate(capacity: 8)
        temp = .allocate(capacity: 8)
    }

    deinit {
        planes.deallocate()
        spare.deallocate()
        temp.deallocate()
    }

    var pixelCount: Int { width * height }

    /// Sets the size; the contents are undefined until written (padding lanes are zeroed).
    func reshape(width w: Int, height h: Int) {
        width = w
        height = h
        planeStride = (w * h + 15) & ~15
        if 3 * planeStride > capacity {
            capacity = 3 * planeStride
            planes.deallocate(); spare.deallocate()
            planes = .allocate(capacity: capacity)
            spare = .allocate(capacity: capacity)
        }
        let n = w * h
        for c in 0..<3 {
            for i in n..<planeStride { planes[c * planeStride + i] = 0; spare[c * planeStride + i] = 0 }
        }
    }

    @inline(__always) func plane(_ c: Int) -> UnsafeMutablePointer<Float> { planes + c * planeStride }

    /// Scratch memory of at least `count` floats, valid until the next call.
    func scratch(_ count: Int) -> UnsafeMutablePointer<Float> {
        if count > tempCapacity {
            temp.deallocate()
            tempCapacity = max(count, 2 * tempCapacity)
            temp = .allocate(capacity: tempCapacity)
        }
        return temp
    }

    /// The spare planes, sized like the canvas; `swapPlanes()` makes them current.
    func sparePlanes() -> UnsafeMutablePointer<Float> { spare }

    func swapPlanes(width w: Int, height h: Int) {
        swap(&planes, &spare)
        width = w
        height = h
    }

    // MARK: Conversions

    func load(_ im: RGBImage) {
        reshape(width: im.width, height: im.height)
        let r = plane(0), g = plane(1), b = plane(2)
        im.pixels.withUnsafeBufferPointer { p in
            for i in 0..<(im.width * im.height) {
                r[i] = Float(p[3 * i]); g[i] = Float(p[3 * i + 1]); b[i] = Float(p[3 * i + 2])
            }
        }
    }

    func image() -> RGBImage {
        let n = pixelCount
        let r = plane(0), g = plane(1), b = plane(2)
        let px = [UInt8](unsafeUninitializedCapacity: 3 * n) { out, count in
            for i in 0..<n { out[3 * i] = UInt8(r[i]); out[3 * i + 1] = UInt8(g[i]); out[3 * i + 2] = UInt8(b[i]) }
            count = 3 * n
        }
        return RGBImage(width: width, height: height, pixels: px)
    }

    /// Float32 planar CHW of (v/255 − mean)/std into `out` (3 × width × height floats), computed as
    /// `PixelOps.normalize` does, so the values are identical.
    func normalize(mean: [Float], std: [Float], into out: UnsafeMutablePointer<Float>) {
        let n = pixelCount
        for c in 0..<3 {
            kernels.normalize(plane(c), into: out + c * n, count: n, scale: 1 / (255 * std[c]), shift: mean[c] / std[c])
        }
    }
}
