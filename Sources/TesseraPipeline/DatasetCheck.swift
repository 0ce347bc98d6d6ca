import Foundation
import TesseraCore
import TesseraShards
import TesseraSplits

/// `tessera verify`: rechecks every shard of a dataset against its manifest.
public enum DatasetVerifier {
    /// Problems found (empty = the dataset is intact). Also reports shards on disk the manifest does not list.
    public static func verify(directory: String) throws -> [String] {
        let manifest = try DatasetManifest.load(directory: directory)
        var problems: [String] = []
        if manifest.status != .complete {
            problems.append("\(directory): the run is not complete (status \(manifest.status.rawValue)); rerun the same `tessera tile` command to finish it")
        }
        let shardDir = directory + "/shards"
        var total = 0
        for info in manifest.shards {
            problems += ShardVerifier.verify(shardAt: URL(fileURLWithPath: shardDir + "/" + info.name), expected: info)
            total += info.samples
        }
        let listed = Set(manifest.shards.flatMap { [$0.name, ShardIndex.indexName(forShard: $0.name)] })
        for name in ((try? FileManager.default.contentsOfDirectory(atPath: shardDir)) ?? []).sorted() where !listed.contains(name) {
            problems.append("\(shardDir)/\(name): not listed in the manifest (left over from an interrupted run?)")
        }
        let perSlide = manifest.slides.reduce(0) { $0 + $1.samples }
        if manifest.status == .complete && perSlide != total {
            problems.append("\(directory): slides account for \(perSlide) samples but shards hold \(total)")
        }
        return problems
    }
}

/// `tessera inspect`: per-slide and per-shard counts of a dataset.
public enum DatasetInspector {
    public static func report(directory: String, split: SplitFile? = nil) throws -> String {
        let m = try DatasetManifest.load(directory: directory)
        var lines: [String] = []
        let bytes = m.shards.reduce(0) { $0 + $1.bytes }
        lines.append("dataset \(directory): \(m.status.rawValue), \(m.samples) samples in \(m.shards.count) shards (\(formatBytes(bytes))), format v\(m.formatVersion), config \(m.configHash.prefix(12))")
        let done = m.slides.filter { $0.status == .done }.count
        let skipped = m.slides.filter { $0.status == .skipped }.count
        let failed = m.slides.filter { $0.status == .failed }.count
        lines.append("slides: \(m.inputs.count) inputs, \(done) done, \(skipped) skipped, \(failed) failed")
        lines.append("")
        lines.append(pad("slide", 40) + pad("status", 9) + pad("tiles", 8) + pad("µm/px", 9) + pad("tissue", 8) + "notes")
        for s in m.slides {
            let mpp = s.mpp.map { String(format: "%.3f", $0) } ?? "-"
            let tissue = s.tissueFraction.map { String(format: "%.1f%%", $0 * 100) } ?? "-"
            var notes = s.flags.joined(separator: ",")
            if let r = s.reason { notes += (notes.isEmpty ? "" : "; ") + r }
            lines.append(pad(s.id, 40) + pad(s.status.rawValue, 9) + pad("\(s.samples)", 8) + pad(mpp, 9) + pad(tissue, 8) + notes)
        }
        lines.append(contentsOf: labelBreakdown(m, split: split))
        lines.append("")
        lines.append(pad("shard", 22) + pad("samples", 9) + pad("bytes", 12) + "sha256")
        for s in m.shards {
            lines.append(pad(s.name, 22) + pad("\(s.samples)", 9) + pad(formatBytes(s.bytes), 12) + String(s.sha256.prefix(16)))
        }
        return lines.joined(separator: "\n")
    }

    /// Tiles and slides per label, and per split side when a split file is given.
    static func labelBreakdown(_ m: DatasetManifest, split: SplitFile?) -> [String] {
        let sideOf = Dictionary((split?.rows ?? []).map { ($0.slide.slideId, $0.side.rawValue) }, uniquingKeysWith: { a, _ in a })
        let splitLabel = Dictionary((split?.rows ?? []).compactMap { r in r.slide.label.map { (r.slide.slideId, $0) } },
                                    uniquingKeysWith: { a, _ in a })
        let labelOf: [String: String] = Dictionary(m.slides.map { s in (s.id, s.label ?? splitLabel[s.id] ?? "(none)") },
                                                   uniquingKeysWith: { a, _ in a })
        guard labelOf.values.contains(where: { $0 != "(none)" }) || split != nil else { return [] }
        let sides = split == nil ? [] : ["train", "val", "test", "(not in split)"]
        var lines = ["", pad("label", 24) + pad("slides", 9) + pad("tiles", 10) + sides.map { pad($0 + " tiles", 16) }.joined()]
        let labels = Array(Set(labelOf.values)).sorted()
        for l in labels + ["all"] {
            let slides = m.slides.filter { l == "all" || labelOf[$0.id] == l }
            var line = pad(l, 24) + pad("\(slides.count)", 9) + pad("\(slides.reduce(0) { $0 + $1.samples })", 10)
            for side in sides {
                let n = slides.filter { (sideOf[$0.id] ?? "(not in split)") == side }.reduce(0) { $0 + $1.samples }
                line += pad("\(n)", 16)
            }
            lines.append(line)
        }
        return lines
    }

    static func pad(_ s: String, _ n: Int) -> String {
        s.count >= n ? s + " " : s + String(repeating: " ", count: n - s.count)
    }

    public static func formatBytes(_ b: Int) -> String {
        let d = Double(b)
        if d >= 1e9 { return String(format: "%.2f GB", d / 1e9) }
        if d >= 1e6 { return String(format: "%.1f MB", d / 1e6) }
        if d >= 1e3 { return String(format: "%.1f kB", d / 1e3) }
        return "\(b) B"
    }
}
