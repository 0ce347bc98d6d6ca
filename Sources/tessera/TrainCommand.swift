import ArgumentParser
import Foundation
import TesseraCore
import TesseraPipeline

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Self-supervised pretraining (SimCLR, DINO, triplet) on a tiled dataset, on the CPU with OpenBLAS.",
        discussion: """
        The pipeline file's `train:` section names the dataset, output and settings; its `views:` section is the view recipe. \
        Writes checkpoint.safetensors (PyTorch loads it), train-log.csv, loss.png and lr.png into the output. \
        A killed run continues with --resume and sees exactly the batches it would have seen.
        """)
    @Argument(help: "Pipeline file with `train:` and `views:` sections, e.g. pipelines/pretrain-eval.yaml.")
    var pipeline: String
    @Flag(help: "Continue the run in the output directory from its checkpoint.")
    var resume = false
    @Option(help: "Override train.output.")
    var output: String?
    @Option(help: "Override train.epochs.")
    var epochs: Int?
    @Option(name: .customLong("max-steps"), help: "Stop after this many steps (the run stays resumable).")
    var maxSteps: Int?
    @Option(help: "Override the view workers.")
    var workers: Int?
    @Flag(help: "No progress line.")
    var quiet = false

    func run() throws {
        do {
            let file = try PipelineFile.load(path: pipeline)
            guard var config = file.train else {
                throw TesseraError(.invalidConfig, path: pipeline, "no `train:` section", hint: "see pipelines/pretrain-eval.yaml")
            }
            guard let recipe = file.views else {
                throw TesseraError(.invalidConfig, path: pipeline, "no `views:` section: training needs a view recipe", hint: "see pipelines/pretrain-eval.yaml")
            }
            if let output { config.output = output }
            if let epochs { config.settings.epochs = epochs }
            if let workers { config.workers = workers }
            var o = TrainRun.Options()
            o.resume = resume
            o.quiet = quiet
            o.maxSteps = maxSteps
            let s = try TrainRun.run(config, recipe: recipe, options: o)
            print(String(format: "%@: %d steps, %d samples in %.1f s (%.1f samples/s), final loss %.4f", s.checkpoint, s.steps, s.samples,
                         s.seconds, Double(s.samples) / max(1e-9, s.seconds), s.finalLoss))
        } catch { throw fail(error) }
    }
}
