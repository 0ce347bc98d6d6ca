import Foundation
import TesseraCore

/// A split as committed under `splits/`: one CSV row per slide with its side, fold and smallest
/// few-label subset, behind `#` header lines recording the format, tool version, seed, rule and a
/// checksum of the inputs (slide ids, patients, sites, labels). With tile-counted subsets a companion
/// `<name>.tiles.csv` lists the tiles of each subset.
public struct SplitFile: Sendable {
    public static let formatVersion = 1
    public static let columns = ["slide_id", "patient_id", "site", "label", "group", "split", "fold", "min_subset"]

    public var path: String
    public var seed: UInt64
    public var rule: String
    public var tool: String
    public var inputsSHA256: String
    public var rows: [SplitRow]
    /// Tile key → (slide id, smallest subset size) when subsets count tiles.
    public var tileSubsets: [String: (slide: String, minSubset: Int)]?

    public init(path: String, rule: SplitRule, tool: String, rows: [SplitRow], tileSubsets: [String: (slide: String, minSubset: Int)]? = nil) {
        self.path = path
        self.seed = rule.seed
        self.rule = rule.description
        self.tool = tool
        self.rows = rows
        self.inputsSHA256 = Self.inputsChecksum(rows.map(\.slide))
        self.tileSubsets = tileSubsets
    }

    /// SHA-256 over the sorted "slide,patient,site,label" lines: the same for the same inputs in any order.
    public static func inputsChecksum(_ slides: [SlideLabel]) -> String {
        let lines = slides.map { [$0.slideId, $0.patientId ?? "", $0.site ?? "", $0.label ?? ""].joined(separator: ",") }.sorted()
        return SHA256.hexDigest(of: Array(lines.joined(separator: "\n").utf8))
    }

    public var tilesPath: String { Self.tilesPath(for: path) }
    static func tilesPath(for path: String) -> String {
        (path.hasSuffix(".csv") ? String(path.dropLast(4)) : path) + ".tiles.csv"
    }

    public func render() -> (split: String, tiles: String?) {
        let table = CSVTable(
            comments: ["tessera-split: \(Self.formatVersion)", "tool: tessera \(tool)", "seed: \(seed)", "rule: \(rule)", "inputs_sha256: \(inputsSHA256)"],
            header: Self.columns,
            rows: rows.map { r in
                [r.slide.slideId, r.slide.patientId ?? "", r.slide.site ?? "", r.slide.label ?? "", r.group, r.side.rawValue,
                 r.fold.map(String.init) ?? "", r.minSubset.map(String.init) ?? ""]
            })
        var tiles: String?
        if let ts = tileSubsets {
            tiles = CSVTable(comments: ["tessera-split-tiles: \(Self.formatVersion)", "split: \((path as NSString).lastPathComponent)"],
                             header: ["key", "slide_id", "min_subset"],
                             rows: ts.sorted { $0.key < $1.key }.map { [$0.key, $0.value.slide, String($0.value.minSubset)] }).render()
        }
        return (table.render(), tiles)
    }

