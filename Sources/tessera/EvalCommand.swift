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
    @Option(help: "Pipeline file with the views: recipe for --supervised when the checkpoint records none.")
    var recipe: String?
    @Option(help: "Directory for eval.json, report.txt and confusion.png.")
    var out: String?
    @Option(help: "Decode/resize threads (default: cores).")
    var workers: Int?
    @Flag(help: "No progress line.")
    var quiet = false

    func run() throws {
        do {
            var c = EvalConfig(checkpoint: checkpoint)
            c.dataset = dataset
            c.split = split
            c.train = train
            c.test = test
            c.subsets = subsets
            c.randomInit = randomInit
            c.supervised = supervised
            c.supervisedSteps = supervisedSteps
            c.supervisedBatch = supervisedBatch
            c.out = out
            c.recipe = recipe
            c.workers = workers
            c.quiet = quiet
            let s = try EvalRun.run(c)
            print(s.table)
            if !s.written.isEmpty {
                print("wrote " + s.written.joined(separator: ", "))
            } else if let report = s.report {
                print("\nLinear probe, largest subset:\n" + report.text)
            }
        } catch { throw fail(error) }
    }
}
