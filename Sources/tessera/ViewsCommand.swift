import ArgumentParser
import Foundation
import TesseraAugment
import TesseraCore
import TesseraPipeline
import TesseraSlide
import TesseraSplits

struct ViewsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "views",
        abstract: "Preview a view recipe (SimCLR, DINO, histo) on a dataset's tiles, or write its views as shards.",
        discussion: "Recipes are the `views:` section of a pipeline file: pipelines/simclr.yaml, pipelines/dino.yaml, pipelines/histo.yaml.")
    @Argument(help: "Dataset directory (from `tessera tile`).")
    var dataset: String
    @Option(help: "Pipeline file with a `views:` section, or a recipe name (simclr, dino, histo → pipelines/NAME.yaml).")
    var recipe: String
    @Option(help: "Write a PNG grid of this many tiles with all of their views (to --out).")
    var preview: Int?
    @Option(help: "Output: the preview PNG, or the directory of view shards.")
    var out: String?
    @Option(help: "Epochs of views to write (one sample per tile and epoch).")
    var epochs = 1
    @Option(help: "Seed of every random draw (with epoch, sample and view index).")
    var seed: UInt64 = 0
    @Option(help: "Worker threads (default: cores). Does not change the output.")
    var workers: Int?
    @Option(help: "View encoding: png (lossless, default) or jpg.")
    var format = "png"
    @Option(help: "Only part of a split: FILE:SELECTOR, e.g. splits/pbc.csv:train.")
    var split: String?
    @Flag(help: "No progress line.")
    var quiet = false
    @Flag(help: "Time one epoch of float32 batches through the worker pool (nothing written; prints one JSON line).")
    var benchmark = false
    @Option(name: .customLong("shard-size"), help: "Target size of view shards, e.g. 64MB (default 256MiB).")
    var shardSize: String?
    @Option(name: .customLong("batch-size"), help: "Batch size for --benchmark (default 64).")
    var batchSize = 64
    @Option(help: "With --benchmark: stop after this many samples (0 = the whole epoch).")
    var limit = 0
    @Option(name: .customLong("min-seconds"), help: "With --benchmark: run further epochs until this many seconds have passed (steady state, as a training run sees it).")
    var minSeconds = 0.0

    func run() throws {
        do {
            let path = recipe.hasSuffix(".yaml") || recipe.contains("/") ? recipe : "pipelines/\(recipe).yaml"
            guard let r = try PipelineFile.load(path: path).views else {
                throw TesseraError(.invalidConfig, path: path, "has no `views:` section", hint: "see pipelines/dino.yaml")
            }
            try r.validate()
            guard benchmark || out != nil else { throw TesseraError(.invalidConfig, "--out is needed (the preview PNG or the views directory)") }
            let out = self.out ?? ""
            if let n = preview {
                try PNGWriter.write(try ViewsRun.preview(dataset: dataset, recipe: r, count: max(1, n), seed: seed), to: out)
                print("\(out): \(n) tiles with their \(r.viewCount) views each (\(path))")
                return
            }
            if benchmark {
                let w = workers ?? max(1, ProcessInfo.processInfo.activeProcessorCount)
                let cpu0 = CPUClock.processSeconds()
                let start = Date()
                var samples = 0, epoch = 0
                repeat {
                    let loader = try ViewsRun.loader(dataset: dataset, recipe: r, seed: seed, epoch: epoch, batchSize: batchSize, workers: w)
                    while let b = try loader.next() {
                        samples += b.samples.count
                        if limit > 0 && samples >= limit { break }
                    }
                    epoch += 1
                } while Date().timeIntervalSince(start) < minSeconds && !(limit > 0 && samples >= limit)
                let wall = Date().timeIntervalSince(start)
                let cpu = CPUClock.processSeconds() - cpu0
                print("{\"samples\": \(samples), \"epochs\": \(epoch), \"seconds\": \(wall), \"cpu_seconds\": \(cpu), \"workers\": \(w), \"views\": \(r.viewCount), \"kernels\": \"\(ViewGenerator.kernelBuild)\"}")
                Foundation.exit(0)
            }
            var o = ViewsRun.Options()
            o.epochs = epochs
            o.seed = seed
            if let workers { o.workers = workers }
            guard let f = TileFormat(rawValue: format), f != .rgb8 else { throw TesseraError(.invalidConfig, "--format must be png or jpg, got \(format)") }
            o.format = f
            o.quiet = quiet
            if let shardSize { o.shardSize = try ByteSize.parse(shardSize) }
            if let split {
                let sel = try SplitFile.selection(split)
                o.slides = sel.slides
                o.keys = sel.keys
            }
            let s = try ViewsRun.materialize(dataset: dataset, recipe: r, output: out, options: o)
            print(String(format: "%@: %d samples (%d views each) in %d shards, %.1f s", out, s.samples, r.viewCount, s.shards, s.seconds))
        } catch { throw fail(error) }
    }
}
