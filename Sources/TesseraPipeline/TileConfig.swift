import Foundation
import TesseraCore
import TesseraShards
import TesseraSlide
import TesseraStain

/// Everything that decides what `tessera tile` writes. Flags and the `tile:` section of a
/// pipeline file fill the same struct; `validate()` rejects wrong values with a message naming the field.
public struct TileConfig: Codable, Sendable, Equatable {
    public var inputs: [String] = []
    public var output: String = ""
    /// Target µm/px; nil with `magnification` nil means native resolution.
    public var mpp: Double?
    public var magnification: Double?
    /// Used only for slides that record no µm/px.
    public var assumeMpp: Double?
    public var allowUpsample = false
    public var tileSize = 256
    /// Defaults to `tileSize` (no overlap).
    public var stride: Int?
    public var minTissue = 0.5
    public var tissueMethod: TissueMethod = .otsu
    public var maskSize = 2048
    /// Folder of user masks named `<slide id>.png` (non-zero = tissue).
    public var maskDir: String?
    public var format: TileFormat = .jpg
    public var quality = 90
    /// Target shard size in bytes.
    public var shardSize = 64 << 20
    public var depth16: DepthConversion = .stretch
    public var thumbnails = true
    /// Record each slide's sha256 in the manifest.
    public var checksumSlides = true
    /// Copy the slide's own JPEG tiles into shards undecoded when the grid coincides with its tile
    /// grid (level used as is, tile size = stride = the TIFF tile size, JPEG output).
    public var passThrough = true
    /// Labels table (CSV: slide_id or path, and patient_id, label, site) whose values go into each
    /// tile's metadata and the manifest. Its content is part of the inputs, not of the config hash.
    public var labels: String?
    /// Microscopy collections: each image's label is the name of its folder.
    public var labelsFromFolders = false
    /// Stain normalization applied to every tile (re-encodes: no pass-through).
    public var normalize: StainMethod = .none
    /// Target from `tessera stain fit`; without it Macenko uses the paper code's reference target.
    /// Its fitted values, not its path, are part of the config hash.
    public var stain: String?
    /// Fit the source stains per tile (torchstain's per-image semantics) or once per slide on a
    /// mosaic of 32 of its tissue tiles (consistent within a slide, and much faster).
    public var stainFit: StainFit = .tile
    public enum StainFit: String, Codable, Sendable, CaseIterable { case tile, slide }
    /// Tile only this part of the collection (`SlideAssignment`), into `output/parts/<part>/`.
    /// Part of the config hash, so a part cannot be resumed under a different partitioning.
    public var partition: Partition?
    // Settings below do not change the output bytes and are not part of the config hash.
    public var workers: Int = min(256, max(1, ProcessInfo.processInfo.activeProcessorCount))
    /// Per-slide time limit in seconds (watchdog); 0 disables it.
    public var slideTimeout: Double = 1800
    /// Slides whose level 0 has more pixels are failed as "too-large" before any pixel is read.
    public var maxPixels: Int = Slide.defaultMaxPixels
    /// Tiles read per strip fetch.
    public var readRun = 16
    public var quiet = false

    public init() {}

