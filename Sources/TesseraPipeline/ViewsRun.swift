import Foundation
import TesseraAugment
import TesseraCore
import TesseraShards
import TesseraSlide

/// `tessera views`: previews a recipe on a few tiles, or materializes views as shards for an
/// external trainer — one sample per source tile and epoch, all of its crops inside
/// (`KEY.json`, `KEY.v00.png`, `KEY.v01.png` …), samples in source order with the epochs of a tile
/// together, so slide runs (and splits) carry over. Output bytes do not depend on `workers`.
public enum ViewsRun {
    public struct Options: Sendable {
        public var epochs = 1
        public var seed: UInt64 = 0
        public var workers = max(1, ProcessInfo.processInfo.activeProcessorCount)
        public var format: TileFormat = .png
        public var quality = 95
        public var shardSize = 256 << 20
        public var slides: Set<String>?
        public var keys: Set<String>?
        public var quiet = false
        public init() {}
    }

    /// A PNG-ready grid: one row per tile, the tile then all of its views.
    public static func preview(dataset: String, recipe: ViewRecipe, count: Int, seed: UInt64, epoch: Int = 0) throws -> RGBImage {
        let reader = try DatasetReader(directory: dataset)
        guard reader.count > 0 else { throw TesseraError(.invalidConfig, path: dataset, "the dataset holds no tiles") }
        let generator = try ViewGenerator(recipe: recipe, seed: seed)
        var rng = SplitMix64(seed: seed ^ 0x7072_6576_6965_7721)
        var picks = Array(0..<reader.count)
        for i in 0..<min(count, picks.count) { picks.swapAt(i, i + Int(rng.next() % UInt64(picks.count - i))) }
        var rows: [RGBImage] = []
        for i in picks.prefix(count).sorted() {
            let tile = try TileDecoding.image(try reader.record(i))
            rows.append(Montage.row([tile] + generator.views(of: tile, sample: i, epoch: epoch), gap: 6))
        }
        return Montage.column(rows, gap: 12)
    }

    /// A loader over one epoch of a dataset (manifest order, or shuffled by `order`), decoding tiles
    /// on the loader's workers.
    public static func loader(dataset: String, recipe: ViewRecipe, seed: UInt64, epoch: Int, batchSize: Int, workers: Int,
                              order: ReadOrder? = nil, slides: Set<String>? = nil, keys: Set<String>? = nil) throws -> ViewBatchLoader {
        let reader = try DatasetReader(directory: dataset)
        let o = order ?? { var r = ReadOrder(); r.shuffle = false; return r }()
        let samples = Array(try reader.epoch(epoch, order: o, slides: slides, keys: keys))
        return try ViewBatchLoader(samples: samples, epoch: epoch, generator: try ViewGenerator(recipe: recipe, seed: seed),
                                   batchSize: batchSize, workers: workers, threadExit: { VipsRuntime.threadShutdown() }) { i in
            try ThreadTileReader.image(reader, i)
        }
    }

    public struct Summary: Sendable {
        public var samples: Int
        public var shards: Int
        public var seconds: Double
    }

