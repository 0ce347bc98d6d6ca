import Foundation
import TesseraCore
import TesseraStain

/// In-process timings for `scripts/bench-stain` (CPU seconds of this process, single thread).
public enum StainBenchmark {
    public struct Result: Codable, Sendable {
        public var operation: String
        public var method: String
        public var images: Int
        public var megapixels: Double
        public var cpuSeconds: Double
        public var unchanged: Int
        public var megapixelsPerCPUSecond: Double { megapixels / max(cpuSeconds, 1e-9) }
    }

    /// Times `operation` ("fit-transform": fit each image then normalize it, as per tile;
    /// "transform": normalize with the source fitted once; "fit": fit only) over the images,
    /// repeated until at least `minSeconds` of CPU time.
    public static func run(_ images: [RGBImage], method: StainMethod, target: StainTarget, operation: String, minSeconds: Double = 1) throws -> Result {
        let normalizer = try StainNormalizer(target: target)
        let pixels = images.reduce(0) { $0 + $1.width * $1.height }
        var fixed: [StainNormalizer.FixedSource] = []
        if operation == "transform" {
            fixed = try images.map { try normalizer.fixedSource(fittedOn: $0) }
        }
        var rounds = 0, unchanged = 0
        var checksum = 0
        let start = CPUClock.processSeconds()
        repeat {
            for (i, image) in images.enumerated() {
                switch operation {
                case "fit-transform":
                    let (out, changed) = normalizer.normalize(image)
                    if !changed { unchanged += 1 }
                    checksum &+= Int(out.pixels[out.pixels.count / 2])
                case "transform":
                    let out = normalizer.transform(image, source: fixed[i])
                    checksum &+= Int(out.pixels[out.pixels.count / 2])
                case "fit":
                    let t = try? StainNormalizer.fit(image, method: method)
                    checksum &+= t == nil ? 0 : 1
                default:
                    throw TesseraError(.invalidConfig, "unknown benchmark operation \(operation)")
                }
            }
            rounds += 1
        } while CPUClock.processSeconds() - start < minSeconds
        let seconds = CPUClock.processSeconds() - start
        _ = checksum
        return Result(operation: operation, method: method.rawValue, images: images.count * rounds,
                      megapixels: Double(pixels * rounds) / 1e6, cpuSeconds: seconds, unchanged: unchanged)
    }
}