    enum CodingKeys: String, CodingKey, CaseIterable {
        case inputs, output, mpp, magnification, assumeMpp = "assume_mpp", allowUpsample = "allow_upsample"
        case tileSize = "tile_size", stride, minTissue = "min_tissue", tissueMethod = "tissue_method"
        case maskSize = "mask_size", maskDir = "mask_dir", format, quality, shardSize = "shard_size"
        case depth16 = "depth16", thumbnails, checksumSlides = "checksum_slides", passThrough = "pass_through", labels, labelsFromFolders = "labels_from_folders", normalize, stain, stainFit = "stain_fit", partition, workers
        case slideTimeout = "slide_timeout", maxPixels = "max_pixels", readRun = "read_run", quiet
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = TileConfig()
        inputs = try c.decodeIfPresent([String].self, forKey: .inputs) ?? d.inputs
        output = try c.decodeIfPresent(String.self, forKey: .output) ?? d.output
        mpp = try c.decodeIfPresent(Double.self, forKey: .mpp)
        magnification = try c.decodeIfPresent(Double.self, forKey: .magnification)
        assumeMpp = try c.decodeIfPresent(Double.self, forKey: .assumeMpp)
        allowUpsample = try c.decodeIfPresent(Bool.self, forKey: .allowUpsample) ?? d.allowUpsample
        tileSize = try c.decodeIfPresent(Int.self, forKey: .tileSize) ?? d.tileSize
        stride = try c.decodeIfPresent(Int.self, forKey: .stride)
        minTissue = try c.decodeIfPresent(Double.self, forKey: .minTissue) ?? d.minTissue
        tissueMethod = try c.decodeIfPresent(TissueMethod.self, forKey: .tissueMethod) ?? d.tissueMethod
        maskSize = try c.decodeIfPresent(Int.self, forKey: .maskSize) ?? d.maskSize
        maskDir = try c.decodeIfPresent(String.self, forKey: .maskDir)
        format = try c.decodeIfPresent(TileFormat.self, forKey: .format) ?? d.format
        quality = try c.decodeIfPresent(Int.self, forKey: .quality) ?? d.quality
        if let s = try? c.decodeIfPresent(String.self, forKey: .shardSize) {
            shardSize = try ByteSize.parse(s)
        } else {
            shardSize = try c.decodeIfPresent(Int.self, forKey: .shardSize) ?? d.shardSize
        }
        depth16 = try c.decodeIfPresent(DepthConversion.self, forKey: .depth16) ?? d.depth16
        thumbnails = try c.decodeIfPresent(Bool.self, forKey: .thumbnails) ?? d.thumbnails
        checksumSlides = try c.decodeIfPresent(Bool.self, forKey: .checksumSlides) ?? d.checksumSlides
        passThrough = try c.decodeIfPresent(Bool.self, forKey: .passThrough) ?? d.passThrough
        labels = try c.decodeIfPresent(String.self, forKey: .labels)
        labelsFromFolders = try c.decodeIfPresent(Bool.self, forKey: .labelsFromFolders) ?? d.labelsFromFolders
        normalize = try c.decodeIfPresent(StainMethod.self, forKey: .normalize) ?? d.normalize
        stain = try c.decodeIfPresent(String.self, forKey: .stain)
        stainFit = try c.decodeIfPresent(StainFit.self, forKey: .stainFit) ?? d.stainFit
        partition = try c.decodeIfPresent(Partition.self, forKey: .partition)
        workers = try c.decodeIfPresent(Int.self, forKey: .workers) ?? d.workers
        slideTimeout = try c.decodeIfPresent(Double.self, forKey: .slideTimeout) ?? d.slideTimeout
        maxPixels = try c.decodeIfPresent(Int.self, forKey: .maxPixels) ?? d.maxPixels
        readRun = try c.decodeIfPresent(Int.self, forKey: .readRun) ?? d.readRun
        quiet = try c.decodeIfPresent(Bool.self, forKey: .quiet) ?? d.quiet
    }

    public var effectiveStride: Int { stride ?? tileSize }

    /// Where this run writes its dataset: `output`, or `output/parts/part-III-of-NNN` for a partition.
    public var datasetDirectory: String {
        guard let partition else { return output }
        return output + "/parts/" + partition.directoryName
    }

    public var target: ResolutionTarget {
        if let mpp { return .mpp(mpp) }
        if let magnification { return .magnification(magnification) }
        return .native
    }

    /// Rejects values that cannot work, naming the setting and the accepted range.
    public func validate() throws {
        func bad(_ field: String, _ msg: String) -> TesseraError {
            TesseraError(.invalidConfig, "\(field): \(msg)")
        }
        if inputs.isEmpty { throw bad("inputs", "no input slides or folders given") }
        if output.isEmpty { throw bad("output", "no output directory given") }
        if mpp != nil && magnification != nil { throw bad("mpp/magnification", "give one of --mpp and --magnification, not both") }
        if let mpp, !(mpp > 0 && mpp < 1000) { throw bad("mpp", "must be between 0 and 1000 µm/px, got \(mpp)") }
        if let m = magnification, !(m > 0 && m <= 200) { throw bad("magnification", "must be between 0 and 200, got \(m)") }
        if let a = assumeMpp, !(a > 0 && a < 1000) { throw bad("assume-mpp", "must be between 0 and 1000 µm/px, got \(a)") }
        if !(8...8192).contains(tileSize) { throw bad("tile-size", "must be 8–8192 pixels, got \(tileSize)") }
        if let s = stride, !(1...8192).contains(s) { throw bad("stride", "must be 1–8192 pixels, got \(s)") }
        if !(0...1).contains(minTissue) { throw bad("min-tissue", "is a fraction 0–1, got \(minTissue)") }
        if !(64...16384).contains(maskSize) { throw bad("mask-size", "must be 64–16384 pixels, got \(maskSize)") }
        if !(1...100).contains(quality) { throw bad("quality", "JPEG quality is 1–100, got \(quality)") }
        if shardSize < 1024 { throw bad("shard-size", "must be at least 1 KB, got \(shardSize) bytes") }
        if !(1...256).contains(workers) { throw bad("workers", "must be 1–256, got \(workers)") }
        if slideTimeout < 0 { throw bad("slide-timeout", "must be ≥ 0 seconds (0 = off), got \(slideTimeout)") }
        if maxPixels < 1 { throw bad("max-pixels", "must be at least 1, got \(maxPixels)") }
        if !(1...1024).contains(readRun) { throw bad("read-run", "must be 1–1024 tiles, got \(readRun)") }
        if let dir = maskDir, !FileManager.default.fileExists(atPath: dir) { throw bad("mask-dir", "\(dir) does not exist") }
        if labels != nil && labelsFromFolders { throw bad("labels", "give a labels table or --labels-from-folders, not both") }
        if let l = labels, !FileManager.default.fileExists(atPath: l) { throw bad("labels", "\(l) does not exist") }
        if normalize != .none { _ = try stainTarget() }
    }

