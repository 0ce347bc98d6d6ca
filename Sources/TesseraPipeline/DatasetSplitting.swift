import Foundation
import TesseraCore
import TesseraShards
import TesseraSplits

/// `tessera split`: the slides of a dataset (or of a labels table alone) with their labels, turned
/// into a split file; and `tessera split check`: leakage between sides, down to duplicate tiles.
public enum DatasetSplitting {
    public struct Options: Sendable {
        /// Labels table (CSV); without it labels come from folders (`labelsFromFolders`) or from the
        /// labels recorded at tiling time in the manifest.
        public var labels: String?
        public var labelsFromFolders = false
        public var ignoreUnknown = false
        public var allowMissing = false
        public var rule = SplitRule()
        public init() {}
    }

    /// The slides to split with their labels. `dataset` nil: the labels table alone, with slide ids
    /// made from its `path` column the way `tessera tile` names slides.
    public static func slides(dataset: String?, options: Options) throws -> [SlideLabel] {
        guard let dataset else {
            guard let table = options.labels else {
                throw TesseraError(.invalidConfig, "nothing to split: give a dataset directory, a labels table (--labels), or both")
            }
            return try LabelTable(path: table).slides(idForPath: SlideDiscovery.id(forRelativePath:))
        }
        let m = try DatasetManifest.load(directory: dataset)
        guard m.status == .complete else {
            throw TesseraError(.mismatch, path: dataset, "the dataset is not complete", hint: "finish it with the `tessera tile` command that made it, then split")
        }
        let slides = m.slides.map { DatasetSlide(id: $0.id, path: $0.path) }
        if let table = options.labels {
            return try LabelTable(path: table).resolve(slides, ignoreUnknown: options.ignoreUnknown, allowMissing: options.allowMissing)
        }
        if options.labelsFromFolders { return LabelTable.fromFolders(slides) }
        return m.slides.map { SlideLabel(slideId: $0.id, patientId: $0.patientId, label: $0.label, site: $0.site) }
    }

    /// Makes the split file at `output` (not yet written) and a per-class report.
    public static func make(dataset: String?, output: String, options: Options, tool: String) throws -> (file: SplitFile, report: String) {
        let slides = try slides(dataset: dataset, options: options)
        guard !slides.isEmpty else { throw TesseraError(.invalidConfig, path: dataset, "the dataset has no slides to split") }
        if slides.allSatisfy({ $0.label == nil }) && !options.rule.subsets.isEmpty && options.labels == nil && !options.labelsFromFolders {
            throw TesseraError(.invalidConfig, path: dataset, "no slide has a label, so there is nothing to stratify or to draw labelled subsets from",
                               hint: "give --labels TABLE.csv (slide_id or path, patient_id, label, site) or --labels-from-folders")
        }
        var rows = try Splitter.split(slides, rule: options.rule)
        var tileSubsets: [String: (slide: String, minSubset: Int)]?
        if options.rule.subsetUnit == .tile && !options.rule.subsets.isEmpty {
            guard let dataset else {
                throw TesseraError(.invalidConfig, "subsets counted in tiles need the dataset directory (its tiles are what is counted)")
            }
            let reader = try DatasetReader(directory: dataset)
            let train = Dictionary(uniqueKeysWithValues: rows.filter { $0.side == .train }.compactMap { r in r.slide.label.map { (r.slide.slideId, $0) } })
            var items: [(id: String, label: String)] = []
            var slideOfKey: [String: String] = [:]
            for i in 0..<reader.count {
                guard let slide = reader.slideId(of: i), let label = train[slide] else { continue }
                let key = try reader.key(of: i)
                items.append((key, label))
                slideOfKey[key] = slide
            }
            let sizes = Splitter.nestedSubsets(items, sizes: options.rule.subsets, seed: options.rule.seed)
            tileSubsets = sizes.reduce(into: [:]) { $0[$1.key] = (slideOfKey[$1.key]!, $1.value) }
            // Slides stay unmarked: membership is per tile.
            for i in rows.indices { rows[i].minSubset = nil }
        }
        let file = SplitFile(path: output, rule: options.rule, tool: TileRun.version, rows: rows, tileSubsets: tileSubsets)
        var report = Splitter.report(rows)
        if let ts = tileSubsets {
            report += "\ntile subsets: \(options.rule.subsets.sorted().map { n in "\(n)/class: \(ts.values.filter { $0.minSubset <= n }.count) tiles" }.joined(separator: ", "))"
        } else if !options.rule.subsets.isEmpty {
            report += "\nslide subsets: \(options.rule.subsets.sorted().map { n in "\(n)/class: \(rows.filter { ($0.minSubset ?? .max) <= n }.count)" }.joined(separator: ", "))"
        }
        return (file, report)
    }

