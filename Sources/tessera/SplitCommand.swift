import ArgumentParser
import Foundation
import TesseraCore
import TesseraPipeline
import TesseraSplits

struct SplitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "split",
        abstract: "Grouped, stratified train/val/test splits with k-fold and nested few-label subsets, and leakage checks.",
        subcommands: [SplitMakeCommand.self, SplitCheckCommand.self],
        defaultSubcommand: SplitMakeCommand.self)
}

struct SplitMakeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "make",
        abstract: "Write splits/<name>.csv: one row per slide with its side, fold and smallest few-label subset.",
        discussion: """
        Sides are a function of (seed, group id) with --assign hash (default), so adding slides never moves \
        existing ones; --assign balanced fills exact per-class quotas instead. Folds cover the non-test groups. \
        Subsets are nested: the n-per-class subset lies inside every larger one.
        """)
    @Argument(help: "Dataset directory (its manifest lists the slides). Omit to split the rows of --labels alone.")
    var dataset: String?
    @Option(name: [.short, .customLong("output")], help: "Split file to write, e.g. splits/pbc.csv.")
    var output: String
    @Option(help: "Labels table CSV: slide_id or path, and patient_id, label, site.")
    var labels: String?
    @Flag(name: .customLong("labels-from-folders"), help: "Label = the folder holding each image (microscopy collections).")
    var labelsFromFolders = false
    @Flag(name: .customLong("ignore-unknown"), help: "Allow table rows naming slides the dataset does not have.")
    var ignoreUnknown = false
    @Flag(name: .customLong("allow-missing"), help: "Split dataset slides that have no table row, unlabelled.")
    var allowMissing = false
    @Option(help: "Keep together: patient (default), slide, or site.")
    var group: String = "patient"
    @Option(help: "hash (stable as the collection grows; default) or balanced (exact per-class quotas).")
    var assign: String = "hash"
    @Option(help: "Test fraction of groups (default 0.2).")
    var test = 0.2
    @Option(help: "Validation fraction of groups (default 0.1).")
    var val = 0.1
    @Option(help: "Cross-validation folds over the non-test groups; 0 = none (default 5).")
    var folds = 5
    @Option(help: "Nested few-label subset sizes per class, comma-separated (default 1,5,10,25,50,100,250; empty = none).")
    var subsets = "1,5,10,25,50,100,250"
    @Option(name: .customLong("subset-unit"), help: "Subset sizes count slides (default) or tiles.")
    var subsetUnit = "slide"
    @Option(help: "Seed (default 0).")
    var seed: UInt64 = 0

    func run() throws {
        do {
            var o = DatasetSplitting.Options()
            o.labels = labels
            o.labelsFromFolders = labelsFromFolders
            o.ignoreUnknown = ignoreUnknown
            o.allowMissing = allowMissing
            guard let g = SplitGrouping(rawValue: group) else { throw TesseraError(.invalidConfig, "--group must be patient, slide or site, got \(group)") }
            guard let a = SplitAssignment(rawValue: assign) else { throw TesseraError(.invalidConfig, "--assign must be hash or balanced, got \(assign)") }
            guard let u = SplitRule.SubsetUnit(rawValue: subsetUnit) else { throw TesseraError(.invalidConfig, "--subset-unit must be slide or tile, got \(subsetUnit)") }
            var sizes: [Int] = []
            for part in subsets.split(separator: ",") {
                guard let n = Int(part.trimmingCharacters(in: .whitespaces)) else {
                    throw TesseraError(.invalidConfig, "--subsets: `\(part)` is not a number (example: 1,5,10,25)")
                }
                sizes.append(n)
            }
            o.rule.seed = seed
            o.rule.group = g
            o.rule.assignment = a
            o.rule.test = test
            o.rule.val = val
            o.rule.folds = folds
            o.rule.subsets = sizes
            o.rule.subsetUnit = u
            let (file, report) = try DatasetSplitting.make(dataset: dataset, output: output, options: o, tool: "")
            try file.write()
            print("\(output): \(file.rows.count) slides; \(file.rule)")
            print(report)
            let leaks = LeakageCheck.check(file)
            if !leaks.isEmpty {
                for l in leaks { print("leak: \(l)") }
                throw TesseraError(.invalidConfig, path: output, "the split leaks (patients on two sides?)", hint: "group by patient (--group patient) when slides share patients")
            }
        } catch let e as ExitCode { throw e } catch { throw fail(error) }
    }
}

struct SplitCheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Fail (exit 2) if a patient, slide, slide file or tile (same source coordinates or identical pixels) is on two sides.")
    @Argument(help: "Split file (splits/<name>.csv).")
    var split: String
    @Option(help: "Dataset directory: also compare slide files and every tile.")
    var dataset: String?

    func run() throws {
        let leaks: [Leak]
        do { leaks = try DatasetSplitting.check(split: try SplitFile.read(path: split), dataset: dataset) } catch { throw fail(error) }
        if leaks.isEmpty {
            print("\(split): no leakage\(dataset == nil ? " (table only; pass --dataset to compare tiles)" : "")")
            return
        }
        for l in leaks { print("leak: \(l)") }
        print("\(split): \(leaks.count) leak(s)")
        throw ExitCode(2)
    }
}
