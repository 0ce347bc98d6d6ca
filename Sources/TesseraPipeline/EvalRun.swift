import Foundation
import TesseraAugment
import TesseraCore
import TesseraShards
import TesseraSlide
import TesseraSplits
import TesseraTrain

/// `tessera eval`: embeds labelled images with a checkpoint's backbone (whole tile resized to the
/// training view size, normalized as in training, batch norm in evaluation mode) and scores the
/// embeddings with a weighted kNN (k = 20, T = 0.07, DINO's eval_knn) and a linear probe (L2
/// multinomial logistic regression, C chosen by 3-fold cross-validation on the training labels),
/// for each few-label subset. Results: accuracy, balanced accuracy, per-class recall, confusion.
public enum EvalRun {
    /// The backbone and how to present images to it.
    public struct Model {
        public var network: Network
        public var inputSize: Int
        public var interpolation: Interpolation
        public var mean: [Float]
        public var std: [Float]
        public var description: String
        /// The training views (for the supervised baseline's augmentation), when the checkpoint names them.
        public var recipe: ViewRecipe?
        public var backbone: String
        public var seed: UInt64
    }

    /// A checkpoint's student backbone, or (randomInit) the same architecture freshly initialised —
    /// the baseline that shows what pretraining adds.
    public static func model(checkpoint path: String, randomInit: Bool = false) throws -> Model {
        let c = try Checkpoint.read(path)
        guard let json = c.metadata["settings"],
              let settings = try? JSONDecoder().decode(PretrainSettings.self, from: Data(json.utf8)) else {
            throw TesseraError(.corrupt, path: path, "checkpoint metadata has no readable training settings")
        }
        let net = try settings.buildNetwork()
        if !randomInit { try net.load(c.tensors, source: path) }
        func floats(_ key: String, _ d: [Float]) -> [Float] {
            guard let s = c.metadata[key] else { return d }
            let v = s.split(separator: ",").compactMap { Float($0) }
            return v.count == 3 ? v : d
        }
        let size = Int(c.metadata["input_size"] ?? "") ?? 64
        return Model(network: net, inputSize: size,
                     interpolation: Interpolation(rawValue: c.metadata["interpolation"] ?? "") ?? .bicubic,
                     mean: floats("normalize_mean", [0.485, 0.456, 0.406]), std: floats("normalize_std", [0.229, 0.224, 0.225]),
                     description: "\(settings.method.rawValue) \(settings.backbone)" + (randomInit ? " (random init)" : " step \(c.metadata["step"] ?? "?")"),
                     recipe: c.metadata["recipe"].flatMap { try? JSONDecoder().decode(ViewRecipe.self, from: Data($0.utf8)) },
                     backbone: settings.backbone, seed: settings.seed)
    }

    /// Labelled images: how to load image i, and its class.
    public struct LabelledImages: @unchecked Sendable {
        public var count: Int { labels.count }
        public var labels: [String]
        public var ids: [String]
        public var load: @Sendable (Int) throws -> RGBImage
    }

    /// Samples of a tiled dataset selected by a split selector, labelled by the split file.
    public static func images(dataset: String, split: SplitFile, selector: String) throws -> LabelledImages {
        let reader = try DatasetReader(directory: dataset)
        let sel = try split.select(selector)
        var labelOf: [String: String] = [:]
        for r in split.rows { if let l = r.slide.label { labelOf[r.slide.slideId] = l } }
        var order = ReadOrder()
        order.shuffle = false
        let indices = Array(try reader.epoch(0, order: order, slides: sel.slides, keys: sel.keys))
        var labels: [String] = [], ids: [String] = [], keep: [Int] = []
        for i in indices {
            guard let slide = reader.slideId(of: i), let l = labelOf[slide] else { continue }
            labels.append(l)
            ids.append(slide)
            keep.append(i)
        }
        guard !keep.isEmpty else {
            throw TesseraError(.invalidConfig, path: split.path, "selector '\(selector)' matches no labelled tile of \(dataset)")
        }
        let kept = keep
        return LabelledImages(labels: labels, ids: ids) { try ThreadTileReader.image(reader, kept[$0]) }
    }

