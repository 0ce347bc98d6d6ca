import ArgumentParser
import Foundation
import TesseraCore
import TesseraPipeline
import TesseraSlide
import TesseraSplits
import TesseraTrain

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Score a checkpoint's features with a weighted kNN and a linear probe, per few-label subset.",
        discussion: """
        Either a tiled dataset with a split file (train on `train,subset=N` for each N, test on `test`), or any labelled \
        images: --train and --test as folders with one sub-folder per class or CSVs with path,label. \
        --random-init adds the same architecture untrained, the baseline pretraining must beat.
        """)
    @Option(help: "Checkpoint from `tessera train`.")
    var checkpoint: String
    @Option(help: "Tiled dataset (with --split).")
    var dataset: String?
    @Option(help: "Split file whose train side trains the probes and whose test side scores them.")
    var split: String?
    @Option(help: "Training images: a folder of class sub-folders or a CSV with path,label.")
    var train: String?
    @Option(help: "Test images: a folder of class sub-folders or a CSV with path,label.")
    var test: String?
    @Option(help: "Labels per class to train the probes with (comma-separated; 'all' = every training label).")
    var subsets = "1,5,10,25,50,100,250"
    @Flag(name: .customLong("random-init"), help: "Also score a randomly initialised backbone of the same architecture.")
    var randomInit = false
    @Flag(help: "Also train the same architecture from scratch on each labelled subset (the supervised baseline).")
    var supervised = false
    @Option(name: .customLong("supervised-steps"), help: "Training steps of each supervised baseline.")
    var supervisedSteps = 150
    @Option(name: .customLong("supervised-batch"), help: "Batch size of the supervised baseline.")
    var supervisedBatch = 32
    @Option(help: "Directory for eval.json, report.txt and confusion.png.")
    var out: String?
    @Option(help: "Decode/resize threads (default: cores).")
    var workers: Int?
    @Flag(help: "No progress line.")
    var quiet = false

    func run() throws {
        do {
            let workers = self.workers ?? ProcessInfo.processInfo.activeProcessorCount
            let trainSet: EvalRun.LabelledImages, testSet: EvalRun.LabelledImages
            var minSubset: [String: Int]? = nil
            if let dataset, let split {
                let file = try SplitFile.read(path: split)
                trainSet = try EvalRun.images(dataset: dataset, split: file, selector: "train")
                testSet = try EvalRun.images(dataset: dataset, split: file, selector: "test")
                var m: [String: Int] = [:]
                for r in file.rows { if let s = r.minSubset { m[r.slide.slideId] = s } }
                minSubset = m
            } else if let train, let test {
                trainSet = try EvalRun.images(folderOrCSV: train)
                testSet = try EvalRun.images(folderOrCSV: test)
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
            for t in subsets.split(separator: ",") {
                let s = t.trimmingCharacters(in: .whitespaces)
                if s == "all" { sizes.append(nil); continue }
                guard let n = Int(s), n > 0 else { throw TesseraError(.invalidConfig, "--subsets: '\(s)' is not a positive count or 'all'") }
                sizes.append(n)
            }
            var models = [try EvalRun.model(checkpoint: checkpoint)]
            if randomInit { models.append(try EvalRun.model(checkpoint: checkpoint, randomInit: true)) }
            var rows: [String] = ["| model | labels/class | train images | kNN acc | kNN bal. acc | probe acc | probe bal. acc |",
                                  "|---|---:|---:|---:|---:|---:|---:|"]
            var json: [JSONValue] = []
            var lastReport: ClassificationReport?
            let maxPerClass = classNames.map { c in trainSet.labels.filter { $0 == c }.count }.max() ?? 0
            // Rows of a subset: split files name their nested subsets; folders take each class's first
            // N images in a seeded hash order (also nested).
            func subsetRows(_ size: Int?) -> [Int] {
                guard let n = size else { return Array(trainSet.ids.indices) }
                if let m = minSubset { return trainSet.ids.indices.filter { (m[trainSet.ids[$0]] ?? Int.max) <= n } }
                var keep: [Int] = []
                for c in classNames {
                    let members = trainSet.ids.indices.filter { trainSet.labels[$0] == c }
                        .map { (SHA256.hexDigest(of: Array("tessera-eval|\(trainSet.ids[$0])".utf8)), $0) }
                        .sorted { $0.0 < $1.0 }.map(\.1)
                    keep += members.prefix(n)
                }
                return keep.sorted()
            }
            func label(_ size: Int?) -> String { size.map { n in n >= maxPerClass ? "all (\(maxPerClass))" : String(n) } ?? "all (\(maxPerClass))" }
            for model in models {
                let ftr = try EvalRun.embed(trainSet, model: model, workers: workers, quiet: quiet)
                let fte = try EvalRun.embed(testSet, model: model, workers: workers, quiet: quiet)
                let d = ftr.count / max(1, trainSet.count)
                var seenCounts = Set<Int>()
                for size in sizes {
                    let keep = subsetRows(size)
                    guard !keep.isEmpty, !seenCounts.contains(keep.count) else { continue }
                    seenCounts.insert(keep.count)
                    var xs: [Float] = []
                    xs.reserveCapacity(keep.count * d)
                    for i in keep { xs += ftr[(i * d)..<((i + 1) * d)] }
                    let ys = keep.map { trainY[$0] }
                    let s = try EvalRun.score(trainFeatures: xs, trainLabels: ys, testFeatures: fte, testLabels: testY, dimension: d,
                                              classNames: classNames, perClass: size)
                    rows.append(String(format: "| %@ | %@ | %d | %.3f | %.3f | %.3f | %.3f |", model.description, label(size), keep.count,
                                       s.knn.accuracy, s.knn.balancedAccuracy, s.probe.accuracy, s.probe.balancedAccuracy))
                    json.append(.object(["model": .string(model.description), "labels_per_class": size.map { .number(Double($0)) } ?? .null,
                                         "train_images": .number(Double(keep.count)),
                                         "knn_accuracy": .number(s.knn.accuracy), "knn_balanced_accuracy": .number(s.knn.balancedAccuracy),
                                         "probe_accuracy": .number(s.probe.accuracy), "probe_balanced_accuracy": .number(s.probe.balancedAccuracy),
                                         "probe_c": .number(s.probeC)]))
                    if model.description == models[0].description { lastReport = s.probe }
                }
            }
            if supervised {
                var seenCounts = Set<Int>()
                for size in sizes {
                    let keep = subsetRows(size)
                    guard !keep.isEmpty, !seenCounts.contains(keep.count) else { continue }
                    seenCounts.insert(keep.count)
                    let r = try EvalRun.supervised(train: trainSet, subset: keep, labels: keep.map { trainY[$0] }, test: testSet, testLabels: testY,
                                                   classNames: classNames, model: models[0], steps: supervisedSteps, batch: supervisedBatch,
                                                   workers: workers)
                    let name = "supervised from scratch (\(models[0].backbone), \(supervisedSteps) steps)"
                    rows.append(String(format: "| %@ | %@ | %d | – | – | %.3f | %.3f |", name, label(size), keep.count, r.accuracy, r.balancedAccuracy))
                    json.append(.object(["model": .string(name), "labels_per_class": size.map { .number(Double($0)) } ?? .null,
                                         "train_images": .number(Double(keep.count)),
                                         "accuracy": .number(r.accuracy), "balanced_accuracy": .number(r.balancedAccuracy)]))
                }
            }
            print(rows.joined(separator: "\n"))
            if let out, let report = lastReport {
                try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                try AtomicFile.write(try encoder.encode(JSONValue.array(json)), to: out + "/eval.json")
                try AtomicFile.write(Data((rows.joined(separator: "\n") + "\n\nLinear probe, largest subset:\n" + report.text).utf8),
                                     to: out + "/report.txt")
                try PNGWriter.write(report.figure(), to: out + "/confusion.png")
                print("wrote \(out)/eval.json, report.txt, confusion.png")
            } else if let report = lastReport {
                print("\nLinear probe, largest subset:\n" + report.text)
            }
        } catch { throw fail(error) }
    }
}
