import Foundation
import TesseraCore
import TesseraShards
import TesseraSlide
import TesseraStain

/// The work items of a tiling run, in the order the producer submits them, and what the workers
/// make of them. Large slides are prepared by the producer and cut unit by unit across workers;
/// small image files (microscopy fields, patches) travel as one `whole` job, opened and cut by one
/// worker, so that their decoding, which dominates, is spread over the workers too.
enum TileJob {
    case slide(index: Int, input: InputFile, prepared: Result<PreparedSlide, TesseraError>, sha256: String?, skipBefore: Int)
    case unit(index: Int, slideId: String, prepared: PreparedSlide, range: Range<Int>, skipBefore: Int)
    case slideEnd(index: Int)
    case whole(index: Int, input: InputFile, skipBefore: Int)
}

indirect enum TileOutput {
    case slide(index: Int, input: InputFile, prepared: Result<PreparedSlide, TesseraError>, sha256: String?, skipBefore: Int)
    case tiles(index: Int, first: Int, samples: [ShardSample])
    case failed(index: Int, error: TesseraError)
    case cancelled
    case slideEnd(index: Int)
    /// A small slide done in one job: its start, its tiles, an optional failure, its end.
    case whole(start: TileOutput, tiles: TileOutput?, failure: TileOutput?, end: TileOutput)
}

/// Per-worker-thread state: the tile reader of the slide the worker last touched.
final class TileWorkerContext {
    var reader: TileReader?
    var readerOf: ObjectIdentifier?
    /// The per-slide stain fit (stain_fit: slide) of the slide the worker last touched; nil inside
    /// means the slide could not be fitted (its tiles pass through unchanged).
    var stainSource: StainNormalizer.FixedSource??
    var stainSourceOf: ObjectIdentifier?

    /// Fits the source side once per slide on a mosaic of its tissue tiles. Every worker computes
    /// the same fit from the same tiles, so the output does not depend on which worker ran a unit.
    func stainSource(for prepared: PreparedSlide, normalizer: StainNormalizer, tiles: Int) -> StainNormalizer.FixedSource? {
        if stainSourceOf == ObjectIdentifier(prepared), let cached = stainSource { return cached }
        var fitted: StainNormalizer.FixedSource?
        if let mosaic = try? StainReference.mosaic(prepared, tiles: tiles, reader: try reader(for: prepared)) {
            fitted = try? normalizer.fixedSource(fittedOn: mosaic)
        }
        stainSource = .some(fitted)
        stainSourceOf = ObjectIdentifier(prepared)
        return fitted
    }

    func reader(for prepared: PreparedSlide) throws -> TileReader {
        if readerOf != ObjectIdentifier(prepared) || reader == nil {
            reader = try prepared.makeReader()
            readerOf = ObjectIdentifier(prepared)
        }
        return reader!
    }
}

/// Slides cancelled by the watchdog or by an error; read by workers to skip their remaining units.
/// `stopAll` ends the whole run (a fatal error such as a full disk): nothing more is read.
final class CancelSet: @unchecked Sendable {
    private let lock = NSLock()
    private var set = Set<Int>()
    private var all = false
    func stopAll() { lock.lock(); all = true; lock.unlock() }
    var isStopped: Bool { lock.lock(); defer { lock.unlock() }; return all }
    func insert(_ i: Int) { lock.lock(); set.insert(i); lock.unlock() }
    func contains(_ i: Int) -> Bool { lock.lock(); defer { lock.unlock() }; return all || set.contains(i) }
}

/// What workers do with each job. Pure function of the job and config, so the output bytes do not
/// depend on which thread ran it.
struct TileWorker: Sendable {
    let config: TileConfig
    let encoder: TileEncoder
    let cancelled: CancelSet
    /// Inputs by slide id, for the labels written into tile metadata.
    let inputs: [String: InputFile]
    /// Applied to every tile before encoding, when normalizing.
    let normalizer: StainNormalizer?

    func process(_ job: TileJob, _ ctx: TileWorkerContext) -> TileOutput {
        switch job {
        case .slide(let index, let input, let prepared, let sha, let skip):
            return .slide(index: index, input: input, prepared: prepared, sha256: sha, skipBefore: skip)
        case .slideEnd(let index):
            ctx.reader = nil
            ctx.readerOf = nil
            return .slideEnd(index: index)
        case .unit(let index, let slideId, let prepared, let range, let skip):
            if cancelled.contains(index) { return .cancelled }
            do {
                return .tiles(index: index, first: max(range.lowerBound, skip),
                              samples: try samples(of: prepared, slideId: slideId, range: range, skipBefore: skip, reader: try ctx.reader(for: prepared), context: ctx))
            } catch {
                return .failed(index: index, error: Self.typed(error, path: prepared.slide.path))
            }
        case .whole(let index, let input, let skip):
            if cancelled.isStopped { return .cancelled }
            let sha = config.checksumSlides ? try? SHA256.hexDigest(ofFileAt: input.path) : nil
            let prepared = Self.prepare(input, config: config)
            let start = TileOutput.slide(index: index, input: input, prepared: prepared, sha256: sha, skipBefore: skip)
            guard case .success(let p) = prepared, p.positions.count > skip else {
                return .whole(start: start, tiles: nil, failure: nil, end: .slideEnd(index: index))
            }
            do {
                let reader = try p.makeReader()
                var s: [ShardSample] = []
                for unit in p.units(maxTiles: config.readRun) where unit.upperBound > skip {
                    s += try samples(of: p, slideId: input.id, range: unit, skipBefore: skip, reader: reader, context: ctx)
                }
                return .whole(start: start, tiles: .tiles(index: index, first: skip, samples: s), failure: nil, end: .slideEnd(index: index))
            } catch {
                return .whole(start: start, tiles: nil, failure: .failed(index: index, error: Self.typed(error, path: input.path)),
                              end: .slideEnd(index: index))
            }
        }
    }

