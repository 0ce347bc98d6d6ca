import Foundation
import TesseraCore

/// What happened to one source slide.
public enum SlideStatus: String, Codable, Sendable {
    case done
    case skipped
    case failed
}

/// One source slide in a dataset manifest: identity, outcome, and how it was read.
public struct SlideRecord: Codable, Sendable, Equatable {
    public var id: String
    /// Path as given on the command line or found under an input directory.
    public var path: String
    public var bytes: Int
    public var sha256: String?
    public var status: SlideStatus
    /// Why a slide was skipped or failed; nil when done.
    public var reason: String?
    /// Error kind for failures (see `TesseraError.Kind`).
    public var errorKind: String?
    public var samples: Int
    public var width: Int?
    public var height: Int?
    public var reader: String?
    public var vendor: String?
    public var level: Int?
    public var level0PerPixel: Double?
    public var mpp: Double?
    public var mppSource: String?
    public var tissueFraction: Double?
    /// Warnings a user should look at: "almost-no-tissue", "almost-all-tissue", "mpp-estimated", "partial".
    public var flags: [String]
    public var thumbnail: String?
    public var label: String?
    public var patientId: String?
    public var site: String?
    /// Tiles stain normalization could not fit (nearly all background) and left unchanged.
    public var stainUnchanged: Int?

    public init(id: String, path: String, bytes: Int, status: SlideStatus, samples: Int = 0) {
        self.id = id
        self.path = path
        self.bytes = bytes
        self.status = status
        self.samples = samples
        self.flags = []
    }
}

/// Where a killed run continues: the first sample that is not in a completed shard.
public struct ResumePoint: Codable, Sendable, Equatable {
    /// Index into the manifest's `inputs` of the slide being written.
    public var slide: Int
    /// Samples of that slide already in completed shards.
    public var samplesDone: Int
    public var nextShard: Int
    /// Of those samples, how many stain normalization left unchanged (so a resumed slide's count
    /// covers its whole run); nil when not normalizing or in manifests written before it existed.
    public var stainUnchangedDone: Int?
    public init(slide: Int, samplesDone: Int, nextShard: Int, stainUnchangedDone: Int? = nil) {
        self.slide = slide
        self.samplesDone = samplesDone
        self.nextShard = nextShard
        self.stainUnchangedDone = stainUnchangedDone
    }
}

/// One input file as it was when the run started; a resumed run refuses changed inputs.
public struct InputFile: Codable, Sendable, Equatable {
    public var id: String
    public var path: String
    public var bytes: Int
    /// From a labels table or the image's folder; written into every tile's metadata.
    public var label: String?
    public var patientId: String?
    public var site: String?
    public init(id: String, path: String, bytes: Int) {
        self.id = id
        self.path = path
        self.bytes = bytes
    }
}

/// The dataset's table of contents (`manifest.json`): what readers, `verify`, `split` and resume trust.
/// A shard listed here is complete and its sha256 is recorded; a slide listed here has its final status.
public struct DatasetManifest: Codable, Sendable {
    public static let fileName = "manifest.json"
    public static let currentFormatVersion = 1

    public enum Status: String, Codable, Sendable { case inProgress = "in-progress", complete }

    public var formatVersion: Int
    public var tesseraVersion: String
    public var status: Status
    public var configHash: String
    public var config: JSONValue
    public var inputs: [InputFile]
    public var slides: [SlideRecord]
    public var shards: [ShardInfo]
    /// Present while `status` is in-progress.
    public var resume: ResumePoint?
    /// Present in one part of a partitioned run (`tessera tile --partition I/N`).
    public var partition: PartitionRecord?
    /// Present in a dataset made by `tessera merge`.
    public var merge: MergeRecord?
    public var samples: Int { shards.reduce(0) { $0 + $1.samples } }

    public init(tesseraVersion: String, configHash: String, config: JSONValue, inputs: [InputFile]) {
        self.formatVersion = Self.currentFormatVersion
        self.tesseraVersion = tesseraVersion
        self.status = .inProgress
        self.configHash = configHash
        self.config = config
        self.inputs = inputs
        self.slides = []
        self.shards = []
        self.resume = ResumePoint(slide: 0, samplesDone: 0, nextShard: 0)
    }

    public static func load(directory: String) throws -> DatasetManifest {
        let path = directory + "/" + fileName
        guard let data = AtomicFile.read(path) else {
            throw TesseraError(.unreadable, path: path, "no manifest", hint: "is this a Tessera dataset directory? run `tessera tile` first")
        }
        do {
            let m = try JSONDecoder().decode(DatasetManifest.self, from: data)
            guard m.formatVersion <= currentFormatVersion else {
                throw TesseraError(.unsupportedFormat, path: path, "manifest format \(m.formatVersion) is newer than this tool understands (\(currentFormatVersion))", hint: "upgrade tessera")
            }
            return m
        } catch let e as TesseraError {
            throw e
        } catch {
            throw TesseraError(.corrupt, path: path, "manifest is not valid: \(error)")
        }
    }

    /// Writes the manifest atomically (temporary file, fsync, rename).
    public func save(directory: String) throws {
        try AtomicFile.write(try CanonicalJSON.encode(self, pretty: true), to: directory + "/" + Self.fileName)
    }
}
