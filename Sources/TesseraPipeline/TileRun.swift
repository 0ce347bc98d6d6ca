import Foundation
import TesseraCore
import TesseraShards
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

    enum Job {
        case slide(index: Int, input: InputFile, prepared: Result<PreparedSlide, TesseraError>, sha256: String?, skipBefore: Int)
        case unit(index: Int, slideId: String, prepared: PreparedSlide, range: Range<Int>, skipBefore: Int)
        case slideEnd(index: Int)
    }
    enum Output {
        case slide(index: Int, input: InputFile, prepared: Result<PreparedSlide, TesseraError>, sha256: String?, skipBefore: Int)
        case tiles(index: Int, first: Int, samples: [ShardSample])
        case failed(index: Int, error: TesseraError)
        case cancelled(index: Int)
        case slideEnd(index: Int)
    }
    final class WorkerContext {
        var reader: TileReader?
        var readerOf: ObjectIdentifier?
    }

    /// Cancelled slides (watchdog); shared by the consumer and the workers.
    final class CancelSet: @unchecked Sendable {
        private let lock = NSLock()
        private var set = Set<Int>()
        func insert(_ i: Int) { lock.lock(); set.insert(i); lock.unlock() }
        func contains(_ i: Int) -> Bool { lock.lock(); defer { lock.unlock() }; return set.contains(i) }
    }

    public func run() throws -> TileSummary {
        let started = Date()
        try config.validate()
        try VipsRuntime.start()
        let out = config.output
        let shardDir = out + "/shards"
        let thumbDir = out + "/thumbnails"
        for d in [out, shardDir] + (config.thumbnails ? [thumbDir] : []) {
            do { try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true) } catch {
                throw TesseraError(.io, path: d, "cannot create output directory: \(error.localizedDescription)")
            }
        }
        let lock = try DirectoryLock(directory: out, purpose: "writing")
        defer { withExtendedLifetime(lock) {} }

        let inputs = try SlideDiscovery.find(config.inputs)
        if inputs.isEmpty {
            throw TesseraError(.invalidConfig, path: config.inputs.joined(separator: ", "), "no slides or images found",
                               hint: "known extensions: \(SlideDiscovery.extensions.sorted().joined(separator: ", "))")
        }
        let hash = try config.hash()
        var manifest: DatasetManifest
        if FileManager.default.fileExists(atPath: out + "/" + DatasetManifest.fileName) {
            manifest = try DatasetManifest.load(directory: out)
            guard manifest.configHash == hash else {
                throw TesseraError(.mismatch, path: out, "holds a dataset made with different settings",
                                   hint: "use a new output directory, or rerun with the settings recorded in its manifest.json")
            }
            guard manifest.inputs == inputs else {
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
        }
        let resume = manifest.resume ?? ResumePoint(slide: 0, samplesDone: 0, nextShard: 0)
        manifest.slides = Array(manifest.slides.prefix(resume.slide))
        manifest.shards = Array(manifest.shards.prefix(resume.nextShard))
        try removeUnlistedShards(in: shardDir, keeping: Set(manifest.shards.map(\.name)))
        try manifest.save(directory: out)

        let writer = try ShardWriter(directory: URL(fileURLWithPath: shardDir), targetBytes: config.shardSize, firstShardNumber: resume.nextShard)
        let cancelled = CancelSet()
        let config = self.config
        let encoder = TileEncoder(format: config.format, quality: config.quality)
        let pool = OrderedPool<Job, Output, WorkerContext>(
            workers: config.workers, capacity: config.workers * 4, makeContext: { WorkerContext() },
            process: { job, ctx in Self.process(job, ctx, encoder: encoder, config: config, cancelled: cancelled) })

        let producer = Thread { [self] in
            for index in resume.slide..<inputs.count {
                let input = inputs[index]
                let skip = index == resume.slide ? resume.samplesDone : 0
                let sha = config.checksumSlides ? try? SHA256.hexDigest(ofFileAt: input.path) : nil
                let prepared = prepareWithWatchdog(input)
                pool.submit(.slide(index: index, input: input, prepared: prepared, sha256: sha, skipBefore: skip))
                if case .success(let p) = prepared {
                    for unit in p.units(maxTiles: config.readRun) where unit.upperBound > skip {
                        if cancelled.contains(index) { break }
                        pool.submit(.unit(index: index, slideId: input.id, prepared: p, range: unit, skipBefore: skip))
                    }
                }
                pool.submit(.slideEnd(index: index))
            }
            pool.close()
            VipsRuntime.threadShutdown()
        }
        producer.stackSize = 8 << 20
        producer.start()

        let progress = ProgressReporter(label: "tile", unit: "tiles", quiet: config.quiet)
        var current: SlideRecord?
        var currentPrepared: PreparedSlide?
        var currentStart = Date()
        var currentIndex = 0
        var written: [Int] = []  // positions written for the current slide (for the overlay)
        var failure: Error?
        let slidesStarted = Date()
        var slidesFinished = 0

        func finishSlide() throws {
            guard var record = current else { return }
            if record.status == .done && record.samples == 0 && !(record.flags.contains("partial")) {
                record.status = .skipped
                if let p = currentPrepared, p.grid.columns == 0 || p.grid.rows == 0 {
                    record.reason = "smaller than one \(config.tileSize)-pixel tile at the target resolution"
                } else {
                    record.reason = "no tile has at least \(config.minTissue) tissue"
                }
            }
            if config.thumbnails, let p = currentPrepared {
                let path = thumbDir + "/\(record.id).png"
                do {
                    try PNGWriter.write(QCOverlay.render(p, written: written), to: path)
                    record.thumbnail = "thumbnails/\(record.id).png"
                } catch { log("warning: \(error)") }
            }
            manifest.slides.append(record)
            if record.status == .failed { log("failed: \(record.reason ?? record.path)") }
            current = nil
            currentPrepared = nil
            written = []
            slidesFinished += 1
            let rate = Double(slidesFinished) / max(Date().timeIntervalSince(slidesStarted), 1e-3)
            let left = inputs.count - resume.slide - slidesFinished
            progress.advance(by: 0, status: "slide \(manifest.slides.count)/\(inputs.count)" + (left > 0 ? ", ETA \(ProgressReporter.duration(Double(left) / rate))" : ""))
        }

        func shardCompleted(_ info: ShardInfo, nextPosition: Int) throws {
            manifest.shards.append(info)
            manifest.resume = ResumePoint(slide: currentIndex, samplesDone: nextPosition, nextShard: writer.nextShardNumber)
            try manifest.save(directory: out)
        }

        let stuckLimit: TimeInterval? = config.slideTimeout > 0 ? config.slideTimeout : nil
        while let output = pool.next(stuckLimit: stuckLimit, stuck: { job in
            guard case .unit(let index, _, let p, _, _) = job else { return .cancelled(index: -1) }
            return .failed(index: index, error: TesseraError(.timeout, path: p.slide.path,
                "stopped by the watchdog: reading tiles took longer than \(Int(config.slideTimeout)) s (slide_timeout)",
                hint: "the file may be damaged or on a stalled mount; raise --slide-timeout if the slide is just huge"))
        }) {
            if failure != nil { continue }  // drain so the producer can finish
            do {
                switch output {
                case .slide(let index, let input, let prepared, let sha, let skip):
                    currentIndex = index
                    currentStart = Date()
                    var record = SlideRecord(id: input.id, path: input.path, bytes: input.bytes, status: .done, samples: skip)
                    record.sha256 = sha
                    switch prepared {
                    case .failure(let e):
                        record.status = e.kind == .noTissue ? .skipped : .failed
                        record.reason = e.description
                        record.errorKind = e.kind.rawValue
                    case .success(let p):
                        currentPrepared = p
                        record.width = p.slide.width
                        record.height = p.slide.height
                        record.reader = p.slide.reader
                        record.vendor = p.slide.vendor
                        record.level = p.plan.level
                        record.level0PerPixel = p.plan.level0PerPixel
                        record.mpp = p.plan.mpp
                        record.mppSource = p.plan.mppSource.rawValue
                        record.tissueFraction = (p.mask.tissueFraction * 10_000).rounded() / 10_000
                        if p.plan.mppSource.isEstimate { record.flags.append("mpp-estimated") }
                        if config.tissueMethod != .none {
                            if p.mask.tissueFraction < 0.01 { record.flags.append("almost-no-tissue") }
                            if p.mask.tissueFraction > 0.99 { record.flags.append("almost-all-tissue") }
                        }
                        written = Array(0..<min(skip, p.positions.count))
                    }
                    current = record
                case .tiles(let index, let first, let samples):
                    guard index == currentIndex, current?.status == .done else { continue }
                    if config.slideTimeout > 0, Date().timeIntervalSince(currentStart) > config.slideTimeout {
                        cancelled.insert(index)
                        current?.status = .failed
                        current?.errorKind = TesseraError.Kind.timeout.rawValue
                        let before = current?.samples ?? 0
                        current?.reason = "stopped by the watchdog after \(Int(config.slideTimeout)) s (slide_timeout); \(before) tiles were written before"
                        if (current?.samples ?? 0) > 0 { current?.flags.append("partial") }
                        continue
                    }
                    for (offset, sample) in samples.enumerated() {
                        let position = first + offset
                        if let info = try writer.append(sample) {
                            current?.samples += 1
                            written.append(position)
                            try shardCompleted(info, nextPosition: position + 1)
                        } else {
                            current?.samples += 1
                            written.append(position)
                        }
                    }
                    progress.advance(by: samples.count)
                case .failed(let index, let error):
                    guard index == currentIndex, current?.status == .done else { continue }
                    cancelled.insert(index)
                    current?.status = .failed
                    current?.reason = error.description
                    current?.errorKind = error.kind.rawValue
                    if (current?.samples ?? 0) > 0 { current?.flags.append("partial") }
                case .cancelled:
                    continue
                case .slideEnd(let index):
                    guard index == currentIndex else { continue }
                    try finishSlide()
                }
            } catch {
                failure = error
                cancelled.insert(currentIndex)
            }
        }
        pool.join()
        while !producer.isFinished { usleep(1000) }
        if let failure {
            if let io = failure as? ShardIOError, [ENOSPC, EFBIG, EDQUOT].contains(io.code) {
                throw TesseraError(.noSpace, path: io.path, "\(io.operation) failed: no space left for the output (\(String(cString: strerror(io.code))))",
                                   hint: "free disk space or raise the file-size limit, then rerun the same command: it resumes from the last complete shard")
            }
            throw failure
        }

        if let info = try writer.finish() { manifest.shards.append(info) }
        manifest.status = .complete
        manifest.resume = nil
        try manifest.save(directory: out)
        progress.finish()
        return summary(manifest, started: started, alreadyComplete: false)
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
    final class PrepareBox: @unchecked Sendable { var result: Result<PreparedSlide, TesseraError>? }

    /// Opens and prepares a slide on its own thread; gives up after `slideTimeout` seconds,
    /// leaving the stuck thread behind (a hung libvips or OpenSlide call cannot be interrupted).
    private func prepareWithWatchdog(_ input: InputFile) -> Result<PreparedSlide, TesseraError> {
        guard config.slideTimeout > 0 else { return prepare(input) }
        let box = PrepareBox()
        let done = DispatchSemaphore(value: 0)
        let t = Thread { [self] in
            box.result = prepare(input)
            done.signal()
            VipsRuntime.threadShutdown()
        }
        t.stackSize = 8 << 20
        t.start()
        if done.wait(timeout: .now() + config.slideTimeout) == .timedOut {
            return .failure(TesseraError(.timeout, path: input.path,
                "stopped by the watchdog: opening the slide took longer than \(Int(config.slideTimeout)) s (slide_timeout)",
                hint: "the file may be damaged or on a stalled mount; raise --slide-timeout if the slide is just huge"))
        }
        return box.result!
    }

    private func prepare(_ input: InputFile) -> Result<PreparedSlide, TesseraError> {
        do {
            let slide = try Slide.open(path: input.path)
            let plan = try TilePlan.make(for: slide, target: config.target, assumeMpp: config.assumeMpp, allowUpsample: config.allowUpsample)
            var options = config.sliceOptions
            if let dir = config.maskDir {
                let candidate = dir + "/\(input.id).png"
                if FileManager.default.fileExists(atPath: candidate) { options.userMaskPath = candidate }
            }
            return .success(try PreparedSlide.prepare(slide, plan: plan, options: options))
        } catch let e as TesseraError {
            return .failure(e.path == nil ? TesseraError(e.kind, path: input.path, e.message, hint: e.hint) : e)
        } catch {
            return .failure(TesseraError(.unreadable, path: input.path, "\(error)"))
        }
    }

    private static func process(_ job: Job, _ ctx: WorkerContext, encoder: TileEncoder, config: TileConfig, cancelled: CancelSet) -> Output {
        switch job {
        case .slide(let index, let input, let prepared, let sha, let skip):
            return .slide(index: index, input: input, prepared: prepared, sha256: sha, skipBefore: skip)
        case .slideEnd(let index):
            ctx.reader = nil
            ctx.readerOf = nil
            return .slideEnd(index: index)
        case .unit(let index, let slideId, let prepared, let range, let skip):
            if cancelled.contains(index) { return .cancelled(index: index) }
            do {
                if ctx.readerOf != ObjectIdentifier(prepared) {
                    ctx.reader = try prepared.makeReader()
                    ctx.readerOf = ObjectIdentifier(prepared)
                }
                let encoded: [[UInt8]]
                if let compressed = try ctx.reader!.readCompressed(range) {
                    encoded = compressed
                } else {
                    let (strip, offsets) = try ctx.reader!.readStrip(range)
                    let size = prepared.grid.size
                    encoded = try offsets.map { try encoder.encode(strip, x: $0, y: 0, width: size, height: size) }
                }
                var samples: [ShardSample] = []
                let first = max(range.lowerBound, skip)
                for (i, bytes) in zip(range, encoded) where i >= skip {
                    let pos = prepared.positions[i]
                    let key = SampleMetadata.key(slideId: slideId, x: pos.level0X, y: pos.level0Y)
                    let meta = SampleMetadata(
                        key: key, slideId: slideId, source: prepared.slide.path, level: prepared.plan.level,
                        level0PerPixel: prepared.plan.level0PerPixel, x: pos.level0X, y: pos.level0Y,
                        level0Size: Int((Double(prepared.grid.size) * prepared.plan.level0PerPixel).rounded()),
                        tileSize: prepared.grid.size, mpp: prepared.plan.mpp, mppSource: prepared.plan.mppSource.rawValue,
                        mppEstimated: prepared.plan.mppSource.isEstimate,
                        tissueFraction: (pos.tissue * 10_000).rounded() / 10_000, format: encoder.format.rawValue,
                        stain: "none", label: nil, patientId: nil)
                    samples.append(ShardSample(key: key, files: [(ext: encoder.format.fileExtension, bytes: bytes),
                                                                 (ext: "json", bytes: [UInt8](try CanonicalJSON.encode(meta)))]))
                }
                return .tiles(index: index, first: first, samples: samples)
            } catch let e as TesseraError {
                return .failed(index: index, error: e)
            } catch {
                return .failed(index: index, error: TesseraError(.io, path: prepared.slide.path, "\(error)"))
            }
        }
    }
}