    /// The settings that determine output bytes, in canonical JSON; its sha256 identifies the dataset.
    public func outputDefiningJSON() throws -> JSONValue {
        var copy = self
        copy.output = ""
        copy.workers = 0
        copy.slideTimeout = 0
        copy.maxPixels = 0
        copy.readRun = 0
        copy.quiet = false
        copy.labels = nil
        copy.stain = nil
        copy.stride = effectiveStride
        guard case .object(var o) = try JSONValue.from(copy) else { return .null }
        for k in ["output", "workers", "slide_timeout", "max_pixels", "read_run", "quiet", "labels", "stain"] { o.removeValue(forKey: k) }
        if normalize == .none {
            o.removeValue(forKey: "normalize")
            o.removeValue(forKey: "stain_fit")
        } else if let t = try stainTarget() {
            o["stain_target"] = try JSONValue.from(t)
        }
        // Datasets made before labels existed keep their hash.
        if !labelsFromFolders { o.removeValue(forKey: "labels_from_folders") }
        return .object(o)
    }

    public func hash() throws -> String {
        SHA256.hexDigest(of: [UInt8](try CanonicalJSON.encode(try outputDefiningJSON())))
    }

    /// The hash without the partition: what a single-machine run over the whole collection records.
    public func baseHash() throws -> String {
        var whole = self
        whole.partition = nil
        return try whole.hash()
    }

    /// The normalization target: the `stain` file, or the method's built-in one; nil without normalization.
    public func stainTarget() throws -> StainTarget? {
        guard normalize != .none else { return nil }
        var target: StainTarget
        if let path = stain {
            target = try StainTarget.load(path: path)
            guard target.method == normalize else {
                throw TesseraError(.invalidConfig, path: path, "holds a \(target.method.rawValue) target but normalize is \(normalize.rawValue)",
                                   hint: "fit one with `tessera stain fit REFERENCE --method \(normalize.rawValue) --out FILE`")
            }
        } else if let builtin = StainTarget.defaultTarget(normalize) {
            target = builtin
        } else {
            throw TesseraError(.invalidConfig, "normalize: \(normalize.rawValue) needs a fitted target (stain: FILE)",
                               hint: "fit one with `tessera stain fit REFERENCE --method \(normalize.rawValue) --out stain.json` and pass --stain stain.json")
        }
        target.source = nil
        return target
    }

    /// Slice options for one input: a user mask `<mask_dir>/<slide id>.png` is used when present.
    public func sliceOptions(for input: InputFile) -> PreparedSlide.Options {
        var o = sliceOptions
        if let dir = maskDir {
            let candidate = dir + "/\(input.id).png"
            if FileManager.default.fileExists(atPath: candidate) { o.userMaskPath = candidate }
        }
        return o
    }

    public var sliceOptions: PreparedSlide.Options {
        var o = PreparedSlide.Options()
        o.tileSize = tileSize
        o.stride = effectiveStride
        o.minTissue = minTissue
        o.tissue.method = tissueMethod
        o.maskSize = maskSize
        o.depth = depth16
        o.allowPassThrough = format == .jpg && passThrough && normalize == .none
        return o
    }
}

/// Parses sizes such as "64MB", "1.5GiB", "512k" (decimal and binary units) into bytes.
public enum ByteSize {
    public static func parse(_ text: String) throws -> Int {
        let s = text.trimmingCharacters(in: .whitespaces).lowercased()
        let units: [(String, Double)] = [("gib", 1_073_741_824), ("mib", 1_048_576), ("kib", 1024), ("gb", 1e9), ("mb", 1e6), ("kb", 1e3),
                                         ("g", 1_073_741_824), ("m", 1_048_576), ("k", 1024), ("b", 1)]
        for (u, f) in units where s.hasSuffix(u) {
            if let v = Double(s.dropLast(u.count).trimmingCharacters(in: .whitespaces)), v > 0, (v * f).isFinite, v * f < 1e18 {
                return Int(v * f)
            }
        }
        if let v = Int(s), v > 0 { return v }
        throw TesseraError(.invalidConfig, "shard-size: cannot read \"\(text)\" as a size (examples: 64MB, 512MiB, 1GB)")
    }
}
