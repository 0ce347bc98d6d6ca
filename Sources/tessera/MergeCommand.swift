import ArgumentParser
import Foundation
import TesseraCore
import TesseraPipeline

struct MergeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Combine the parts of a partitioned `tessera tile` (OUT/parts/*) into one dataset at OUT.",
        discussion: """
        The merged shards are re-packed in the collection's order and are byte-identical to a single-machine \
        run's. Refuses while a part is missing or unfinished (exit 1, listing them) unless --allow-partial. \
        Rerunning continues an interrupted merge; over unchanged parts it does nothing. Exit status 3 when \
        some slides failed (recorded in the manifest), as for `tessera tile`.
        """)
    @Argument(help: "The output directory given to the partitioned runs (holds parts/).")
    var directory: String
    @Flag(name: .customLong("allow-partial"), help: "Merge the complete parts even if others are missing; the manifest records which.")
    var allowPartial = false
    @Flag(help: "No progress line.")
    var quiet = false

    func run() throws {
        let s: MergeSummary
        do {
            s = try DatasetMerge.run(directory: directory, allowPartial: allowPartial, quiet: quiet)
        } catch { throw fail(error) }
        let head = s.alreadyComplete ? "already merged" : "merged"
        print("\(directory): \(head) \(s.parts - s.missing.count) of \(s.parts) parts: \(s.slides) slides, \(s.samples) tiles in \(s.shards) shards")
        if !s.missing.isEmpty { print("  left out (--allow-partial): " + s.missing.joined(separator: ", ")) }
        if s.failed > 0 {
            print("  \(s.failed) slides failed (see `tessera inspect \(directory)`)")
            throw ExitCode(3)
        }
    }
}