    /// Opens a slide, chooses its level and finds its tiles; errors name the file.
    static func prepare(_ input: InputFile, config: TileConfig) -> Result<PreparedSlide, TesseraError> {
        do {
            let slide = try Slide.open(path: input.path, maxPixels: config.maxPixels)
            let plan = try TilePlan.make(for: slide, target: config.target, assumeMpp: config.assumeMpp, allowUpsample: config.allowUpsample)
            return .success(try PreparedSlide.prepare(slide, plan: plan, options: config.sliceOptions(for: input)))
        } catch {
            return .failure(typed(error, path: input.path))
        }
    }

    /// Reads, encodes and labels the tiles `range` of a slide (those before `skipBefore` are already in shards).
    func samples(of prepared: PreparedSlide, slideId: String, range: Range<Int>, skipBefore skip: Int, reader: TileReader,
                 context: TileWorkerContext? = nil) throws -> [ShardSample] {
        let encoded: [[UInt8]]
        var stains: [String]?
        let size = prepared.grid.size
        if let compressed = try reader.readCompressed(range) {
            encoded = compressed
        } else if let normalizer {
            let (image, origins) = try reader.readStrip(range)
            var e: [[UInt8]] = [], s: [String] = []
            let fixed = config.stainFit == .slide ? context?.stainSource(for: prepared, normalizer: normalizer, tiles: 32) : nil
            for o in origins {
                // The tile's rows copied straight into an uninitialized buffer (no zero fill first).
                precondition(o.x >= 0 && o.y >= 0 && o.x + size <= image.width && o.y + size <= image.height, "tile outside strip")
                let row = 3 * size
                let pixels = [UInt8](unsafeUninitializedCapacity: row * size) { dst, count in
                    image.pixels.withUnsafeBufferPointer { src in
                        for r in 0..<size {
                            let from = src.baseAddress! + ((o.y + r) * image.width + o.x) * 3
                            (dst.baseAddress! + r * row).initialize(from: from, count: row)
                        }
                    }
                    count = row * size
                }
                let crop = RGBImage(width: size, height: size, pixels: pixels)
                let (tile, changed): (RGBImage, Bool)
                if config.stainFit == .slide {
                    tile = fixed.map { normalizer.transform(crop, source: $0) } ?? crop
                    changed = fixed != nil
                } else {
                    (tile, changed) = normalizer.normalize(crop)
                }
                e.append(try encoder.encode(tile))
                s.append(changed ? normalizer.target.method.rawValue : normalizer.target.method.rawValue + ":unchanged")
            }
            encoded = e
            stains = s
        } else {
            let (image, origins) = try reader.readStrip(range)
            encoded = try origins.map { try encoder.encode(image, x: $0.x, y: $0.y, width: size, height: size) }
        }
        var samples: [ShardSample] = []
        samples.reserveCapacity(range.count)
        let plan = prepared.plan
        for (n, (i, bytes)) in zip(range, encoded).enumerated() where i >= skip {
            let pos = prepared.positions[i]
            let key = SampleMetadata.key(slideId: slideId, x: pos.level0X, y: pos.level0Y)
            let meta = SampleMetadata(
                key: key, slideId: slideId, source: prepared.slide.path, level: plan.level,
                level0PerPixel: plan.level0PerPixel, x: pos.level0X, y: pos.level0Y,
                level0Size: Int((Double(size) * plan.level0PerPixel).rounded()), tileSize: size,
                mpp: plan.mpp, mppSource: plan.mppSource.rawValue, mppEstimated: plan.mppSource.isEstimate,
                tissueFraction: (pos.tissue * 10_000).rounded() / 10_000, format: encoder.format.rawValue,
                stain: stains?[n] ?? "none", label: inputs[slideId]?.label, patientId: inputs[slideId]?.patientId)
            samples.append(ShardSample(key: key, files: [(ext: encoder.format.fileExtension, bytes: bytes),
                                                         (ext: "json", bytes: [UInt8](try CanonicalJSON.encode(meta)))]))
        }
        return samples
    }

    static func typed(_ error: Error, path: String) -> TesseraError {
        guard let e = error as? TesseraError else { return TesseraError(.io, path: path, "\(error)") }
        return e.path == nil ? TesseraError(e.kind, path: path, e.message, hint: e.hint) : e
    }

    /// What the consumer receives in place of a job the watchdog abandoned.
    static func timedOut(_ job: TileJob, limit: Double) -> TileOutput {
        let hint = "the file may be damaged or on a stalled mount; raise --slide-timeout if the slide is just huge"
        switch job {
        case .unit(let index, _, let p, _, _):
            return .failed(index: index, error: TesseraError(.timeout, path: p.slide.path,
                "stopped by the watchdog: reading tiles took longer than \(Int(limit)) s (slide_timeout)", hint: hint))
        case .whole(let index, let input, let skip):
            let error = TesseraError(.timeout, path: input.path,
                "stopped by the watchdog: the slide took longer than \(Int(limit)) s (slide_timeout)", hint: hint)
            return .whole(start: .slide(index: index, input: input, prepared: .failure(error), sha256: nil, skipBefore: skip),
                          tiles: nil, failure: nil, end: .slideEnd(index: index))
        default:
            return .cancelled
        }
    }
}
