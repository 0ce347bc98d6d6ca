import Foundation
import TesseraCore
import TesseraShards
import TesseraSlide

/// The consumer side of a tiling run: takes worker outputs in slide order, appends samples to the
/// shard writer, keeps each slide's record, writes QC thumbnails, and saves the manifest with a
/// resume point every time a shard completes (so a killed run loses at most the open shard).
final class DatasetAssembler {
    private let config: TileConfig
    private var normalizing: Bool { config.normalize != .none }
    private let directory: String
    private let writer: ShardWriter
    private let cancelled: CancelSet
    private let progress: ProgressReporter
    private let log: (String) -> Void
    private(set) var manifest: DatasetManifest
    private let totalInputs: Int
    private let firstIndex: Int

    private var current: SlideRecord?
    private var currentPrepared: PreparedSlide?
    private var currentStart = Date()
    private var currentIndex = 0
    /// Positions written for the current slide, for its QC overlay.
    private var written: [Int] = []
    private let started = Date()
    private var slidesFinished = 0
    /// The resume point this run started from: the resumed slide's unchanged-stain count so far.
    private let resumedFrom: ResumePoint?

    init(config: TileConfig, directory: String, manifest: DatasetManifest, writer: ShardWriter, cancelled: CancelSet,
         firstIndex: Int, log: @escaping (String) -> Void) {
        self.config = config
        self.directory = directory
        self.manifest = manifest
        self.writer = writer
        self.cancelled = cancelled
        self.firstIndex = firstIndex
        self.totalInputs = manifest.inputs.count
        self.resumedFrom = manifest.resume
        self.log = log
        self.progress = ProgressReporter(label: "tile", unit: "tiles", quiet: config.quiet)
    }

    /// The slide being assembled, for cancelling it when writing fails.
    var currentSlide: Int { currentIndex }

    func consume(_ output: TileOutput) throws {
        switch output {
        case .slide(let index, let input, let prepared, let sha, let skip):
            begin(index: index, input: input, prepared: prepared, sha256: sha, skip: skip)
        case .tiles(let index, let first, let samples):
            try append(index: index, first: first, samples: samples)
        case .failed(let index, let error):
            fail(index: index, error: error)
        case .cancelled:
            break
        case .slideEnd(let index):
            guard index == currentIndex else { return }
            finishSlide()
        case .whole(let start, let tiles, let failure, let end):
            try consume(start)
            if let tiles { try consume(tiles) }
            if let failure { try consume(failure) }
            try consume(end)
        }
    }

    private func begin(index: Int, input: InputFile, prepared: Result<PreparedSlide, TesseraError>, sha256: String?, skip: Int) {
        currentIndex = index
        currentStart = Date()
        var record = SlideRecord(id: input.id, path: input.path, bytes: input.bytes, status: .done, samples: skip)
        record.sha256 = sha256
        record.label = input.label
        record.patientId = input.patientId
        record.site = input.site
        switch prepared {
        case .failure(let e):
            record.status = .failed
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
            if skip > 0, let r = resumedFrom, r.slide == index { record.stainUnchanged = r.stainUnchangedDone }
        }
        current = record
    }

    private func append(index: Int, first: Int, samples: [ShardSample]) throws {
        guard index == currentIndex, current?.status == .done else { return }
        if config.slideTimeout > 0, Date().timeIntervalSince(currentStart) > config.slideTimeout {
            fail(index: index, error: TesseraError(.timeout, path: current?.path,
                 "stopped by the watchdog after \(Int(config.slideTimeout)) s (slide_timeout)"))
            return
        }
        for (offset, sample) in samples.enumerated() {
            let position = first + offset
            let completed = try writer.append(sample)
            current?.samples += 1
            if normalizing, let meta = sample.files.last, meta.ext == "json", Self.unchangedStain(meta.bytes) {
                let n = current?.stainUnchanged ?? 0
                current?.stainUnchanged = n + 1
            }
            written.append(position)
            if let info = completed {
                manifest.shards.append(info)
                manifest.resume = ResumePoint(slide: currentIndex, samplesDone: position + 1, nextShard: writer.nextShardNumber,
                                              stainUnchangedDone: current?.stainUnchanged)
                try manifest.save(directory: directory)
            }
        }
        progress.advance(by: samples.count)
    }

    /// Whether a tile's JSON records that stain normalization left it unchanged.
    static func unchangedStain(_ json: [UInt8]) -> Bool {
        String(decoding: json, as: UTF8.self).contains(":unchanged\"")
    }

    private func fail(index: Int, error: TesseraError) {
        guard index == currentIndex, current?.status == .done else { return }
        cancelled.insert(index)
        current?.status = .failed
        current?.reason = error.description
        current?.errorKind = error.kind.rawValue
        if (current?.samples ?? 0) > 0 { current?.flags.append("partial") }
    }

    private func finishSlide() {
        guard var record = current else { return }
        if record.status == .done && record.samples == 0 {
            record.status = .skipped
            if let p = currentPrepared, p.grid.columns == 0 || p.grid.rows == 0 {
                record.reason = "smaller than one \(config.tileSize)-pixel tile at the target resolution"
            } else {
                record.reason = "no tile has at least \(config.minTissue) tissue"
            }
        }
        // With `--tissue none` every tile is kept and the overlay would only repeat the image.
        if config.thumbnails, config.tissueMethod != .none || config.maskDir != nil, let p = currentPrepared {
            let relative = "thumbnails/\(record.id).png"
            do {
                try PNGWriter.write(QCOverlay.render(p, written: written), to: directory + "/" + relative, compression: 1)
                record.thumbnail = relative
            } catch { log("warning: \(error)") }
        }
        manifest.slides.append(record)
        if record.status == .failed { log("failed: \(record.reason ?? record.path)") }
        current = nil
        currentPrepared = nil
        written = []
        slidesFinished += 1
        let rate = Double(slidesFinished) / max(Date().timeIntervalSince(started), 1e-3)
        let left = totalInputs - firstIndex - slidesFinished
        progress.advance(by: 0, status: "slide \(manifest.slides.count)/\(totalInputs)"
                         + (left > 0 ? ", ETA \(ProgressReporter.duration(Double(left) / rate))" : ""))
    }

    /// Completes the last shard and marks the dataset complete.
    func finish() throws {
        if let info = try writer.finish() { manifest.shards.append(info) }
        manifest.status = .complete
        manifest.resume = nil
        try manifest.save(directory: directory)
        progress.finish()
    }
}
