import Foundation
import TesseraCore
import TesseraShards

/// What a merge will combine: the parts found under `OUT/parts/`, checked to belong to one
/// partitioned run (same partitioning, collection and config), and where each slide of the
/// collection comes from.
///
/// Guarantees: `sources` follows the collection's order; every slide of a complete part appears
/// exactly once; construction fails, listing every missing or unfinished part, unless `allowPartial`.
struct MergePlan {
    struct Part {
        let name: String
        let directory: String
        let manifest: DatasetManifest
    }

    enum Source {
        /// Slide `k` of part `p`'s manifest.
        case part(Int, Int)
        /// A slide of a part left out by `--allow-partial`.
        case missing(InputFile, String)
    }

    let count: Int
    let parts: [Int: Part]
    let inputs: [InputFile]
    let sources: [Source]
    let configHash: String
    let config: JSONValue
    let shardSize: Int
    /// The parts have a thumbnails directory (a single run would too).
    let thumbnails: Bool
    let record: MergeRecord

    func newManifest() -> DatasetManifest {
        var m = DatasetManifest(tesseraVersion: TileRun.version, configHash: configHash, config: config, inputs: inputs)
        m.merge = record
        return m
    }

    static func load(directory out: String, allowPartial: Bool, log: (String) -> Void) throws -> MergePlan {
        let partsDir = out + "/parts"
        let found = ((try? FileManager.default.contentsOfDirectory(atPath: partsDir)) ?? []).compactMap(Partition.fromDirectoryName)
        guard !found.isEmpty else {
            throw TesseraError(.unreadable, path: partsDir, "no parts to merge (expected directories such as parts/part-0000-of-0008)",
                               hint: "tile with `tessera tile … -o \(out) --partition I/N` (or the Slurm array in scripts/slurm) first")
        }
        let counts = Set(found.map(\.count)).sorted()
        guard counts.count == 1, let n = counts.first else {
            throw TesseraError(.mismatch, path: partsDir, "holds parts of different partitionings (into \(counts.map(String.init).joined(separator: ", ")) parts)",
                               hint: "remove the parts of the partitioning you do not want to merge")
        }

        var parts: [Int: Part] = [:]
        var problems: [(name: String, why: String)] = []
        for i in 0..<n {
            let name = try Partition(index: i, count: n).directoryName
            let dir = partsDir + "/" + name
            guard FileManager.default.fileExists(atPath: dir + "/" + DatasetManifest.fileName) else {
                problems.append((name, FileManager.default.fileExists(atPath: dir) ? "started, but no manifest yet" : "missing"))
                continue
            }
            let m = try DatasetManifest.load(directory: dir)
            guard let rec = m.partition, rec.index == i, rec.count == n else {
                throw TesseraError(.corrupt, path: dir, "its manifest does not describe part \(i) of \(n)")
            }
            guard m.status == .complete else {
                problems.append((name, "unfinished (\(m.slides.count) of \(m.inputs.count) slides, \(m.shards.count) shards written)"))
                continue
            }
            guard m.slides.count == m.inputs.count, zip(m.slides, m.inputs).allSatisfy({ $0.id == $1.id }),
                  rec.positions.count == m.inputs.count else {
                throw TesseraError(.corrupt, path: dir, "the part's slides do not match its inputs")
            }
            parts[i] = Part(name: name, directory: dir, manifest: m)
        }
        if !problems.isEmpty && !allowPartial {
            let list = problems.map { "  \($0.name): \($0.why)" }.joined(separator: "\n")
            throw TesseraError(.mismatch, path: out, "cannot merge: \(problems.count) of \(n) parts are missing or unfinished:\n\(list)\n",
                               hint: "rerun those array tasks with the same command (they resume), or pass --allow-partial to merge the others")
        }
        guard let reference = parts.keys.min().flatMap({ parts[$0] }), let ref = reference.manifest.partition else {
            throw TesseraError(.mismatch, path: out, "no part is complete: nothing to merge")
        }
        for (_, part) in parts.sorted(by: { $0.key < $1.key }) {
            let r = part.manifest.partition!
            guard r.baseConfigHash == ref.baseConfigHash else {
                throw TesseraError(.mismatch, path: part.directory, "was tiled with different settings than \(reference.name)",
                                   hint: "every array task must run the same command; rerun this part with it")
            }
            guard r.collectionHash == ref.collectionHash, r.collectionSize == ref.collectionSize else {
                throw TesseraError(.mismatch, path: part.directory, "was tiled from a different slide collection than \(reference.name)",
                                   hint: "the slides changed between array tasks; rerun all parts on a fixed collection")
            }
        }

        // Where each slide of the collection comes from.
        var slots = [Source?](repeating: nil, count: ref.collectionSize)
        var inputAt = [InputFile?](repeating: nil, count: ref.collectionSize)
        for (p, part) in parts {
            for (k, pos) in part.manifest.partition!.positions.enumerated() {
                guard pos >= 0, pos < slots.count, slots[pos] == nil else {
                    throw TesseraError(.corrupt, path: part.directory, "claims slide position \(pos), which is out of range or claimed by another part")
                }
                slots[pos] = .part(p, k)
                inputAt[pos] = part.manifest.inputs[k]
            }
        }
        let missingNames = problems.map(\.name)
        if !missingNames.isEmpty {
            let listed = try? relist(reference.manifest.config, hash: ref.collectionHash, parts: n)
            if listed == nil { log("warning: cannot list the slides of the missing parts (the collection is not readable here or changed); the manifest names only the parts") }
            for (pos, slot) in slots.enumerated() where slot == nil {
                if let (input, part) = listed?[pos], problems.contains(where: { $0.name == part }) {
                    slots[pos] = .missing(input, part)
                    inputAt[pos] = input
                }
            }
        } else if slots.contains(where: { $0 == nil }) {
            throw TesseraError(.corrupt, path: partsDir, "the parts do not cover the collection")
        }

        var config = reference.manifest.config
        if case .object(var o) = config {
            o.removeValue(forKey: "partition")
            config = .object(o)
        }
        let shardSize: Int
        if case .object(let o) = config, case .number(let v)? = o["shard_size"], v >= 1 { shardSize = Int(v) } else {
            throw TesseraError(.corrupt, path: reference.directory, "the part's manifest records no shard size")
        }
        let fingerprint = parts.sorted { $0.key < $1.key }.map { PartFingerprint(name: $0.value.name, manifest: $0.value.manifest) }
        let record = MergeRecord(parts: n, merged: fingerprint.map(\.name), missing: missingNames,
                                 partsHash: SHA256.hexDigest(of: [UInt8](try CanonicalJSON.encode(fingerprint))))
        return MergePlan(count: n, parts: parts, inputs: inputAt.compactMap { $0 }, sources: slots.compactMap { $0 },
                         configHash: ref.baseConfigHash, config: config, shardSize: shardSize,
                         thumbnails: FileManager.default.fileExists(atPath: reference.directory + "/thumbnails"), record: record)
    }

    /// Lists the collection again as the parts did and reassigns it, to name the slides of missing
    /// parts; nil when the listing no longer matches the one the parts were made from.
    private static func relist(_ config: JSONValue, hash: String, parts n: Int) throws -> [Int: (InputFile, String)]? {
        let tile = try JSONDecoder().decode(TileConfig.self, from: try CanonicalJSON.encode(config))
        let collection = try SlideDiscovery.find(tile.inputs)
        guard try SlideAssignment.collectionHash(collection) == hash else { return nil }
        var out: [Int: (InputFile, String)] = [:]
        for (p, positions) in SlideAssignment.assign(collection, parts: n).enumerated() {
            let name = try Partition(index: p, count: n).directoryName
            for pos in positions { out[pos] = (collection[pos], name) }
        }
        return out
    }

    /// What identifies a merged part's content.
    private struct PartFingerprint: Encodable {
        let name: String
        let configHash: String
        let shards: [ShardInfo]
        let slides: [SlideRecord]
        init(name: String, manifest: DatasetManifest) {
            self.name = name
            configHash = manifest.configHash
            shards = manifest.shards
            slides = manifest.slides
        }
    }
}