    /// A folder with one sub-folder per class, or a CSV with `path,label` (paths relative to it).
    public static func images(folderOrCSV path: String) throws -> LabelledImages {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw TesseraError(.unreadable, path: path, "no such folder or CSV file")
        }
        var files: [(String, String)] = []
        let imageExtensions: Set<String> = ["png", "jpg", "jpeg", "tif", "tiff", "bmp", "webp"]
        if isDir.boolValue {
            let classes = try FileManager.default.contentsOfDirectory(atPath: path).filter { !$0.hasPrefix(".") }.sorted()
            for c in classes {
                var sub: ObjCBool = false
                guard FileManager.default.fileExists(atPath: path + "/" + c, isDirectory: &sub), sub.boolValue else { continue }
                let names = try FileManager.default.contentsOfDirectory(atPath: path + "/" + c).filter {
                    !$0.hasPrefix(".") && imageExtensions.contains(($0 as NSString).pathExtension.lowercased())
                }.sorted()
                files += names.map { (path + "/" + c + "/" + $0, c) }
            }
        } else {
            let table = try CSVTable.read(path: path)
            guard let pi = table.column("path"), let li = table.column("label") else {
                throw TesseraError(.invalidConfig, path: path, "a labels CSV needs the columns path and label")
            }
            let base = (path as NSString).deletingLastPathComponent
            for row in table.rows {
                let p = row[pi]
                files.append((p.hasPrefix("/") ? p : base + "/" + p, row[li]))
            }
        }
        guard !files.isEmpty else { throw TesseraError(.invalidConfig, path: path, "no labelled images found", hint: "one sub-folder per class, or a CSV with path,label") }
        let paths = files.map(\.0)
        return LabelledImages(labels: files.map(\.1), ids: paths) { i in
            let slide = try Slide.open(path: paths[i])
            return try slide.readRegion(x: 0, y: 0, width: slide.width, height: slide.height)
        }
    }

    /// Backbone features [N, F] of every image, decoded and resized on `workers` threads, forwarded
    /// in batches of `batch` (memory: a few batches of images, not the set).
    public static func embed(_ set: LabelledImages, model: Model, workers: Int, batch: Int = 128, quiet: Bool = true) throws -> [Float] {
        try forwardAll(set, model: model, workers: workers, batch: batch, quiet: quiet) { model.network.features(images: $0, shape: $1).data }
    }

    /// Runs `forward` over every image of the set, presented as `model` expects, in order.
    static func forwardAll(_ set: LabelledImages, model: Model, workers: Int, batch: Int, quiet: Bool,
                           forward: ([Float], [Int]) -> [Float]) throws -> [Float] {
        let size = model.inputSize, mean = model.mean, std = model.std, interp = model.interpolation
        let load = set.load
        let pool = OrderedPool<Range<Int>, Result<[Float], Error>, Void>(workers: max(1, workers), capacity: max(2, workers * 2),
                                                                        makeContext: { () }, threadExit: { VipsRuntime.threadShutdown() }) { range, _ in
            Result {
                var out: [Float] = []
                out.reserveCapacity(range.count * 3 * size * size)
                for i in range {
                    let im = try load(i)
                    let r = Resample.crop(im, x: 0, y: 0, width: im.width, height: im.height, outWidth: size, outHeight: size, interpolation: interp)
                    var t: [Float] = []
                    PixelOps.normalize(r, mean: mean, std: std, into: &t)
                    out += t
                }
                return out
            }
        }
        let n = set.count
        let ranges = stride(from: 0, to: n, by: batch).map { $0..<min(n, $0 + batch) }
        Thread.detachNewThread {
            for r in ranges { pool.submit(r) }
            pool.close()
        }
        let progress = ProgressReporter(label: "embed", unit: "image", total: n, quiet: quiet)
        var features: [Float] = []
        var k = 0
        while let r = pool.next(stuck: { _ in .failure(TesseraError(.timeout, "embedding a batch got stuck")) }) {
            let data = try r.get()
            let count = ranges[k].count
            k += 1
            features += forward(data, [count, 3, size, size])
            progress.advance(by: count)
        }
        progress.finish()
        return features
    }

    /// One probe result.
    public struct Score: Sendable {
        public var labelsPerClass: Int?
        public var trainCount: Int
        public var knn: ClassificationReport
        public var probe: ClassificationReport
        public var probeC: Double
    }

    /// kNN and linear probe trained on `train` (optionally the first `perClass` of each class in
    /// the given order) and scored on `test`.
    public static func score(trainFeatures: [Float], trainLabels: [Int], testFeatures: [Float], testLabels: [Int],
                             dimension: Int, classNames: [String], perClass: Int?) throws -> Score {
        let k = classNames.count
        let knn = try KNNClassifier(features: trainFeatures, labels: trainLabels, dimension: dimension, classes: k,
                                    k: min(20, trainLabels.count))
        let knnReport = try ClassificationReport(truth: testLabels, predicted: knn.predict(testFeatures), classNames: classNames)
        let c = try LogisticRegression.selectC(features: trainFeatures, labels: trainLabels, dimension: dimension, classes: k)
        let probe = try LogisticRegression.fit(features: trainFeatures, labels: trainLabels, dimension: dimension, classes: k, c: c)
        let probeReport = try ClassificationReport(truth: testLabels, predicted: probe.predict(features: testFeatures), classNames: classNames)
        return Score(labelsPerClass: perClass, trainCount: trainLabels.count, knn: knnReport, probe: probeReport, probeC: c)
    }
}

