import CDigest
import Foundation
import TesseraViewKernels
import TesseraViewKernelsAVX2
import TesseraViewKernelsAVX512

/// The loops of `ViewKernels`, which TesseraViewKernels (baseline x86-64), TesseraViewKernelsAVX2 and
/// TesseraViewKernelsAVX512 (the same source built for Haswell-class and AVX-512 CPUs, see
/// Package.swift) all provide, with the same bytes.
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
extension TesseraViewKernelsAVX512.ViewKernels: ViewKernelSet {}

enum ViewKernelChoice {
    static let baseline: any ViewKernelSet.Type = TesseraViewKernels.ViewKernels.self
    static let haswell: any ViewKernelSet.Type = TesseraViewKernelsAVX2.ViewKernels.self
    static let avx512: any ViewKernelSet.Type = TesseraViewKernelsAVX512.ViewKernels.self
    /// Whether this CPU runs the Haswell build (AVX2, FMA, BMI1/2, F16C, MOVBE, LZCNT, OS YMM state).
    static let haswellSupported = tsr_cpu_haswell_features() == 1
    /// Whether it runs the AVX-512 build (AVX-512 F/CD/BW/DQ/VL, OS ZMM state, and all of the above).
    static let avx512Supported = tsr_cpu_avx512_features() == 1
    /// The builds this CPU can run, slowest first, with their names (tests run them all).
    static let supported: [(name: String, kernels: any ViewKernelSet.Type)] =
        [("baseline", baseline)] + (haswellSupported ? [("avx2", haswell)] : []) + (avx512Supported ? [("avx512", avx512)] : [])
    /// The name of `preferred` ("baseline", "avx2" or "avx512").
    static var preferredName: String { supported.first { $0.kernels == preferred }?.name ?? "baseline" }
    /// The build new canvases use: the widest supported, capped by TESSERA_VIEW_KERNELS=baseline|avx2
    /// (`avx512` or unset: the widest; any other value is reported on standard error and ignored).
    static let preferred: any ViewKernelSet.Type = {
        let widest = supported.last!
        switch ProcessInfo.processInfo.environment["TESSERA_VIEW_KERNELS"] {
        case "baseline": return baseline
        case "avx2": return haswellSupported ? haswell : baseline
        case nil, "", "avx512": return widest.kernels
        case let other?:
            FileHandle.standardError.write(Data("tessera: TESSERA_VIEW_KERNELS=\(other) is not baseline, avx2 or avx512; using \(widest.name)\n".utf8))
            return widest.kernels
        }
    }()
}
