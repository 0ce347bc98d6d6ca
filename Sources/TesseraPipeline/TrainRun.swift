import Foundation
import TesseraAugment
import TesseraCore
import TesseraShards
import TesseraSlide
import TesseraSplits
import TesseraTrain

/// `tessera train`: self-supervised pretraining fed by the shard reader and the view loader.
///
/// Output directory: `checkpoint.safetensors` (everything needed to resume, rewritten atomically at
/// the end of every epoch and every `checkpoint_every` steps), `train-log.csv` (one row per step,
/// rewritten just before each checkpoint; a resume drops any rows past the checkpoint's step),
/// `loss.png` and `lr.png` curves. The sample order of epoch e is the reader's shuffled order for
/// (seed, e) and the views are a function of (seed, epoch, sample, view), so a resumed run sees
/// exactly the batches an uninterrupted run would.
public enum TrainRun {
    public struct Options: Sendable {
        public var resume = false
        public var quiet = false
        /// Stop after this many steps in this invocation (tests and benchmarks; the run stays resumable).
        public var maxSteps: Int?
        public init() {}
    }

    public struct Summary: Sendable {
        public var steps: Int
        public var samples: Int
        public var seconds: Double
        public var finalLoss: Float
        public var checkpoint: String
    }

    public static let checkpointName = "checkpoint.safetensors"

