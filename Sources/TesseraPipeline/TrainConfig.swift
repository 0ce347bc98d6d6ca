import Foundation
import TesseraCore
import TesseraTrain

/// The `train:` section of a pipeline file: where the tiles come from, where the run writes, and
/// the training settings (`PretrainSettings`, same level). The view recipe is the file's `views:`.
public struct TrainConfig: Decodable, Sendable {
    /// A tiled dataset (directory with manifest.json).
    public var dataset: String
    /// Optional `FILE:SELECTOR` restricting training to part of a split (e.g. `splits/x.csv:train`).
    public var split: String?
    public var output: String
    /// View-generation threads (default: the machine's cores).
    public var workers: Int?
    /// OpenBLAS threads for the matrix products (default 1: see ARCHITECTURE.md on shared machines).
    public var blasThreads: Int
    /// Also checkpoint every this many steps (0: only at the end of each epoch).
    public var checkpointEvery: Int
    public var settings: PretrainSettings

    enum Keys: String, CodingKey, CaseIterable {
        case dataset, split, output, workers
        case blasThreads = "blas_threads", checkpointEvery = "checkpoint_every"
    }

    public static var knownKeys: Set<String> { Set(Keys.allCases.map(\.rawValue)).union(PretrainSettings.knownKeys) }

    public init(dataset: String, output: String, settings: PretrainSettings) {
        self.dataset = dataset
        self.output = output
        self.settings = settings
        blasThreads = 1
        checkpointEvery = 0
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: Keys.self)
        dataset = try c.decode(String.self, forKey: .dataset)
        split = try c.decodeIfPresent(String.self, forKey: .split)
        output = try c.decode(String.self, forKey: .output)
        workers = try c.decodeIfPresent(Int.self, forKey: .workers)
        blasThreads = try c.decodeIfPresent(Int.self, forKey: .blasThreads) ?? 1
        checkpointEvery = try c.decodeIfPresent(Int.self, forKey: .checkpointEvery) ?? 0
        settings = try PretrainSettings(from: decoder)
    }

    public func validate() throws {
        try settings.validate()
        if let w = workers, w < 1 { throw TesseraError(.invalidConfig, "train.workers must be at least 1, got \(w)") }
        if blasThreads < 1 { throw TesseraError(.invalidConfig, "train.blas_threads must be at least 1, got \(blasThreads)") }
        if checkpointEvery < 0 { throw TesseraError(.invalidConfig, "train.checkpoint_every must not be negative") }
    }
}
