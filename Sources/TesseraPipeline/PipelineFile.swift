import Foundation
import TesseraAugment
import TesseraCore
import Yams

/// A declarative run (`pipelines/*.yaml`): one file, one reproducible run. Today it holds the
/// `tile` stage; relative paths are resolved against the current directory, as on the command line.
public struct PipelineFile: Decodable, Sendable {
    public var name: String?
    public var tile: TileConfig?
    /// View recipe (SimCLR, DINO, histo …) for `tessera views`.
    public var views: ViewRecipe?
    /// Self-supervised training (`tessera train`), fed by `views`.
    public var train: TrainConfig?
    /// Few-label evaluation of the trained checkpoint (`tessera eval`).
    public var eval: EvalConfig?

    enum CodingKeys: String, CodingKey { case name, tile, views, train, eval }
    static let knownTopLevel: Set<String> = ["name", "tile", "views", "train", "eval", "description"]
    static let knownViews: Set<String> = ["stain_jitter", "crops", "normalize"]
    static let knownCrop: Set<String> = ["name", "count", "size", "scale", "ratio", "interpolation", "hflip", "vflip", "rot90",
                                         "jitter", "grayscale", "blur", "solarize"]

    public static func load(path: String) throws -> PipelineFile {
        // POSIX read: Foundation's String(contentsOfFile:) leaked 4 KB per empty file (found by fuzzing).
        guard let data = AtomicFile.read(path, maxBytes: maxBytes, streams: true) else {
            if let size = (try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int, size > maxBytes {
                throw TesseraError(.invalidConfig, path: path, "is \(size) bytes, more than a pipeline file's limit of \(maxBytes)",
                                   hint: "a pipeline file holds settings only; list large inputs in a file and name it")
            }
            throw TesseraError(.unreadable, path: path, "cannot read the pipeline file")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw TesseraError(.invalidConfig, path: path, "is not UTF-8 text", hint: "save the pipeline file as UTF-8")
        }
        do {
            try checkShape(text, path: path)
            if let top = try Yams.load(yaml: text) as? [String: Any] {
                let unknown = Set(top.keys).subtracting(knownTopLevel)
                if !unknown.isEmpty {
                    throw TesseraError(.invalidConfig, path: path, "unknown section(s): \(unknown.sorted().joined(separator: ", "))",
                                       hint: "known: \(knownTopLevel.sorted().joined(separator: ", "))")
                }
                if let views = top["views"] as? [String: Any] {
                    let unknown = Set(views.keys).subtracting(knownViews)
                    if !unknown.isEmpty {
                        throw TesseraError(.invalidConfig, path: path, "views: unknown setting(s): \(unknown.sorted().joined(separator: ", "))",
                                           hint: "known: \(knownViews.sorted().joined(separator: ", "))")
                    }
                    for crop in views["crops"] as? [[String: Any]] ?? [] {
                        let unknown = Set(crop.keys).subtracting(knownCrop)
                        if !unknown.isEmpty {
                            throw TesseraError(.invalidConfig, path: path, "views.crops: unknown setting(s): \(unknown.sorted().joined(separator: ", "))",
                                               hint: "known: \(knownCrop.sorted().joined(separator: ", "))")
                        }
                    }
                }
                if let eval = top["eval"] as? [String: Any] {
                    let unknown = Set(eval.keys).subtracting(EvalConfig.knownKeys)
                    if !unknown.isEmpty {
                        throw TesseraError(.invalidConfig, path: path, "eval: unknown setting(s): \(unknown.sorted().joined(separator: ", "))",
                                           hint: "known: \(EvalConfig.knownKeys.sorted().joined(separator: ", "))")
                    }
                }
                if let train = top["train"] as? [String: Any] {
                    let unknown = Set(train.keys).subtracting(TrainConfig.knownKeys)
                    if !unknown.isEmpty {
                        throw TesseraError(.invalidConfig, path: path, "train: unknown setting(s): \(unknown.sorted().joined(separator: ", "))",
                                           hint: "known: \(TrainConfig.knownKeys.sorted().joined(separator: ", "))")
                    }
                }
                if let tile = top["tile"] as? [String: Any] {
                    let known: Set<String> = Set(TileConfig.CodingKeys.allKeys)
                    let unknownKeys = Set(tile.keys).subtracting(known)
                    if !unknownKeys.isEmpty {
                        throw TesseraError(.invalidConfig, path: path, "tile: unknown setting(s): \(unknownKeys.sorted().joined(separator: ", "))",
                                           hint: "known: \(known.sorted().joined(separator: ", "))")
                    }
                }
            }
            var file = try YAMLDecoder().decode(PipelineFile.self, from: text)
            if let e = file.eval, e.checkpoint.isEmpty {
                guard let t = file.train else {
                    throw TesseraError(.invalidConfig, path: path, "eval: no checkpoint given and no train section to take it from")
                }
                file.eval?.checkpoint = t.output + "/" + TrainRun.checkpointName
            }
            return file
        } catch let e as TesseraError {
            throw e
        } catch let DecodingError.typeMismatch(_, ctx), let DecodingError.valueNotFound(_, ctx) {
            throw TesseraError(.invalidConfig, path: path, "\(ctx.codingPath.map(\.stringValue).joined(separator: ".")): \(ctx.debugDescription)")
        } catch let DecodingError.dataCorrupted(ctx) {
            throw TesseraError(.invalidConfig, path: path, "\(ctx.codingPath.map(\.stringValue).joined(separator: ".")): \(ctx.debugDescription)")
        } catch {
            throw TesseraError(.invalidConfig, path: path, "not a valid pipeline file: \(error)")
        }
    }
}

extension PipelineFile {
    /// Largest pipeline file read: real ones are a few kilobytes.
    static let maxBytes = 1 << 20
    /// Most nodes the YAML may expand to (aliases count once per use).
    static let maxNodes = 100_000
    /// Yams recurses once per level (≈ 1,800 levels overflowed an AddressSanitizer build's stack).
    static let maxNesting = 1000

