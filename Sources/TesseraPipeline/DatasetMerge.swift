import Foundation
import TesseraCore
import TesseraShards

/// What `tessera merge` did.
public struct MergeSummary: Sendable {
    public var directory: String
    public var parts: Int
    /// Part directories left out (`allowPartial`).
    public var missing: [String]
    public var slides: Int
    public var samples: Int
    public var shards: Int
    /// Slides recorded as failed (by their part, or left out with the missing parts).
    public var failed: Int
    public var alreadyComplete: Bool
}

/// Combines the parts of a partitioned run (`OUT/parts/part-III-of-NNN/`) into one dataset at `OUT`:
/// the engine behind `tessera merge`.
///
/// Guarantees: with every part complete, the result is the dataset a single-machine run over the
/// same collection and config writes into `OUT`: same inputs and slide records in the collection's
/// order, same config hash, and shards re-packed from the parts' samples in that order with the same
/// shard size, so every shard file (hence its sha256 and index) is byte-identical. Samples stream one
/// at a time (memory does not grow with the collection); shards appear only complete; the manifest
/// is saved with a resume point after each shard, so a killed merge rerun continues, and a rerun
/// over unchanged parts after completion is a no-op. While a part is missing or unfinished it
/// refuses, listing them, unless `allowPartial`: then those parts' slides are recorded as failed
/// (kind `missing-part`) when the collection can be re-listed, and the parts are named in the manifest.
public enum DatasetMerge {
    /// Parts' shard streams kept open at once (a file descriptor each).
    static let openStreams = 32