extension EvalRun {
    /// The supervised-from-scratch baseline on the rows `subset` of `train`: the checkpoint's
    /// backbone architecture (fresh weights) + a linear layer, trained on augmented single views
    /// (the first view of the training recipe) for `steps` steps of up to `batch` images, then
    /// scored on `test`.
    public static func supervised(train: LabelledImages, subset: [Int], labels: [Int], test: LabelledImages, testLabels: [Int],
                                  classNames: [String], model: Model, steps: Int, batch: Int, workers: Int) throws -> ClassificationReport {
        guard var recipe = model.recipe else {
            throw TesseraError(.invalidConfig, "the checkpoint does not record its view recipe; the supervised baseline needs it")
        }
        // Supervised training keeps the recipe's geometry (random resized crop, flips, rotations) but
        // not its photometric distortions: colour is a class cue the labels can use directly, and
        // SimCLR-strength colour jitter and grayscale slowed from-scratch training to near chance here.
        recipe.crops = [recipe.crops[0]]
        recipe.crops[0].count = 1
        recipe.crops[0].jitter = nil
        recipe.crops[0].grayscale = 0
        recipe.crops[0].blur = nil
        recipe.crops[0].solarize = PerView(0)
        recipe.stainJitter = nil
        let trainer = try SupervisedTrainer(backbone: model.backbone, classes: classNames.count, totalSteps: steps, seed: model.seed)
        let generator = try ViewGenerator(recipe: recipe, seed: model.seed &+ 1)
        let b = min(batch, subset.count)
        let load = train.load
        let rows = subset
        var epoch = 0
        while trainer.step < steps {
            // A seeded permutation of the labelled rows per epoch.
            var rng = SplitMix64(seed: model.seed ^ UInt64(epoch) &* 0x9E37_79B9_7F4A_7C15)
            var order = Array(0..<rows.count)
            for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
            // Only the batches still needed (a loader dropped early stops, but would have made batches for nothing).
            let needed = Array(order.prefix((steps - trainer.step) * b))
            let loader = try ViewBatchLoader(samples: needed, epoch: epoch, generator: generator, batchSize: b, workers: workers,
                                             dropLast: true, threadExit: { VipsRuntime.threadShutdown() }) { try load(rows[$0]) }
            while trainer.step < steps, let batch = try loader.next() {
                trainer.trainStep(images: batch.tensors[0], shape: batch.shapes[0], targets: batch.samples.map { labels[$0] })
            }
            epoch += 1
        }
        let predicted = try forwardAll(test, model: model, workers: workers, batch: 128, quiet: true) { data, shape in
            trainer.predict(images: data, shape: shape).map(Float.init)
        }
        return try ClassificationReport(truth: testLabels, predicted: predicted.map { Int($0) }, classNames: classNames)
    }
}
