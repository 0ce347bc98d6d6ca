import Foundation
import TesseraCore

/// A training checkpoint: one safetensors file with the model under PyTorch `state_dict` names
/// (`backbone.*`, `head.*`; batch-norm `num_batches_tracked` as int64, as PyTorch stores it), the
/// rest of the run's state under prefixes (`teacher.*`, `optimizer.*`, `dino.*`), and string
/// metadata (format, step, settings JSON, reader position). Written atomically.
public struct Checkpoint {
    public static let format = "tessera-checkpoint/1"
    public var tensors: [String: [Float]]
    public var shapes: [String: [Int]]
    public var metadata: [String: String]

    public init(tensors: [(name: String, shape: [Int], values: [Float])], metadata: [String: String]) {
        self.tensors = Dictionary(uniqueKeysWithValues: tensors.map { ($0.name, $0.values) })
        shapes = Dictionary(uniqueKeysWithValues: tensors.map { ($0.name, $0.shape) })
        self.metadata = metadata
        self.metadata["format"] = Self.format
    }

    public func write(to path: String) throws {
        var out: [String: SafeTensor] = [:]
        for (name, values) in tensors {
            let shape = shapes[name] ?? [values.count]
            if name.hasSuffix("num_batches_tracked") {
                out[name] = SafeTensor(int64s: values.map { Int64($0) }, shape: shape)
            } else {
                out[name] = SafeTensor(floats: values, shape: shape)
            }
        }
        try SafeTensors.write(out, metadata: metadata, to: path)
    }

    public static func read(_ path: String) throws -> Checkpoint {
        let (raw, metadata) = try SafeTensors.read(path)
        guard metadata["format"] == format else {
            throw TesseraError(.unsupportedFormat, path: path, "not a Tessera checkpoint (metadata format is \(metadata["format"] ?? "missing"))",
                               hint: "pass a file written by `tessera train`")
        }
        var list: [(name: String, shape: [Int], values: [Float])] = []
        for (name, t) in raw {
            switch t.dtype {
            case .f32: list.append((name, t.shape, try t.floats))
            case .i64: list.append((name, t.shape, try t.int64s.map { Float($0) }))
            default: throw TesseraError(.corrupt, path: path, "tensor \(name) has dtype \(t.dtype.rawValue); checkpoints hold F32 and I64")
            }
        }
        return Checkpoint(tensors: list, metadata: metadata)
    }
}
