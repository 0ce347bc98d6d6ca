import ArgumentParser
import Foundation
import TesseraCore
import TesseraTrain

/// Hidden: the Tessera side of scripts/bench-train (one JSON line per measurement).
struct BenchTrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "bench-train", abstract: "Time SimCLR training steps (scripts/bench-train).",
                                                    shouldDisplay: false)
    @Option var backbone = "convnet4"
    @Option var size = 28
    @Option(name: .customLong("batch-size")) var batchSize = 256
    @Option var steps = 3
    @Option var threads = 1
    @Flag var ceiling = false

    func run() throws {
        do {
            if ceiling {
                let g = TrainBenchmark.sgemmCeiling(threads: threads)
                let conv = TrainBenchmark.sgemmCeiling(m: 64, n: 65536, k: 288, threads: threads)
                print("{\"sgemm_gflops_per_cpu_s\": \(String(format: "%.1f", g)), \"conv_shaped_gflops_per_cpu_s\": \(String(format: "%.1f", conv))}")
                return
            }
            let r = try TrainBenchmark.simclr(backbone: backbone, size: size, batch: batchSize, steps: steps, threads: threads)
            print(String(format: "{\"backbone\": \"%@\", \"size\": %d, \"batch\": %d, \"steps\": %d, \"images_per_cpu_s\": %.2f, \"images_per_s\": %.2f, \"gflops_per_cpu_s\": %.1f}",
                         backbone, size, batchSize, r.steps, r.imagesPerCPUSecond, r.imagesPerSecond, r.gflopPerCPUSecond))
        } catch { throw fail(error) }
    }
}