    public static func materialize(dataset: String, recipe: ViewRecipe, output: String, options o: Options) throws -> Summary {
        let started = Date()
        let reader = try DatasetReader(directory: dataset)
        let source = reader.manifest!
        let generator = try ViewGenerator(recipe: recipe, seed: o.seed)
        guard o.epochs >= 1 && o.epochs <= 10_000 else { throw TesseraError(.invalidConfig, "epochs must be 1–10000, got \(o.epochs)") }
        guard (1...256).contains(o.workers) else { throw TesseraError(.invalidConfig, "workers must be 1–256, got \(o.workers)") }
        let shardDir = output + "/shards"
        let config: JSONValue = .object([
            "source": .string(dataset), "source_config_hash": .string(source.configHash),
            "views": try JSONValue.from(recipe), "seed": .string(String(o.seed)), "epochs": .number(Double(o.epochs)),
            "format": .string(o.format.rawValue), "quality": .number(Double(o.quality)),
        ])
        let hash = SHA256.hexDigest(of: [UInt8](try CanonicalJSON.encode(config)))
        if FileManager.default.fileExists(atPath: output + "/" + DatasetManifest.fileName) {
            // The same command rerun after it completed (as after a kill that came too late) is a no-op.
            if let done = try? DatasetManifest.load(directory: output), done.configHash == hash, done.status == .complete {
                return Summary(samples: done.shards.reduce(0) { $0 + $1.samples }, shards: done.shards.count, seconds: 0)
            }
            throw TesseraError(.mismatch, path: output, "already holds a dataset", hint: "choose a new output directory")
        }
        try FileManager.default.createDirectory(atPath: shardDir, withIntermediateDirectories: true)
        let lock = try DirectoryLock(directory: output, purpose: "writing views")
        defer { withExtendedLifetime(lock) {} }
        // No manifest: whatever shards are here are a killed run's (the manifest is written last);
        // views runs start over rather than resume, so clear them instead of leaving stale files.
        for name in (try? FileManager.default.contentsOfDirectory(atPath: shardDir)) ?? []
        where name.hasPrefix("shard-") && (name.hasSuffix(".tar") || name.hasSuffix(".idx") || name.hasSuffix(".tmp")) {
            try? FileManager.default.removeItem(atPath: shardDir + "/" + name)
        }
        let indices = try reader.epoch(0, order: { var r = ReadOrder(); r.shuffle = false; return r }(), slides: o.slides, keys: o.keys).map { $0 }
        var manifest = DatasetManifest(tesseraVersion: TileRun.version, configHash: hash, config: config, inputs: source.inputs)
        manifest.resume = nil
        let writer = try ShardWriter(directory: URL(fileURLWithPath: shardDir), targetBytes: o.shardSize)
        let encoder = TileEncoder(format: o.format, quality: o.quality)
        let epochs = o.epochs
        let pool = OrderedPool<Int, Result<[ShardSample], TesseraError>, Void>(
            workers: o.workers, capacity: o.workers * 4, makeContext: { () }, threadExit: { VipsRuntime.threadShutdown() },
            process: { i, _ in
                do {
                    let record = try reader.record(i)
                    let tile = try TileDecoding.image(record)
                    let meta = try? TileDecoding.metadata(record)
                    var out: [ShardSample] = []
                    for e in 0..<epochs {
                        let views = generator.views(of: tile, sample: i, epoch: e)
                        var files: [(ext: String, bytes: [UInt8])] = []
                        let info: JSONValue = .object([
                            "source_key": .string(record.key), "source_index": .number(Double(i)), "epoch": .number(Double(e)),
                            "slide_id": meta.map { .string($0.slideId) } ?? .null, "label": meta?.label.map { .string($0) } ?? .null,
                            "views": .array(views.map { .array([.number(Double($0.width)), .number(Double($0.height))]) }),
                        ])
                        files.append(("json", [UInt8](try CanonicalJSON.encode(info))))
                        for (k, v) in views.enumerated() {
                            files.append((String(format: "v%02d.", k) + encoder.format.fileExtension, try encoder.encode(v)))
                        }
                        out.append(ShardSample(key: "\(record.key)_e\(e)", files: files))
                    }
                    return .success(out)
                } catch let e as TesseraError {
                    return .failure(e)
                } catch {
                    return .failure(TesseraError(.io, path: dataset, "\(error)"))
                }
            })
        let progress = ProgressReporter(label: "views", unit: "tiles", total: indices.count, quiet: o.quiet)
        Thread.detachNewThread {
            for i in indices { pool.submit(i) }
            pool.close()
        }
        var perSlide: [String: Int] = [:]
        var samples = 0
        var failure: TesseraError?
        var position = 0
        while let result = pool.next(stuck: { _ in .failure(TesseraError(.timeout, "stuck")) }) {
            let i = indices[position]
            position += 1
            switch result {
            case .failure(let e):
                if failure == nil { failure = e }
            case .success(let s):
                guard failure == nil else { continue }
                for sample in s {
                    if let info = try writer.append(sample) { manifest.shards.append(info) }
                }
                samples += s.count
                if let id = reader.slideId(of: i) { perSlide[id, default: 0] += s.count }
                progress.advance(by: 1)
            }
        }
        pool.join()
        if let failure { throw failure }
        if let info = try writer.finish() { manifest.shards.append(info) }
        progress.finish()
        manifest.slides = source.slides.compactMap { s in
            guard let n = perSlide[s.id] else { return nil }
            var r = s
            r.samples = n
            return r
        }
        manifest.status = .complete
        try manifest.save(directory: output)
        return Summary(samples: samples, shards: manifest.shards.count, seconds: Date().timeIntervalSince(started))
    }
}