    public static func run(_ config: TrainConfig, recipe: ViewRecipe, options: Options = Options()) throws -> Summary {
        try config.validate()
        let s = config.settings
        try checkRecipe(recipe, method: s.method)
        let reader = try DatasetReader(directory: config.dataset)
        var selection: SplitFile.Selection?
        if let split = config.split { selection = try SplitFile.selection(split) }
        var order = ReadOrder()
        order.seed = s.seed
        let epochZero = try reader.epoch(0, order: order, slides: selection?.slides, keys: selection?.keys)
        let samplesPerEpoch = epochZero.count
        let stepsPerEpoch = samplesPerEpoch / s.batchSize
        guard stepsPerEpoch >= 1 else {
            throw TesseraError(.invalidConfig, path: config.dataset,
                               "\(samplesPerEpoch) training samples do not fill one batch of \(s.batchSize)", hint: "lower train.batch_size")
        }
        LinearAlgebra.setBLASThreads(config.blasThreads)
        let trainer = try Pretrainer(settings: s, stepsPerEpoch: stepsPerEpoch)
        try FileManager.default.createDirectory(atPath: config.output, withIntermediateDirectories: true)
        // Two trainers on one output would overwrite each other's checkpoints: the second is refused.
        let lock = try DirectoryLock(directory: config.output, purpose: "training")
        defer { withExtendedLifetime(lock) {} }
        let ckptPath = config.output + "/" + checkpointName
        let settingsJSON = String(decoding: try JSONEncoder.sorted.encode(s), as: UTF8.self)
        var log: [String] = []
        if FileManager.default.fileExists(atPath: ckptPath) {
            guard options.resume else {
                throw TesseraError(.invalidConfig, path: config.output, "a training run is already here",
                                   hint: "add --resume to continue it, or choose another output")
            }
            let c = try Checkpoint.read(ckptPath)
            guard c.metadata["settings"] == settingsJSON else {
                throw TesseraError(.mismatch, path: ckptPath, "the checkpoint was written with other training settings",
                                   hint: "resume with the same pipeline file, or train into a new output")
            }
            guard let step = Int(c.metadata["step"] ?? "") else { throw TesseraError(.corrupt, path: ckptPath, "checkpoint metadata has no step") }
            try trainer.restore(tensors: c.tensors, step: step, source: ckptPath)
            log = readLog(config.output, upTo: step)
        }
        let generator = try ViewGenerator(recipe: recipe, seed: s.seed)
        let workers = config.workers ?? max(1, ProcessInfo.processInfo.activeProcessorCount)
        let progress = ProgressReporter(label: "train", unit: "step", total: trainer.totalSteps - trainer.step, quiet: options.quiet)
        let start = Date()
        var stepsRun = 0, lastLoss: Float = .nan
        if log.isEmpty { log.append("step,epoch,loss,lr,weight_decay,monitor,grad_norm,images_per_s") }

        func save() throws {
            var meta = ["step": String(trainer.step), "epoch": String(trainer.epoch), "settings": settingsJSON,
                        "method": s.method.rawValue, "backbone": s.backbone,
                        "samples_per_epoch": String(samplesPerEpoch), "tool": "tessera \(TileRun.version)"]
            if let split = config.split { meta["split"] = split }
            // How evaluation should present whole tiles to the backbone: the views' size and normalization.
            meta["input_size"] = String(recipe.crops[0].size)
            meta["recipe"] = String(decoding: try JSONEncoder.sorted.encode(recipe), as: UTF8.self)
            meta["interpolation"] = recipe.crops[0].interpolation.rawValue
            meta["normalize_mean"] = recipe.normalize.mean.map { String($0) }.joined(separator: ",")
            meta["normalize_std"] = recipe.normalize.std.map { String($0) }.joined(separator: ",")
            // The log first: killed between the two writes, the log holds rows past the checkpoint's
            // step (a resume drops them) rather than lacking rows the resumed run would never redo.
            try AtomicFile.write(Data((log.joined(separator: "\n") + "\n").utf8), to: config.output + "/train-log.csv")
            try Checkpoint(tensors: trainer.checkpointTensors, metadata: meta).write(to: ckptPath)
        }

        epochs: while trainer.step < trainer.totalSteps {
            if let m = options.maxSteps, stepsRun >= m { break }
            let e = trainer.epoch
            let inEpoch = trainer.step - e * stepsPerEpoch
            let epochOrder = Array(try reader.epoch(e, order: order, slides: selection?.slides, keys: selection?.keys))
            var todo = Array(epochOrder[(inEpoch * s.batchSize)..<(stepsPerEpoch * s.batchSize)])
            // Only the batches this invocation will take (a loader dropped early stops, but would have made batches for nothing).
            if let m = options.maxSteps { todo = Array(todo.prefix((m - stepsRun) * s.batchSize)) }
            let loader = try ViewBatchLoader(samples: todo, epoch: e, generator: generator, batchSize: s.batchSize, workers: workers,
                                             dropLast: true, threadExit: { VipsRuntime.threadShutdown() }) { i in
                try ThreadTileReader.image(reader, i)
            }
            var tick = Date()
            while let batch = try loader.next() {
                let groups = zip(batch.tensors, batch.shapes).map { (data: $0.0, shape: $0.1) }
                let st = trainer.trainStep(groups: groups, batch: batch.samples.count)
                guard st.loss.isFinite else {
                    throw TesseraError(.invalidConfig, path: config.output, "the loss became \(st.loss) at step \(trainer.step)",
                                       hint: "lower train.lr or set train.clip_grad; the last checkpoint is intact")
                }
                let now = Date()
                let rate = Double(batch.samples.count) / max(1e-9, now.timeIntervalSince(tick))
                tick = now
                log.append(String(format: "%d,%d,%.6f,%.6g,%.6g,%.5f,%.4f,%.1f", trainer.step, e, st.loss, st.learningRate, st.weightDecay,
                                  st.monitor, st.gradientNorm, rate))
                lastLoss = st.loss
                stepsRun += 1
                progress.advance(status: String(format: "epoch %d loss %.4f lr %.3g %.0f img/s", e, st.loss, st.learningRate, rate))
                if config.checkpointEvery > 0, trainer.step % config.checkpointEvery == 0 { try save() }
                if let m = options.maxSteps, stepsRun >= m { break epochs }
            }
            if trainer.step % stepsPerEpoch == 0 { try save() }
        }
        try save()
        progress.finish(status: String(format: "loss %.4f", lastLoss))
        try TrainCurves.write(log: log, to: config.output)
        return Summary(steps: stepsRun, samples: stepsRun * s.batchSize, seconds: Date().timeIntervalSince(start),
                       finalLoss: lastLoss, checkpoint: ckptPath)
    }

    static func checkRecipe(_ r: ViewRecipe, method: PretrainSettings.Method) throws {
        guard let first = r.crops.first else { throw TesseraError(.invalidConfig, "the view recipe has no crops") }
        switch method {
        case .simclr, .triplet:
            guard first.count >= 2 else {
                throw TesseraError(.invalidConfig, "\(method.rawValue) needs two views per tile: the recipe's first crop group has count \(first.count)")
            }
        case .dino:
            guard first.count >= 2 || r.crops.count > 1 else {
                throw TesseraError(.invalidConfig, "DINO needs at least two crops per tile (global crops in the first group)")
            }
        }
    }

    /// The log rows of steps before `step` (a resumed run redoes the rest).
    static func readLog(_ dir: String, upTo step: Int) -> [String] {
        guard let data = AtomicFile.read(dir + "/train-log.csv") else { return [] }
        let text = String(decoding: data, as: UTF8.self)
        var out: [String] = []
        for line in text.split(separator: "\n") {
            if line.hasPrefix("step,") { out.append(String(line)); continue }
            if let s = Int(line.prefix { $0 != "," }), s <= step { out.append(String(line)) }
        }
        return out
    }
}

extension JSONEncoder {
    static var sorted: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return e
    }
}