    /// An upper bound on the YAML's nesting depth from its text alone, without parsing: every `[` and
    /// `{` in the file (none subtracted: a quote, a comment or a closing bracket inside a string can
    /// neither hide nor cancel one, so hostile text cannot talk the bound down) plus the deepest line
    /// start (indentation and the compact `- `, `? `, `: ` markers that open a level each).
    static func nestingBound(_ text: String) -> Int {
        var opens = 0, deepestStart = 0, start = 0, atLineStart = true
        for byte in text.utf8 {
            switch byte {
            case 10:
                atLineStart = true
                start = 0
                continue
            case UInt8(ascii: "["), UInt8(ascii: "{"):
                opens += 1
            default:
                break
            }
            if atLineStart {
                if byte == 32 || byte == 9 || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "?") || byte == UInt8(ascii: ":") {
                    start += 1
                    deepestStart = max(deepestStart, start)
                } else {
                    atLineStart = false
                }
            }
        }
        return opens + deepestStart
    }

    /// Refuses YAML that Yams' untyped loader would trap on — a list or mapping used as a mapping key
    /// (found by fuzzing: `? a: b` crashed the process) — and YAML that expands without bound through
    /// nested aliases ("billion laughs"), before anything walks the tree.
    static func checkShape(_ text: String, path: String) throws {
        guard text.utf8.count <= maxBytes else {
            throw TesseraError(.invalidConfig, path: path, "is \(text.utf8.count) bytes, more than a pipeline file's limit of \(maxBytes)",
                               hint: "a pipeline file holds settings only; list large inputs in a file and name it")
        }
        // Yams builds its tree recursively: 1,800 nested `{` overflowed the stack (found by fuzzing),
        // before the tree could be checked. Bound the nesting on the text first (over-counting).
        let nesting = nestingBound(text)
        if nesting > maxNesting {
            throw TesseraError(.invalidConfig, path: path, "is nested too deeply or holds too many brackets (bound \(nesting); the limit is \(maxNesting))",
                               hint: "a pipeline file needs a handful of levels and a few dozen [ ] / { }: check for runaway brackets or indentation")
        }
        guard let root = try Yams.compose(yaml: text) else { return }
        var budget = maxNodes
        func walk(_ node: Node, depth: Int) throws {
            budget -= 1
            if budget < 0 {
                throw TesseraError(.invalidConfig, path: path, "expands to more than \(maxNodes) values (aliases of aliases?)")
            }
            if depth > 64 { throw TesseraError(.invalidConfig, path: path, "is nested more than 64 levels deep") }
            switch node {
            case .scalar: return
            case .sequence(let items):
                for item in items { try walk(item, depth: depth + 1) }
            case .mapping(let pairs):
                for (key, value) in pairs {
                    guard case .scalar = key else {
                        let at = key.mark.map { " (line \($0.line))" } ?? ""
                        throw TesseraError(.invalidConfig, path: path, "a mapping key must be a plain name, not a list or mapping\(at)")
                    }
                    try walk(value, depth: depth + 1)
                }
            }
        }
        try walk(root, depth: 0)
    }
}

extension TileConfig.CodingKeys {
    static var allKeys: [String] { allCases.map(\.rawValue) }
}
