import Foundation
import TesseraCore
import TesseraSlide
import TesseraSplits
import TesseraTrain

/// The `eval:` section of a pipeline file (and `tessera eval`'s options).
public struct EvalConfig: Decodable, Sendable {
    /// Checkpoint to score (default: the `train:` section's output checkpoint).
    public var checkpoint: String
    /// A tiled dataset with a split file, or `train`/`test` folders or CSVs.
    public var dataset: String?
    public var split: String?
    public var train: String?
    public var test: String?
    /// Labels per class to train the probes with, comma-separated; "all" = every training label.
    public var subsets = "1,5,10,25,50,100,250"
    public var randomInit = false
    public var supervised = false
    public var supervisedSteps = 150
    public var supervisedBatch = 32
    /// Directory for eval.json, report.txt and confusion.png.
    public var out: String?
    /// Pipeline file whose `views:` recipe the supervised baseline augments with, when the checkpoint
    /// does not record one (checkpoints record their training recipe).
    public var recipe: String?
    public var workers: Int?
    public var quiet = false

    public init(checkpoint: String) { self.checkpoint = checkpoint }

    enum Keys: String, CodingKey, CaseIterable {
        case checkpoint, dataset, split, train, test, subsets, out, workers, recipe
        case randomInit = "random_init", supervised, supervisedSteps = "supervised_steps", supervisedBatch = "supervised_batch"
    }
    static var knownKeys: Set<String> { Set(Keys.allCases.map(\.rawValue)) }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: Keys.self)
        checkpoint = try c.decodeIfPresent(String.self, forKey: .checkpoint) ?? ""
        dataset = try c.decodeIfPresent(String.self, forKey: .dataset)
        split = try c.decodeIfPresent(String.self, forKey: .split)
        train = try c.decodeIfPresent(String.self, forKey: .train)
        test = try c.decodeIfPresent(String.self, forKey: .test)
        if let s = try? c.decodeIfPresent(String.self, forKey: .subsets) { subsets = s } else if let v = try c.decodeIfPresent([Int].self, forKey: .subsets) {
            subsets = v.map(String.init).joined(separator: ",")
        }
        out = try c.decodeIfPresent(String.self, forKey: .out)
        recipe = try c.decodeIfPresent(String.self, forKey: .recipe)
        workers = try c.decodeIfPresent(Int.self, forKey: .workers)
        randomInit = try c.decodeIfPresent(Bool.self, forKey: .randomInit) ?? false
        supervised = try c.decodeIfPresent(Bool.self, forKey: .supervised) ?? false
        supervisedSteps = try c.decodeIfPresent(Int.self, forKey: .supervisedSteps) ?? 150
        supervisedBatch = try c.decodeIfPresent(Int.self, forKey: .supervisedBatch) ?? 32
    }
}

extension EvalRun {
    public struct Summary: Sendable {
        /// A Markdown table: model × labels per class → kNN and linear-probe accuracy and balanced accuracy.
        public var table: String
        public var json: [JSONValue]
        /// The linear probe's report for the checkpoint at the largest subset.
        public var report: ClassificationReport?
        public var written: [String] = []
    }

