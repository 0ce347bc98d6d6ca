import Foundation
import TesseraCore
import TesseraShards
import TesseraSplits
import TesseraStain
import TesseraSlide

/// What a finished `tile` run did.
public struct TileSummary: Sendable {
    public var slides: Int
    public var done: Int
    public var skipped: Int
    public var failed: Int
    public var samples: Int
    public var shards: Int
    public var seconds: Double
    public var alreadyComplete: Bool
    public var failures: [(id: String, reason: String)]
}

/// Tiles a slide collection into shards: the engine behind `tessera tile`.
///
/// Guarantees: output bytes depend only on the inputs and the output-defining config (not on
/// `workers`); a shard becomes visible only when complete; a killed run rerun with the same
/// command continues from the manifest's resume point and ends byte-identical to an
/// uninterrupted run; one bad slide is recorded as failed and never stops the others.
public final class TileRun: @unchecked Sendable {
    public static let version = "0.1.0"
    let config: TileConfig
    let log: @Sendable (String) -> Void

    public init(config: TileConfig, log: @escaping @Sendable (String) -> Void = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }) {
        self.config = config
        self.log = log
    }

    public func run() throws -> TileSummary {
        let started = Date()
        try config.validate()
        try VipsRuntime.start()
        // The collection and its labels first: a bad labels table or an empty input is an error
        // before anything is created in the output.
        let found = try SlideDiscovery.find(config.inputs)
        if found.isEmpty {
            throw TesseraError(.invalidConfig, path: config.inputs.joined(separator: ", "), "no slides or images found",
                               hint: "known extensions: \(SlideDiscovery.extensions.sorted().joined(separator: ", "))")
        }
        let collection = try attachLabels(found)
        // A partition tiles its own slides exactly as a whole run would (same ids, labels and order).
        let part = try partitionRecord(collection)
        let inputs = part.map { $0.positions.map { collection[$0] } } ?? collection
        let out = config.datasetDirectory
        let shardDir = out + "/shards"
        let thumbDir = out + "/thumbnails"
        for d in [out, shardDir] + (config.thumbnails ? [thumbDir] : []) {
            do { try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true) } catch {
                throw TesseraError(.io, path: d, "cannot create output directory: \(error.localizedDescription)")
            }
        }
        let lock = try DirectoryLock(directory: out, purpose: "writing")
        defer { withExtendedLifetime(lock) {} }

        let hash = try config.hash()
        var manifest: DatasetManifest
        if FileManager.default.fileExists(atPath: out + "/" + DatasetManifest.fileName) {
            manifest = try DatasetManifest.load(directory: out)
            guard manifest.configHash == hash else {
                throw TesseraError(.mismatch, path: out, "holds a dataset made with different settings",
                                   hint: "use a new output directory, or rerun with the settings recorded in its manifest.json")
            }
            guard manifest.inputs == inputs, manifest.partition == part else {
                throw TesseraError(.mismatch, path: out, "the input slides changed since this dataset was started",
                                   hint: "use a new output directory for a different collection")
            }
            if manifest.status == .complete {
                return summary(manifest, started: started, alreadyComplete: true)
            }
            log("resuming \(out): \(manifest.shards.count) complete shards, continuing at slide \((manifest.resume?.slide ?? 0) + 1) of \(inputs.count)")
        } else {
            let existing = (try? FileManager.default.contentsOfDirectory(atPath: shardDir)) ?? []
            if existing.contains(where: { $0.hasSuffix(".tar") }) {
                throw TesseraError(.mismatch, path: out, "has shards but no manifest.json",
                                   hint: "choose an empty output directory")
            }
            manifest = DatasetManifest(tesseraVersion: Self.version, configHash: hash, config: try JSONValue.from(config), inputs: inputs)
            manifest.partition = part
        }
        let resume = manifest.resume ?? ResumePoint(slide: 0, samplesDone: 0, nextShard: 0)
        guard resume.slide >= 0, resume.slide <= inputs.count, resume.samplesDone >= 0, resume.nextShard >= 0,
              manifest.slides.count >= resume.slide, manifest.shards.count >= resume.nextShard else {
            throw TesseraError(.corrupt, path: out + "/" + DatasetManifest.fileName, "the resume point does not match the manifest's slides and shards",
                               hint: "the manifest was edited or damaged; tile into a new output directory")
        }
        manifest.slides = Array(manifest.slides.prefix(resume.slide))
        manifest.shards = Array(manifest.shards.prefix(resume.nextShard))
        try removeUnlistedShards(in: shardDir, keeping: Set(manifest.shards.map(\.name)))
        try manifest.save(directory: out)

        let writer = try ShardWriter(directory: URL(fileURLWithPath: shardDir), targetBytes: config.shardSize, firstShardNumber: resume.nextShard)
        let cancelled = CancelSet()
        let config = self.config
        let worker = TileWorker(config: config, encoder: TileEncoder(format: config.format, quality: config.quality), cancelled: cancelled,
                                inputs: Dictionary(inputs.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a }),
                                normalizer: try config.stainTarget().map { try StainNormalizer(target: $0) })
        let pool = OrderedPool<TileJob, TileOutput, TileWorkerContext>(
            workers: config.workers, capacity: config.workers * 4, makeContext: { TileWorkerContext() },
            threadExit: { VipsRuntime.threadShutdown() },
            process: { job, ctx in worker.process(job, ctx) })

        let producer = Thread { [self] in
            for index in resume.slide..<inputs.count where !cancelled.isStopped {
                submitJobs(for: inputs[index], index: index, skip: index == resume.slide ? resume.samplesDone : 0,
                           pool: pool, cancelled: cancelled)
            }
            pool.close()
            VipsRuntime.threadShutdown()
        }
        producer.stackSize = 8 << 20
        producer.start()

        let assembler = DatasetAssembler(config: config, directory: out, manifest: manifest, writer: writer,
                                         cancelled: cancelled, firstIndex: resume.slide, log: log)
        var failure: Error?
        let stuckLimit: TimeInterval? = config.slideTimeout > 0 ? config.slideTimeout : nil
        while let output = pool.next(stuckLimit: stuckLimit, stuck: { TileWorker.timedOut($0, limit: config.slideTimeout) }) {
            if failure != nil { continue }  // drain so the producer can finish
            do {
                try assembler.consume(output)
            } catch {
                failure = error
                cancelled.stopAll()
            }
        }
        pool.join()
        while !producer.isFinished { usleep(1000) }
        if let failure { throw failure }
        try assembler.finish()
        return summary(assembler.manifest, started: started, alreadyComplete: false)
    }

    /// Where this part's slides sit in the collection; nil when not partitioned.
    private func partitionRecord(_ collection: [InputFile]) throws -> PartitionRecord? {
        guard let p = config.partition else { return nil }
        let positions = SlideAssignment.assign(collection, parts: p.count)[p.index]
        return PartitionRecord(index: p.index, count: p.count, positions: positions, collectionSize: collection.count,
                               collectionHash: try SlideAssignment.collectionHash(collection), baseConfigHash: try config.baseHash())
    }

    /// Small slides go to a worker whole; large ones are prepared here (under the watchdog) and cut
    /// into units that all workers share.
    private func submitJobs(for input: InputFile, index: Int, skip: Int, pool: OrderedPool<TileJob, TileOutput, TileWorkerContext>,
                            cancelled: CancelSet) {
        if isSmallImageFile(input) {
            pool.submit(.whole(index: index, input: input, skipBefore: skip))
            return
        }
        let (prepared, sha) = prepareWithWatchdog(input)
        pool.submit(.slide(index: index, input: input, prepared: prepared, sha256: sha, skipBefore: skip))
        if case .success(let p) = prepared {
            for unit in p.units(maxTiles: config.readRun) where unit.upperBound > skip {
                if cancelled.contains(index) { break }
                pool.submit(.unit(index: index, slideId: input.id, prepared: p, range: unit, skipBefore: skip))
            }
        }
        pool.submit(.slideEnd(index: index))
    }

    /// JPEG and PNG files under 16 MB: microscopy fields and patches, whose decoding is the work.
    /// Everything else (TIFF-family and OpenSlide formats) goes the whole-slide way.
    /// Copies labels, patient ids and sites onto the inputs (and so into tiles and the manifest).
    private func attachLabels(_ inputs: [InputFile]) throws -> [InputFile] {
        let slides = inputs.map { DatasetSlide(id: $0.id, path: $0.path) }
        let labels: [SlideLabel]
        if let path = config.labels {
            // Tiling is lenient: a table may cover more slides, and unlabelled slides are still tiled.
            labels = try LabelTable(path: path).resolve(slides, ignoreUnknown: true, allowMissing: true)
            let missing = labels.filter { $0.label == nil && $0.patientId == nil && $0.site == nil }.count
            if missing > 0 { log("warning: \(missing) of \(inputs.count) slides have no row (or empty values) in \(path)") }
        } else if config.labelsFromFolders {
            labels = LabelTable.fromFolders(slides)
        } else {
            return inputs
        }
        return zip(inputs, labels).map { input, l in
            var i = input
            i.label = l.label
            i.patientId = l.patientId
            i.site = l.site
            return i
        }
    }

    private func isSmallImageFile(_ input: InputFile) -> Bool {
        input.bytes < 16 << 20 && Slide.magic(input.path) != .other
    }

    private func summary(_ m: DatasetManifest, started: Date, alreadyComplete: Bool) -> TileSummary {
        TileSummary(slides: m.slides.count,
                    done: m.slides.filter { $0.status == .done }.count,
                    skipped: m.slides.filter { $0.status == .skipped }.count,
                    failed: m.slides.filter { $0.status == .failed }.count,
                    samples: m.samples, shards: m.shards.count, seconds: Date().timeIntervalSince(started),
                    alreadyComplete: alreadyComplete,
                    failures: m.slides.filter { $0.status == .failed }.map { ($0.id, $0.reason ?? "") })
    }

    /// Deletes temporary shards and shards a killed run completed after its last manifest update:
    /// they will be written again, identically.
    private func removeUnlistedShards(in dir: String, keeping: Set<String>) throws {
        for name in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [] {
            let stem = name.hasSuffix(".tmp") ? String(name.dropLast(4)) : name
            let tarName = stem.hasSuffix(".idx") ? String(stem.dropLast(4)) + ".tar" : stem
            if name.hasSuffix(".tmp") || !keeping.contains(tarName) {
                try FileManager.default.removeItem(atPath: dir + "/" + name)
            }
        }
    }

    /// Result box for a preparation that may never return.
    final class PrepareBox: @unchecked Sendable {
        var result: Result<PreparedSlide, TesseraError>?
        var sha256: String?
    }

    /// Hashes, opens and prepares a slide on its own thread; gives up after `slideTimeout` seconds,
    /// leaving the stuck thread behind (a hung read, libvips or OpenSlide call cannot be interrupted).
    private func prepareWithWatchdog(_ input: InputFile) -> (prepared: Result<PreparedSlide, TesseraError>, sha256: String?) {
        let config = self.config
        let work: @Sendable (PrepareBox) -> Void = { box in
            box.sha256 = config.checksumSlides ? try? SHA256.hexDigest(ofFileAt: input.path) : nil
            box.result = TileWorker.prepare(input, config: config)
        }
        let box = PrepareBox()
        guard config.slideTimeout > 0 else {
            work(box)
            return (box.result!, box.sha256)
        }
        let done = DispatchSemaphore(value: 0)
        let t = Thread {
            work(box)
            done.signal()
            VipsRuntime.threadShutdown()
        }
        t.stackSize = 8 << 20
        t.start()
        if done.wait(timeout: .now() + config.slideTimeout) == .timedOut {
            return (.failure(TesseraError(.timeout, path: input.path,
                "stopped by the watchdog: opening the slide took longer than \(Int(config.slideTimeout)) s (slide_timeout)",
                hint: "the file may be damaged or on a stalled mount; raise --slide-timeout if the slide is just huge")), nil)
        }
        return (box.result!, box.sha256)
    }
}