    /// Leaks of a split: patient/slide/group on two sides (from the table), and with a dataset also
    /// the same slide file (sha256), the same source coordinates, or identical decoded pixels on two sides.
    public static func check(split: SplitFile, dataset: String?) throws -> [Leak] {
        var leaks = LeakageCheck.check(split)
        guard let dataset else { return leaks }
        let m = try DatasetManifest.load(directory: dataset)
        let side = Dictionary(split.rows.map { ($0.slide.slideId, $0.side.rawValue) }, uniquingKeysWith: { a, _ in a })
        func collect(_ kind: Leak.Kind, _ pairs: [(key: String, slide: String)]) {
            var by: [String: [String]] = [:]
            for p in pairs where side[p.slide] != nil { by[p.key, default: []].append(p.slide) }
            for (key, slides) in by.sorted(by: { $0.key < $1.key }) {
                let places = Set(slides.map { side[$0]! })
                if places.count > 1 {
                    leaks.append(Leak(kind: kind, id: String(key.prefix(64)), places: places.sorted(), slides: Array(Set(slides)).sorted()))
                }
            }
        }
        collect(.slideFile, m.slides.compactMap { s in s.sha256.map { (key: $0, slide: s.id) } })

        let reader = try DatasetReader(directory: dataset)
        let fileKey = Dictionary(m.slides.map { ($0.id, $0.sha256 ?? ($0.path as NSString).resolvingSymlinksInPath) }, uniquingKeysWith: { a, _ in a })
        // Tiles: decoded on all cores, one shard per task; results land in per-shard slots.
        final class Slots: @unchecked Sendable {
            var coords: [[(key: String, slide: String)]]
            var pixels: [[(key: String, slide: String)]]
            var error: Error?
            let lock = NSLock()
            init(_ n: Int) { coords = Array(repeating: [], count: n); pixels = Array(repeating: [], count: n) }
        }
        let slots = Slots(reader.shards.count)
        let firstIndex = reader.shards.indices.reduce(into: [Int]()) { acc, s in acc.append(s == 0 ? 0 : acc[s - 1] + reader.shards[s - 1].count) }
        DispatchQueue.concurrentPerform(iterations: reader.shards.count) { s in
            do {
                var coords: [(String, String)] = [], pixels: [(String, String)] = []
                for j in 0..<reader.shards[s].count {
                    let g = firstIndex[s] + j
                    guard let slide = reader.slideId(of: g), side[slide] != nil else { continue }
                    let record = try reader.shards[s].record(j)
                    let meta = try TileDecoding.metadata(record)
                    coords.append(("\(fileKey[slide] ?? meta.source)@\(meta.level0Size):\(meta.x),\(meta.y)", slide))
                    let image = try TileDecoding.image(record)
                    var h = SHA256()
                    h.update(Array("\(image.width)x\(image.height)".utf8))
                    image.pixels.withUnsafeBytes { h.update($0) }
                    pixels.append((SHA256.hex(h.finalize()), slide))
                }
                slots.lock.lock(); slots.coords[s] = coords; slots.pixels[s] = pixels; slots.lock.unlock()
            } catch {
                slots.lock.lock(); if slots.error == nil { slots.error = error }; slots.lock.unlock()
            }
        }
        if let e = slots.error { throw e }
        collect(.tileCoordinates, slots.coords.flatMap { $0 })
        collect(.tilePixels, slots.pixels.flatMap { $0 })
        return leaks
    }
}