    /// Embeds, scores every subset with kNN and the linear probe (and the baselines asked for),
    /// and writes the outputs when `out` is set.
    public static func run(_ c: EvalConfig) throws -> Summary {
        if c.supervisedSteps < 1 || c.supervisedBatch < 2 {
        throw TesseraError(.invalidConfig, "eval: supervised_steps must be ≥ 1 and supervised_batch ≥ 2")
        }
        if let w = c.workers, !(1...256).contains(w) { throw TesseraError(.invalidConfig, "eval: workers must be 1–256, got \(w)") }
        let workers = c.workers ?? ProcessInfo.processInfo.activeProcessorCount
        let trainSet: LabelledImages, testSet: LabelledImages
        var minSubset: [String: Int]? = nil
        if let dataset = c.dataset, let split = c.split {
            let file = try SplitFile.read(path: split)
            trainSet = try images(dataset: dataset, split: file, selector: "train")
            testSet = try images(dataset: dataset, split: file, selector: "test")
            var m: [String: Int] = [:]
            for r in file.rows { if let s = r.minSubset { m[r.slide.slideId] = s } }
            minSubset = m
        } else if let train = c.train, let test = c.test {
            trainSet = try images(folderOrCSV: train)
            testSet = try images(folderOrCSV: test)
        } else {
            throw TesseraError(.invalidConfig, "give --dataset with --split, or --train and --test")
        }
        let classNames = Array(Set(trainSet.labels)).sorted()
        let index = Dictionary(uniqueKeysWithValues: classNames.enumerated().map { ($0.element, $0.offset) })
        let unknown = Set(testSet.labels).subtracting(classNames)
        guard unknown.isEmpty else {
            throw TesseraError(.invalidConfig, "test classes without training examples: \(unknown.sorted().joined(separator: ", "))")
        }
        let trainY = trainSet.labels.map { index[$0]! }, testY = testSet.labels.map { index[$0]! }
        var sizes: [Int?] = []
        for t in c.subsets.split(separator: ",") {
            let s = t.trimmingCharacters(in: .whitespaces)
            if s == "all" { sizes.append(nil); continue }
            guard let n = Int(s), n > 0 else { throw TesseraError(.invalidConfig, "--subsets: '\(s)' is not a positive count or 'all'") }
            sizes.append(n)
        }
        var models = [try model(checkpoint: c.checkpoint)]
        if models[0].recipe == nil, let path = c.recipe {
            guard let r = try PipelineFile.load(path: path).views else {
                throw TesseraError(.invalidConfig, path: path, "no views: section to take the recipe from")
            }
            models[0].recipe = r
        }
        if c.randomInit { models.append(try model(checkpoint: c.checkpoint, randomInit: true)) }
        var rows: [String] = ["| model | labels/class | train images | kNN acc | kNN bal. acc | probe acc | probe bal. acc |",
                              "|---|---:|---:|---:|---:|---:|---:|"]
        var json: [JSONValue] = []
        var lastReport: ClassificationReport?
        let maxPerClass = classNames.map { c in trainSet.labels.filter { $0 == c }.count }.max() ?? 0
        // Rows of a subset: split files name their nested subsets; folders take each class's first
        // N images in a seeded hash order (also nested).
        let hashOrder: [[Int]] = minSubset != nil ? [] : classNames.map { c in
            trainSet.ids.indices.filter { trainSet.labels[$0] == c }
                .map { (SHA256.hexDigest(of: Array("tessera-eval|\(trainSet.ids[$0])".utf8)), $0) }
                .sorted { $0.0 < $1.0 }.map(\.1)
        }
        func subsetRows(_ size: Int?) -> [Int] {
            guard let n = size else { return Array(trainSet.ids.indices) }
            if let m = minSubset { return trainSet.ids.indices.filter { (m[trainSet.ids[$0]] ?? Int.max) <= n } }
            return hashOrder.flatMap { $0.prefix(n) }.sorted()
        }
        func label(_ size: Int?) -> String { size.map { n in n >= maxPerClass ? "all (\(maxPerClass))" : String(n) } ?? "all (\(maxPerClass))" }
        // The labelled subsets, computed once: nested sizes that select the same rows are scored once.
        var plan: [(size: Int?, rows: [Int])] = []
        for size in sizes {
            let rows = subsetRows(size)
            if !rows.isEmpty, !plan.contains(where: { $0.rows.count == rows.count }) { plan.append((size, rows)) }
        }
        let quietEmbedding = c.quiet || trainSet.count + testSet.count < 5000
        for (mi, model) in models.enumerated() {
            let ftr = try embed(trainSet, model: model, workers: workers, quiet: quietEmbedding)
            let fte = try embed(testSet, model: model, workers: workers, quiet: quietEmbedding)
            let d = ftr.count / max(1, trainSet.count)
            for (size, keep) in plan {
                var xs: [Float] = []
                xs.reserveCapacity(keep.count * d)
                for i in keep { xs += ftr[(i * d)..<((i + 1) * d)] }
                let ys = keep.map { trainY[$0] }
                let s = try score(trainFeatures: xs, trainLabels: ys, testFeatures: fte, testLabels: testY, dimension: d,
                                  classNames: classNames, perClass: size)
                rows.append(String(format: "| %@ | %@ | %d | %.3f | %.3f | %.3f | %.3f |", model.description, label(size), keep.count,
                                   s.knn.accuracy, s.knn.balancedAccuracy, s.probe.accuracy, s.probe.balancedAccuracy))
                json.append(.object(["model": .string(model.description), "labels_per_class": size.map { .number(Double($0)) } ?? .null,
                                     "train_images": .number(Double(keep.count)),
                                     "knn_accuracy": .number(s.knn.accuracy), "knn_balanced_accuracy": .number(s.knn.balancedAccuracy),
                                     "probe_accuracy": .number(s.probe.accuracy), "probe_balanced_accuracy": .number(s.probe.balancedAccuracy),
                                     "probe_c": .number(s.probeC)]))
                if mi == 0 { lastReport = s.probe }
            }
        }
        if c.supervised {
            for (size, keep) in plan {
                let r = try supervised(train: trainSet, subset: keep, labels: keep.map { trainY[$0] }, test: testSet, testLabels: testY,
                                       classNames: classNames, model: models[0], steps: c.supervisedSteps, batch: c.supervisedBatch,
                                       workers: workers)
                let name = "supervised from scratch (\(models[0].backbone), \(c.supervisedSteps) steps)"
                rows.append(String(format: "| %@ | %@ | %d | – | – | %.3f | %.3f |", name, label(size), keep.count, r.accuracy, r.balancedAccuracy))
                json.append(.object(["model": .string(name), "labels_per_class": size.map { .number(Double($0)) } ?? .null,
                                     "train_images": .number(Double(keep.count)),
                                     "accuracy": .number(r.accuracy), "balanced_accuracy": .number(r.balancedAccuracy)]))
            }
        }
        var summary = Summary(table: rows.joined(separator: "\n"), json: json, report: lastReport)
        if let out = c.out, let report = lastReport {
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try AtomicFile.write(try encoder.encode(JSONValue.array(json)), to: out + "/eval.json")
            try AtomicFile.write(Data((summary.table + "\n\nLinear probe, largest subset:\n" + report.text).utf8), to: out + "/report.txt")
            try PNGWriter.write(report.figure(), to: out + "/confusion.png")
            summary.written = [out + "/eval.json", out + "/report.txt", out + "/confusion.png"]
        }
        return summary
    }
}
