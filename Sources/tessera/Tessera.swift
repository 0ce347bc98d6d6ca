import ArgumentParser
import Foundation
import TesseraCore
import TesseraPipeline

@main
struct Tessera: ParsableCommand {
    static func main() {
        // Over a file-size limit (ulimit -f) writes should fail with EFBIG and reach the user as a
        // clear "no space" error naming the file, not kill the process with SIGXFSZ.
        signal(SIGXFSZ, SIG_IGN)
        // OpenBLAS starts one spinning thread per core at load; only the trainer uses more than one
        // (train.blas_threads), so idle them until it asks.
        LinearAlgebra.setBLASThreads(1)
        Self.main(nil)
    }

    static let configuration = CommandConfiguration(
        commandName: "tessera",
        abstract: "Pathology slides and microscopy images to training-ready shards.",
        version: TileRun.version,
        subcommands: [TileCommand.self, MergeCommand.self, RunCommand.self, StainCommand.self, SplitCommand.self, ViewsCommand.self, TrainCommand.self, EvalCommand.self, BenchTrainCommand.self, InspectCommand.self, VerifyCommand.self, ReadCommand.self])
}

/// Prints a Tessera error the way users should see it and exits non-zero.
func fail(_ error: Error) -> ExitCode {
    let text = (error as? TesseraError)?.description ?? "\(error)"
    FileHandle.standardError.write(Data("error: \(text)\n".utf8))
    return ExitCode(1)
}

/// Runs a tile configuration and reports; exit 3 when some slides failed (the rest are done).
func runTiling(_ config: TileConfig) throws {
    let summary: TileSummary
    do { summary = try TileRun(config: config).run() } catch { throw fail(error) }
    let head = summary.alreadyComplete ? "already complete" : String(format: "done in %.1f s", summary.seconds)
    print("\(config.datasetDirectory): \(head): \(summary.slides) slides (\(summary.done) done, \(summary.skipped) skipped, \(summary.failed) failed), \(summary.samples) tiles in \(summary.shards) shards")
    for f in summary.failures { print("  failed \(f.id): \(f.reason)") }
    if summary.failed > 0 { throw ExitCode(3) }
}
