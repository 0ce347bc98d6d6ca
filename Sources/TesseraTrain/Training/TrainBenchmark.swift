import Foundation
import TesseraCore

/// Measurements for scripts/bench-train: SimCLR training steps on synthetic batches (the data
/// path is benchmarked separately by bench-views) and the machine's sgemm ceiling, in CPU time.
public enum TrainBenchmark {
    public struct Result: Sendable {
        public var imagesPerCPUSecond: Double
        public var imagesPerSecond: Double
        public var gflopPerCPUSecond: Double
        public var steps: Int
    }

    /// `steps` SimCLR steps (two views per source image, NT-Xent τ = 0.2, SGD with momentum) after
    /// one warm-up step; source images per CPU second.
    public static func simclr(backbone: String, size: Int, batch: Int, steps: Int, threads: Int) throws -> Result {
        LinearAlgebra.setBLASThreads(threads)
        var s = PretrainSettings()
        s.backbone = backbone
        s.batchSize = batch
        s.epochs = 1
        s.projectionHidden = 256
        s.projectionOutput = 128
        s.learningRate = 0.05
        s.warmupEpochs = 0
        let trainer = try Pretrainer(settings: s, stepsPerEpoch: steps + 1)
        var g = SplitMix64(seed: 9)
        let images = (0..<(2 * batch * 3 * size * size)).map { _ in Float(g.next() >> 40) / Float(1 << 24) * 2 - 1 }
        _ = trainer.trainStep(groups: [(images, [2 * batch, 3, size, size])], batch: batch)
        let flops0 = BLAS.flops
        let c0 = CPUClock.processSeconds(), w0 = Date()
        for _ in 0..<steps { _ = trainer.trainStep(groups: [(images, [2 * batch, 3, size, size])], batch: batch) }
        let cpu = CPUClock.processSeconds() - c0, wall = Date().timeIntervalSince(w0)
        let n = Double(steps * batch)
        return Result(imagesPerCPUSecond: n / cpu, imagesPerSecond: n / wall, gflopPerCPUSecond: (BLAS.flops - flops0) / cpu / 1e9, steps: steps)
    }

    /// sgemm GFLOP per CPU second for an m×k by k×n product (the ceiling a step is compared with).
    public static func sgemmCeiling(m: Int = 1024, n: Int = 1024, k: Int = 1024, threads: Int) -> Double {
        LinearAlgebra.setBLASThreads(threads)
        let a = [Float](repeating: 0.5, count: m * k), b = [Float](repeating: 0.25, count: k * n)
        var c = [Float](repeating: 0, count: m * n)
        var reps = 0
        let c0 = CPUClock.processSeconds()
        repeat {
            a.withUnsafeBufferPointer { ap in
                b.withUnsafeBufferPointer { bp in
                    c.withUnsafeMutableBufferPointer { cp in
                        BLAS.sgemm(m: m, n: n, k: k, a: ap.baseAddress!, lda: k, b: bp.baseAddress!, ldb: n, c: cp.baseAddress!, ldc: n)
                    }
                }
            }
            reps += 1
        } while CPUClock.processSeconds() - c0 < 1.0
        return 2 * Double(m * n * k) * Double(reps) / (CPUClock.processSeconds() - c0) / 1e9
    }
}