    /// Writes the split (and its tiles file) atomically.
    public func write() throws {
        let (split, tiles) = render()
        let dir = (path as NSString).deletingLastPathComponent
        if !dir.isEmpty { try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        if let tiles { try AtomicFile.write(Data(tiles.utf8), to: tilesPath) } else { try? FileManager.default.removeItem(atPath: tilesPath) }
        try AtomicFile.write(Data(split.utf8), to: path)
    }

    public static func read(path: String) throws -> SplitFile {
        let table = try CSVTable.read(path: path)
        var meta: [String: String] = [:]
        for c in table.comments {
            guard let colon = c.firstIndex(of: ":") else { continue }
            meta[String(c[..<colon]).trimmingCharacters(in: .whitespaces)] = String(c[c.index(after: colon)...]).trimmingCharacters(in: .whitespaces)
        }
        guard let version = meta["tessera-split"].flatMap(Int.init) else {
            throw TesseraError(.unsupportedFormat, path: path, "not a Tessera split file (no `# tessera-split:` header)", hint: "make one with `tessera split`")
        }
        guard version <= formatVersion else {
            throw TesseraError(.unsupportedFormat, path: path, "split format \(version) is newer than this tool understands", hint: "upgrade tessera")
        }
        guard table.header == columns else {
            throw TesseraError(.corrupt, path: path, "unexpected columns \(table.header.joined(separator: ",")); expected \(columns.joined(separator: ","))")
        }
        var rows: [SplitRow] = []
        for (i, r) in table.rows.enumerated() {
            let line = i + 2 + table.comments.count
            guard let side = SplitSide(rawValue: r[5]) else {
                throw TesseraError(.corrupt, path: path, "line \(line): split `\(r[5])` is not train, val or test")
            }
            func int(_ s: String, _ what: String) throws -> Int? {
                if s.isEmpty { return nil }
                guard let v = Int(s) else { throw TesseraError(.corrupt, path: path, "line \(line): \(what) `\(s)` is not a number") }
                return v
            }
            func opt(_ s: String) -> String? { s.isEmpty ? nil : s }
            rows.append(SplitRow(slide: SlideLabel(slideId: r[0], patientId: opt(r[1]), label: opt(r[3]), site: opt(r[2])),
                                 group: r[4], side: side, fold: try int(r[6], "fold"), minSubset: try int(r[7], "min_subset")))
        }
        var file = SplitFile(path: path, rule: SplitRule(), tool: String((meta["tool"] ?? "").dropFirst("tessera ".count)), rows: rows)
        file.seed = meta["seed"].flatMap(UInt64.init) ?? 0
        file.rule = meta["rule"] ?? ""
        if let recorded = meta["inputs_sha256"], recorded != file.inputsSHA256 {
            throw TesseraError(.corrupt, path: path, "its rows do not match the recorded inputs checksum (edited by hand?)",
                               hint: "regenerate it with `tessera split`")
        }
        if file.rule.contains("subset_unit=tile") {
            let tp = tilesPath(for: path)
            let tiles = try CSVTable.read(path: tp)
            guard tiles.header == ["key", "slide_id", "min_subset"] else {
                throw TesseraError(.corrupt, path: tp, "unexpected columns \(tiles.header.joined(separator: ","))")
            }
            var ts: [String: (slide: String, minSubset: Int)] = [:]
            for (i, r) in tiles.rows.enumerated() {
                guard let n = Int(r[2]) else { throw TesseraError(.corrupt, path: tp, "line \(i + 2): min_subset `\(r[2])` is not a number") }
                ts[r[0]] = (r[1], n)
            }
            file.tileSubsets = ts
        }
        return file
    }

    /// The samples a selector names: slide ids, plus tile keys when it picks a tile-counted subset.
    public struct Selection: Sendable, Equatable {
        public var slides: Set<String>
        /// When set, only these tiles of `slides`.
        public var keys: Set<String>?
    }

    /// Selects rows by a comma-separated conjunction of terms: `train`, `val`, `test`, `trainval`
    /// (everything but test), `all`, `fold=K`, `fold!=K` (cross-validation: held-out fold K, or the
    /// other folds), `subset=N` (the few-label subset of N per class), `label=NAME`.
    /// Example: `trainval,fold!=2` trains fold 2; `train,subset=10` is the 10-per-class subset.
    public func select(_ selector: String) throws -> Selection {
        var keep = rows
        var subset: Int?
        let terms = selector.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        guard !terms.isEmpty else { throw TesseraError(.invalidConfig, path: path, "empty split selector", hint: Self.selectorHint) }
        for t in terms {
            if let side = SplitSide(rawValue: t) {
                keep = keep.filter { $0.side == side }
            } else if t == "trainval" {
                keep = keep.filter { $0.side != .test }
            } else if t == "all" {
                continue
            } else if t.hasPrefix("fold!="), let k = Int(t.dropFirst(6)) {
                try checkFold(k)
                keep = keep.filter { $0.fold != nil && $0.fold != k }
            } else if t.hasPrefix("fold="), let k = Int(t.dropFirst(5)) {
                try checkFold(k)
                keep = keep.filter { $0.fold == k }
            } else if t.hasPrefix("subset="), let n = Int(t.dropFirst(7)) {
                let sizes = subsetSizes
                guard sizes.contains(n) else {
                    throw TesseraError(.invalidConfig, path: path, "this split has no subset of \(n) (it has \(sizes.map(String.init).joined(separator: ", ")))")
                }
                subset = n
                if tileSubsets == nil { keep = keep.filter { ($0.minSubset ?? Int.max) <= n } }
            } else if t.hasPrefix("label=") {
                let l = String(t.dropFirst(6))
                keep = keep.filter { $0.slide.label == l }
            } else {
                throw TesseraError(.invalidConfig, path: path, "unknown split selector term `\(t)`", hint: Self.selectorHint)
            }
        }
        var slides = Set(keep.map(\.slide.slideId))
        var keys: Set<String>?
        if let n = subset, let ts = tileSubsets {
            let picked = ts.filter { $0.value.minSubset <= n && slides.contains($0.value.slide) }
            keys = Set(picked.keys)
            slides = Set(picked.values.map(\.slide))
        }
        return Selection(slides: slides, keys: keys)
    }

    /// Parses `FILE:SELECTOR` (or just `FILE`, meaning all rows) and selects.
    public static func selection(_ spec: String) throws -> Selection {
        var path = spec, selector = "all"
        if let colon = spec.lastIndex(of: ":"), !spec[spec.index(after: colon)...].contains("/") {
            path = String(spec[..<colon])
            selector = String(spec[spec.index(after: colon)...])
        }
        return try read(path: path).select(selector)
    }

    static let selectorHint = "terms (joined by commas): train, val, test, trainval, all, fold=K, fold!=K, subset=N, label=NAME"

    public var folds: Int { (rows.compactMap(\.fold).max() ?? -1) + 1 }

    public var subsetSizes: [Int] {
        guard let r = rule.split(separator: " ").first(where: { $0.hasPrefix("subsets=") }) else { return [] }
        return r.dropFirst(8).split(separator: ",").compactMap { Int($0) }
    }

    private func checkFold(_ k: Int) throws {
        guard k >= 0 && k < folds else {
            throw TesseraError(.invalidConfig, path: path, "fold \(k) does not exist (this split has \(folds) folds, 0–\(max(0, folds - 1)))")
        }
    }
}
