import ArgumentParser
import Foundation
import TesseraCore
import TesseraPipeline
import TesseraSplits
import TesseraShards
import TesseraSlide

extension TissueMethod: ExpressibleByArgument {}
extension TileFormat: ExpressibleByArgument {}
extension DepthConversion: ExpressibleByArgument {}

struct TileCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tile",
        abstract: "Cut slides or images into tissue tiles and write them as WebDataset shards.",
        discussion: """
        Rerunning the same command on the same output resumes a killed run. Exit status: 0 all slides \
        done or skipped, 3 some slides failed (the rest are done), 1 the run could not proceed.
        """)

    @Argument(help: "Slides, images, or folders of them (walked recursively).")
    var inputs: [String] = []
    @Option(name: .customLong("input-list"), help: "Text file of slide paths or folders, one per line (blank lines and # comments ignored), after the arguments.")
    var inputList: String?
    @Option(name: [.short, .customLong("output")], help: "Output dataset directory.")
    var output: String?
    @Option(help: "YAML pipeline file whose `tile:` section gives defaults; flags override it.")
    var config: String?
    @Option(help: "Target resolution in µm per pixel (e.g. 0.5).")
    var mpp: Double?
    @Option(help: "Target objective magnification (e.g. 20).")
    var magnification: Double?
    @Option(name: .customLong("assume-mpp"), help: "µm/px to use for slides that record none.")
    var assumeMpp: Double?
    @Flag(name: .customLong("allow-upsample"), help: "Allow targets finer than the scan.")
    var allowUpsample = false
    @Option(name: .customLong("tile-size"), help: "Tile side in pixels at the target resolution (default 256).")
    var tileSize: Int?
    @Option(help: "Step between tiles in pixels; smaller than the tile size means overlap (default: tile size).")
    var stride: Int?
    @Option(name: .customLong("min-tissue"), help: "Minimum tissue fraction for a tile to be kept, 0–1 (default 0.5).")
    var minTissue: Double?
    @Option(name: .customLong("tissue"), help: "Tissue detection: otsu (saturation), gray, none (default otsu).")
    var tissueMethod: TissueMethod?
    @Option(name: .customLong("mask-size"), help: "Longest side of the tissue-mask thumbnail (default 2048).")
    var maskSize: Int?
    @Option(name: .customLong("mask-dir"), help: "Folder of user masks named <slide id>.png (non-zero = tissue).")
    var maskDir: String?
    @Option(help: "Tile encoding: jpg, png, rgb8 (default jpg).")
    var format: TileFormat?
    @Option(help: "JPEG quality 1–100 for re-encoded tiles (default 90); tiles copied from the slide keep its quality.")
    var quality: Int?
    @Option(name: .customLong("shard-size"), help: "Target shard size, e.g. 64MB, 1GiB (default 64MiB).")
    var shardSize: String?
    @Option(name: .customLong("depth16"), help: "16-bit to 8-bit: stretch (image min–max) or scale (÷257) (default stretch).")
    var depth16: DepthConversion?
    @Flag(name: .customLong("no-thumbnails"), help: "Do not write QC thumbnails.")
    var noThumbnails = false
    @Flag(name: .customLong("no-checksum"), help: "Do not record each slide's sha256.")
    var noChecksum = false
    @Flag(name: .customLong("no-pass-through"), help: "Always decode and re-encode, even where the slide's own JPEG tiles could be copied.")
    var noPassThrough = false
    @Option(help: "Labels table CSV (slide_id or path, and patient_id, label, site); values go into each tile's metadata.")
    var labels: String?
    @Flag(name: .customLong("labels-from-folders"), help: "Label each image with the name of its folder (microscopy collections).")
    var labelsFromFolders = false
    @Option(help: "Stain normalization of every tile: none, macenko, macenko-staintools, reinhard, reinhard-cielab, vahadane.")
    var normalize: String?
    @Option(help: "Target JSON from `tessera stain fit` (Macenko without one uses the paper's reference target).")
    var stain: String?
    @Option(name: .customLong("stain-fit"), help: "Fit source stains per tile (default) or once per slide on 32 of its tissue tiles (slide).")
    var stainFit: String?
    @Option(help: ArgumentHelp("Tile only part I of N (I from 0) into OUT/parts/part-III-of-NNN; merge with `tessera merge OUT`.",
                               discussion: "Default inside a Slurm job array: from SLURM_ARRAY_TASK_ID/COUNT (and _MIN, _STEP). `none` turns it off.",
                               valueName: "I/N"))
    var partition: String?
    @Option(help: "Worker threads (default: cores). Does not change the output.")
    var workers: Int?
    @Option(name: .customLong("slide-timeout"), help: "Per-slide watchdog in seconds, 0 = off (default 1800).")
    var slideTimeout: Double?
    @Option(name: .customLong("max-pixels"), help: "Fail slides whose full resolution has more pixels than this, before reading any (default 1e11).")
    var maxPixels: Double?
    @Flag(help: "No progress line.")
    var quiet = false

    func run() throws {
        var c: TileConfig
        do {
            c = try config.map { path in
                guard let t = try PipelineFile.load(path: path).tile else {
                    throw TesseraError(.invalidConfig, path: path, "has no `tile:` section")
                }
                return t
            } ?? TileConfig()
        } catch { throw fail(error) }
        var given = inputs
        if let inputList {
            do { given += try InputList.read(path: inputList) } catch { throw fail(error) }
        }
        if !given.isEmpty { c.inputs = given }
        if let output { c.output = output }
        if let mpp { c.mpp = mpp; c.magnification = nil }
        if let magnification { c.magnification = magnification; if mpp == nil { c.mpp = nil } }
        if let assumeMpp { c.assumeMpp = assumeMpp }
        if allowUpsample { c.allowUpsample = true }
        if let tileSize { c.tileSize = tileSize }
        if let stride { c.stride = stride }
        if let minTissue { c.minTissue = minTissue }
        if let tissueMethod { c.tissueMethod = tissueMethod }
        if let maskSize { c.maskSize = maskSize }
        if let maskDir { c.maskDir = maskDir }
        if let format { c.format = format }
        if let quality { c.quality = quality }
        if let shardSize {
            do { c.shardSize = try ByteSize.parse(shardSize) } catch { throw fail(error) }
        }
        if let depth16 { c.depth16 = depth16 }
        if noThumbnails { c.thumbnails = false }
        if noChecksum { c.checksumSlides = false }
        if noPassThrough { c.passThrough = false }
        if let normalize {
            do { c.normalize = try parseMethod(normalize) } catch { throw fail(error) }
        }
        if let stain { c.stain = stain }
        if let stainFit {
            guard let f = TileConfig.StainFit(rawValue: stainFit) else { throw fail(TesseraError(.invalidConfig, "--stain-fit must be tile or slide, got \(stainFit)")) }
            c.stainFit = f
        }
        if let labels { c.labels = labels }
        if labelsFromFolders { c.labelsFromFolders = true }
        do {
            c.partition = try Partition.resolve(flag: partition, environment: ProcessInfo.processInfo.environment, configured: c.partition)
        } catch { throw fail(error) }
        if let workers { c.workers = workers }
        if let slideTimeout { c.slideTimeout = slideTimeout }
        if let maxPixels { c.maxPixels = maxPixels >= 1 && maxPixels < 9e18 ? Int(maxPixels) : 0 }
        if quiet { c.quiet = true }
        try runTiling(c)
    }
}

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Run a pipeline file (pipelines/*.yaml): its tile, train and eval sections, in that order.",
        discussion: "Each stage continues from what is already on disk: finished tiling and training are not redone.")
    @Argument(help: "Pipeline YAML file.")
    var pipeline: String
    @Flag(help: "No progress line.")
    var quiet = false

    func run() throws {
        let file: PipelineFile
        do { file = try PipelineFile.load(path: pipeline) } catch { throw fail(error) }
        guard file.tile != nil || file.train != nil || file.eval != nil else {
            throw fail(TesseraError(.invalidConfig, path: pipeline, "has no stage to run (expected `tile:`, `train:` or `eval:`)"))
        }
        if var tile = file.tile {
            if quiet { tile.quiet = true }
            try runTiling(tile)
        }
        do {
            if let train = file.train {
                guard let recipe = file.views else {
                    throw TesseraError(.invalidConfig, path: pipeline, "a train section needs a views section (the recipe)")
                }
                var o = TrainRun.Options()
                o.resume = true
                o.quiet = quiet
                let s = try TrainRun.run(train, recipe: recipe, options: o)
                print(String(format: "train: %@ (%d steps this run, final loss %.4f); curves: %@/loss.png, %@/lr.png",
                             s.checkpoint, s.steps, s.finalLoss, train.output, train.output))
            }
            if var eval = file.eval {
                if quiet { eval.quiet = true }
                if eval.recipe == nil, file.views != nil { eval.recipe = pipeline }
                let s = try EvalRun.run(eval)
                print(s.table)
                if !s.written.isEmpty { print("eval: wrote " + s.written.joined(separator: ", ")) }
            }
        } catch { throw fail(error) }
    }
}

struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "inspect", abstract: "Per-slide and per-shard counts of a dataset.")
    @Argument(help: "Dataset directory.")
    var directory: String
    @Option(name: .customLong("contact-sheet"), help: "Also write DIR/contact-sheet.png with this many random tiles (0 = none).")
    var contactSheet = 64
    @Option(help: "Seed choosing the contact-sheet tiles.")
    var seed: UInt64 = 0
    @Option(help: "Split file: also count tiles per label on each side.")
    var split: String?
    func run() throws {
        do {
            print(try DatasetInspector.report(directory: directory, split: try split.map { try SplitFile.read(path: $0) }))
            if contactSheet > 0 {
                let reader = try DatasetReader(directory: directory, allowIncomplete: true)
                if reader.count > 0 {
                    let path = directory + "/contact-sheet.png"
                    try PNGWriter.write(try ContactSheet.render(reader, count: contactSheet, seed: seed), to: path)
                    print("contact sheet: \(path) (\(min(contactSheet, reader.count)) random tiles)")
                }
            }
        } catch { throw fail(error) }
    }
}

struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "verify", abstract: "Recheck every shard against the manifest; non-zero exit on any mismatch.")
    @Argument(help: "Dataset directory.")
    var directory: String
    func run() throws {
        let problems: [String]
        do { problems = try DatasetVerifier.verify(directory: directory) } catch { throw fail(error) }
        if problems.isEmpty {
            print("\(directory): OK")
        } else {
            for p in problems { print("problem: \(p)") }
            print("\(directory): \(problems.count) problem(s)")
            throw ExitCode(2)
        }
    }
}

struct ReadCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "read",
        abstract: "Read one epoch of a dataset as a training loader would (CRC-checked), and report the rate.")
    @Argument(help: "Dataset directory.")
    var directory: String
    @Flag(help: "Decode every tile to pixels.")
    var decode = false
    @Option(help: "Reader threads, each a worker partition of the epoch (default 1).")
    var threads = 1
    @Option(help: "Shuffle seed.")
    var seed: UInt64 = 0
    @Option(help: "Epoch number (the order is a function of seed and epoch).")
    var epoch = 0
    @Flag(name: .customLong("no-shuffle"), help: "Read in manifest order.")
    var noShuffle = false
    @Option(help: "Training rank whose share of the epoch to read (0-based; with --world-size).")
    var rank = 0
    @Option(name: .customLong("world-size"), help: "Number of training ranks: each reads a disjoint share of the samples (default 1).")
    var worldSize = 1
    @Flag(help: "Print one JSON line instead of text.")
    var json = false
    @Option(help: "Read only part of a split: FILE:SELECTOR, e.g. splits/pbc.csv:train,subset=10 or splits/pbc.csv:trainval,fold!=2.")
    var split: String?

    func run() throws {
        do {
            let reader = try DatasetReader(directory: directory)
            let selection = try split.map { try SplitFile.selection($0) }
            var order = ReadOrder()
            order.seed = seed
            order.shuffle = !noShuffle
            order.rank = rank
            order.worldSize = worldSize
            let r = try ReadThroughput.run(reader, order: order, epoch: epoch, decode: decode, threads: max(1, threads),
                                           slides: selection?.slides, keys: selection?.keys)
            if json {
                print("{\"samples\": \(r.samples), \"bytes\": \(r.bytes), \"pixels\": \(r.pixels), \"seconds\": \(r.seconds)}")
            } else {
                print(String(format: "%d samples, %.1f MB in %.2f s: %.0f samples/s, %.0f MB/s%@", r.samples, Double(r.bytes) / 1e6, r.seconds,
                             Double(r.samples) / r.seconds, Double(r.bytes) / 1e6 / r.seconds, decode ? " (decoded)" : ""))
            }
        } catch { throw fail(error) }
    }
}