    public static func run(directory out: String, allowPartial: Bool = false, quiet: Bool = false,
                           log: @escaping (String) -> Void = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }) throws -> MergeSummary {
        let plan = try MergePlan.load(directory: out, allowPartial: allowPartial, log: log)
        let lock = try DirectoryLock(directory: out, purpose: "merging")
        defer { withExtendedLifetime(lock) {} }
        let shardDir = out + "/shards"

        var manifest: DatasetManifest
        var resume = ResumePoint(slide: 0, samplesDone: 0, nextShard: 0)
        if FileManager.default.fileExists(atPath: out + "/" + DatasetManifest.fileName) {
            let old = try DatasetManifest.load(directory: out)
            guard old.merge != nil else {
                throw TesseraError(.mismatch, path: out, "holds a dataset tiled directly, not a merge of its parts",
                                   hint: "partitioned runs and the merge need their own output directory")
            }
            if old.merge == plan.record && old.configHash == plan.configHash && old.inputs == plan.inputs {
                if old.status == .complete {
                    return summary(old, directory: out, plan: plan, alreadyComplete: true)
                }
                manifest = old
                resume = old.resume ?? resume
                guard resume.slide <= plan.inputs.count, old.slides.count >= resume.slide, old.shards.count >= resume.nextShard else {
                    throw TesseraError(.corrupt, path: out + "/" + DatasetManifest.fileName, "the resume point does not match the merged manifest",
                                       hint: "delete \(out)/manifest.json and \(out)/shards, then merge again")
                }
                log("resuming merge: \(resume.nextShard) complete shards, continuing at slide \(resume.slide + 1) of \(plan.inputs.count)")
            } else {
                log("the parts changed since the last merge: merging again")
                manifest = plan.newManifest()
            }
        } else {
            manifest = plan.newManifest()
        }
        manifest.slides = Array(manifest.slides.prefix(resume.slide))
        manifest.shards = Array(manifest.shards.prefix(resume.nextShard))
        manifest.status = .inProgress
        manifest.resume = resume
        try FileManager.default.createDirectory(atPath: shardDir, withIntermediateDirectories: true)
        if plan.thumbnails { try FileManager.default.createDirectory(atPath: out + "/thumbnails", withIntermediateDirectories: true) }
        try removeUnlisted(in: shardDir, keeping: Set(manifest.shards.map(\.name)))
        try manifest.save(directory: out)

        // Position every part's stream at the resume point: counting, not reading.
        var streams: [Int: PartSampleStream] = [:]
        for (p, part) in plan.parts {
            streams[p] = PartSampleStream(directory: part.directory, manifest: part.manifest)
        }
        var before: [Int: Int] = [:]
        for j in 0..<resume.slide {
            if case .part(let p, let k) = plan.sources[j] { before[p, default: 0] += plan.parts[p]!.manifest.slides[k].samples }
        }
        if resume.slide < plan.sources.count, case .part(let p, _) = plan.sources[resume.slide] {
            before[p, default: 0] += resume.samplesDone
        }
        for (p, n) in before { try streams[p]!.skip(n) }

        let writer = try ShardWriter(directory: URL(fileURLWithPath: shardDir), targetBytes: plan.shardSize, firstShardNumber: resume.nextShard)
        let progress = ProgressReporter(label: "merge", unit: "tiles", quiet: quiet)
        var open: [Int] = []  // parts with an open shard, least recently used first
        for j in resume.slide..<plan.sources.count {
            switch plan.sources[j] {
            case .part(let p, let k):
                let part = plan.parts[p]!
                let record = part.manifest.slides[k]
                let first = j == resume.slide ? resume.samplesDone : 0
                if first < record.samples {
                    open.removeAll { $0 == p }
                    open.append(p)
                    if open.count > openStreams { streams[open.removeFirst()]!.close() }
                }
                for s in first..<max(first, record.samples) {
                    let sample = try streams[p]!.next(slideId: record.id)
                    if let info = try writer.append(sample) {
                        manifest.shards.append(info)
                        manifest.resume = ResumePoint(slide: j, samplesDone: s + 1, nextShard: writer.nextShardNumber)
                        try manifest.save(directory: out)
                    }
                }
                progress.advance(by: max(0, record.samples - first), status: "slide \(j + 1)/\(plan.sources.count)")
                if let thumb = record.thumbnail {
                    try copyThumbnail(from: part.directory + "/" + thumb, to: out + "/" + thumb)
                }
                manifest.slides.append(record)
            case .missing(let input, let partName):
                var r = SlideRecord(id: input.id, path: input.path, bytes: input.bytes, status: .failed)
                r.reason = "not tiled: \(partName) was missing or unfinished when merged with --allow-partial"
                r.errorKind = "missing-part"
                manifest.slides.append(r)
            }
        }
        if let info = try writer.finish() { manifest.shards.append(info) }
        manifest.status = .complete
        manifest.resume = nil
        try manifest.save(directory: out)
        progress.finish()
        return summary(manifest, directory: out, plan: plan, alreadyComplete: false)
    }

    private static func summary(_ m: DatasetManifest, directory: String, plan: MergePlan, alreadyComplete: Bool) -> MergeSummary {
        MergeSummary(directory: directory, parts: plan.count, missing: plan.record.missing, slides: m.slides.count,
                     samples: m.samples, shards: m.shards.count,
                     failed: m.slides.filter { $0.status == .failed }.count, alreadyComplete: alreadyComplete)
    }

    /// Shards of an earlier, different or interrupted merge: they will be written again.
    private static func removeUnlisted(in dir: String, keeping: Set<String>) throws {
        for name in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [] {
            let stem = name.hasSuffix(".tmp") ? String(name.dropLast(4)) : name
            let tarName = stem.hasSuffix(".idx") ? String(stem.dropLast(4)) + ".tar" : stem
            if name.hasSuffix(".tmp") || !keeping.contains(tarName) {
                try FileManager.default.removeItem(atPath: dir + "/" + name)
            }
        }
    }

    /// Hard link when possible (no extra space), else a copy renamed into place.
    private static func copyThumbnail(from src: String, to dst: String) throws {
        guard FileManager.default.fileExists(atPath: src) else { return }
        try FileManager.default.createDirectory(atPath: (dst as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let tmp = dst + ".tmp"
        unlink(tmp)
        if link(src, tmp) != 0 {
            do { try FileManager.default.copyItem(atPath: src, toPath: tmp) } catch {
                throw TesseraError(.io, path: dst, "cannot copy thumbnail from \(src): \(error.localizedDescription)")
            }
        }
        guard rename(tmp, dst) == 0 else { throw AtomicFile.ioError(path: dst, "cannot rename thumbnail into place") }
    }
}
