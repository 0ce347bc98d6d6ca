import CDigest
import Foundation
import TesseraViewKernels
import TesseraViewKernelsAVX2

/// The loops of `ViewKernels`, which TesseraViewKernels (baseline x86-64) and TesseraViewKernelsAVX2
/// (the same source built for Haswell-class CPUs, see Package.swift) both provide.
protocol ViewKernelSet: Sendable {
    static func blend(_ p: UnsafeMutablePointer<Float>, count: Int, factor: Float, add: Float)
    static func graySum(_ r: UnsafeMutablePointer<Float>, _ g: UnsafeMutablePointer<Float>, _ b: UnsafeMutablePointer<Float>, count: Int) -> Float
    static func saturation(_ r: UnsafeMutablePointer<Float>, _ g: UnsafeMutablePointer<Float>, _ b: UnsafeMutablePointer<Float>,
                           count: Int, factor: Float)
    static func hue(_ r: UnsafeMutablePointer<Float>, _ g: UnsafeMutablePointer<Float>, _ b: UnsafeMutablePointer<Float>,
                    count: Int, shift: Float)
    static func grayscale(_ r: UnsafeMutablePointer<Float>, _ g: UnsafeMutablePointer<Float>, _ b: UnsafeMutablePointer<Float>, count: Int)
    static func solarize(_ p: UnsafeMutablePointer<Float>, count: Int, threshold: Float)
    static func normalize(_ src: UnsafeMutablePointer<Float>, into: UnsafeMutablePointer<Float>, count: Int, scale: Float, shift: Float)
    static func gaussianBlur(_ p: UnsafeMutablePointer<Float>, width: Int, height: Int, kernel: UnsafePointer<Float>, radius: Int,
                             scratch: UnsafeMutablePointer<Float>)
    static func blockRows(_ bytes: UnsafePointer<UInt8>, width: Int, height: Int, into: UnsafeMutablePointer<Float>)
    static func resampleBlockRows(_ src: UnsafePointer<Float>, srcWidth: Int, blockLo: Int, blocks: Int,
                                  start: UnsafePointer<Int32>, count: UnsafePointer<Int32>, weights: UnsafePointer<Float>, stride: Int,
                                  outWidth: Int, mirrored: Bool, into: UnsafeMutablePointer<Float>)
    static func resampleColumns(_ mid: UnsafePointer<Float>, rowLo: Int, start: UnsafePointer<Int32>, count: UnsafePointer<Int32>,
                                weights: UnsafePointer<Float>, stride: Int, outWidth: Int, outHeight: Int,
                                into: UnsafeMutablePointer<Float>, planeStride: Int, scratch: UnsafeMutablePointer<Float>)
}

extension TesseraViewKernels.ViewKernels: ViewKernelSet {}
extension TesseraViewKernelsAVX2.ViewKernels: ViewKernelSet {}

enum ViewKernelChoice {
    static let baseline: any ViewKernelSet.Type = TesseraViewKernels.ViewKernels.self
    static let haswell: any ViewKernelSet.Type = TesseraViewKernelsAVX2.ViewKernels.self
    /// Whether this CPU runs the Haswell build (AVX2, FMA, BMI1/2, F16C, MOVBE, LZCNT, OS YMM state).
    static let haswellSupported = tsr_cpu_haswell_features() == 1
    /// The build new canvases use: Haswell where supported, unless TESSERA_VIEW_KERNELS=baseline.
    static let preferred: any ViewKernelSet.Type =
        haswellSupported && ProcessInfo.processInfo.environment["TESSERA_VIEW_KERNELS"] != "baseline" ? haswell : baseline
}
