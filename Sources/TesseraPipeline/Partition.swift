import Foundation
import TesseraCore
import TesseraShards

/// One part of a collection split N ways: part `index` (0-based, like Slurm array task ids and
/// training ranks) of `count`. Written as "I/N" on the command line and in config files.
///
/// Guarantees: `0 <= index < count`; `directoryName` is the same for the same (index, count) and
/// sorts in index order.
public struct Partition: Codable, Sendable, Equatable, CustomStringConvertible {
    public let index: Int
    public let count: Int

    /// Upper bound on N: far beyond any array a scheduler accepts, low enough to keep names short.
    public static let maxCount = 1_000_000

    public init(index: Int, count: Int) throws {
        guard count >= 1, count <= Self.maxCount else {
            throw TesseraError(.invalidConfig, "partition: the number of parts must be 1–\(Self.maxCount), got \(count)")
        }
        guard index >= 0, index < count else {
            throw TesseraError(.invalidConfig, "partition: part \(index) is not in 0..<\(count) (parts are numbered from 0)",
                               hint: "for N parts use --partition 0/N … \(count - 1)/N")
        }
        self.index = index
        self.count = count
    }

    /// Parses "I/N" (I counted from 0).
    public static func parse(_ text: String) throws -> Partition {
        let fields = text.trimmingCharacters(in: .whitespaces).split(separator: "/", omittingEmptySubsequences: false)
        guard fields.count == 2, let i = Int(fields[0]), let n = Int(fields[1]) else {
            throw TesseraError(.invalidConfig, "partition: cannot read \"\(text)\" as I/N (e.g. 0/8: the first of 8 parts)")
        }
        return try Partition(index: i, count: n)
    }

    public var description: String { "\(index)/\(count)" }

    /// "part-0003-of-0008": the part's sub-directory under `OUT/parts/`.
    public var directoryName: String {
        let width = max(4, String(count - 1).count)
        func pad(_ v: Int) -> String { let s = String(v); return String(repeating: "0", count: max(0, width - s.count)) + s }
        return "part-\(pad(index))-of-\(pad(count))"
    }

    /// Reads a directory name made by `directoryName`; nil for anything else.
    public static func fromDirectoryName(_ name: String) -> Partition? {
        let f = name.split(separator: "-")
        guard f.count == 4, f[0] == "part", f[2] == "of", let i = Int(f[1]), let n = Int(f[3]),
              let p = try? Partition(index: i, count: n), p.directoryName == name else { return nil }
        return p
    }

    public init(from decoder: Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        self = try Self.parse(text)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }

    /// The partition of a Slurm job-array task, or nil outside a job array.
    ///
    /// Uses `SLURM_ARRAY_TASK_ID`, `SLURM_ARRAY_TASK_COUNT`, and `SLURM_ARRAY_TASK_MIN` and
    /// `SLURM_ARRAY_TASK_STEP` when present, so `--array=0-7`, `--array=1-8` and `--array=0-14:2`
    /// all give parts 0/8 … 7/8. Irregular arrays (`--array=1,4,9`) cannot be mapped and are refused.
    public static func fromEnvironment(_ env: [String: String]) throws -> Partition? {
        guard let idText = env["SLURM_ARRAY_TASK_ID"], !idText.isEmpty else { return nil }
        func number(_ name: String) throws -> Int? {
            guard let t = env[name], !t.isEmpty else { return nil }
            guard let v = Int(t.trimmingCharacters(in: .whitespaces)) else {
                throw TesseraError(.invalidConfig, "\(name)=\(t) is not a number")
            }
            return v
        }
        let id = try number("SLURM_ARRAY_TASK_ID")!
        guard let count = try number("SLURM_ARRAY_TASK_COUNT") else {
            throw TesseraError(.invalidConfig, "SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not",
                               hint: "pass --partition I/N explicitly")
        }
        let first = try number("SLURM_ARRAY_TASK_MIN") ?? 0
        let step = max(1, try number("SLURM_ARRAY_TASK_STEP") ?? 1)
        let offset = id - first
        guard offset >= 0, offset % step == 0, offset / step < count else {
            throw TesseraError(.invalidConfig,
                               "cannot map Slurm array task \(id) to a part (min \(first), step \(step), count \(count))",
                               hint: "use a contiguous array such as --array=0-\(count - 1), or pass --partition I/N explicitly")
        }
        return try Partition(index: offset / step, count: count)
    }

    /// The partition a command runs: the explicit flag if given ("none" turns partitioning off even
    /// inside a job array), else the Slurm array task's, else the config file's.
    public static func resolve(flag: String?, environment: [String: String], configured: Partition?) throws -> Partition? {
        if let flag {
            return flag.lowercased() == "none" ? nil : try parse(flag)
        }
        return try fromEnvironment(environment) ?? configured
    }
}

/// Deterministic, size-balanced assignment of a collection's slides to N parts.
///
/// Greedy longest-processing-time: slides by file size, largest first (ties by slide id), each to
/// the currently lightest part (ties to the lowest part number). The result depends only on the
/// (id, bytes) pairs, not on their order or names' sort order; every slide is in exactly one part;
/// the heaviest part exceeds the lightest by at most the largest slide.
public enum SlideAssignment {
    /// For each part, the indices into `inputs` of its slides, ascending (the collection's order).
    public static func assign(_ inputs: [InputFile], parts: Int) -> [[Int]] {
        precondition(parts >= 1)
        let order = inputs.indices.sorted { a, b in
            inputs[a].bytes != inputs[b].bytes ? inputs[a].bytes > inputs[b].bytes : inputs[a].id < inputs[b].id
        }
        var load = [Int](repeating: 0, count: parts)
        var members = [[Int]](repeating: [], count: parts)
        for i in order {
            var lightest = 0
            for p in 1..<parts where load[p] < load[lightest] { lightest = p }
            load[lightest] += max(0, inputs[i].bytes)
            members[lightest].append(i)
        }
        return members.map { $0.sorted() }
    }

    /// Identifies a collection (ids, paths, sizes, in order): parts made from different collections
    /// must not be merged.
    public static func collectionHash(_ inputs: [InputFile]) throws -> String {
        let rows = inputs.map { [$0.id, $0.path, String($0.bytes)] }
        return SHA256.hexDigest(of: [UInt8](try CanonicalJSON.encode(rows)))
    }
}
