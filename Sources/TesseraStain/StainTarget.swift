import Foundation
import TesseraCore

/// The stain normalization methods, each a deliberate, documented variant.
public enum StainMethod: String, Sendable, Codable, CaseIterable {
    case none
    /// Macenko, torchstain-numpy semantics (Io = 240, least squares).
    case macenko
    /// Macenko, staintools semantics (Io = 255, luminosity mask, non-negative lasso).
    case macenkoStaintools = "macenko-staintools"
    /// Reinhard in OpenCV's 8-bit LAB (staintools, TIAToolbox).
    case reinhard = "reinhard"
    /// Reinhard in float CIELAB D65 (torchstain).
    case reinhardCielab = "reinhard-cielab"
    /// Vahadane, staintools formulation with a fixed iteration count and seed.
    case vahadane
}

/// A fitted normalization target: the small JSON `tessera stain fit` writes and pipelines name
/// (`stain: stain.json`). Holds what its method needs: stain vectors and maximum concentrations
/// (Macenko, Vahadane) or per-channel LAB means and standard deviations (Reinhard).
public struct StainTarget: Sendable, Equatable, Codable {
    public static let formatVersion = 1
    public var format = StainTarget.formatVersion
    public var method: StainMethod
    /// [H, E] optical-density vectors (RGB).
    public var stainVectors: [[Double]]?
    public var maxConcentrations: [Double]?
    /// L, a, b means and population standard deviations.
    public var labMean: [Double]?
    public var labStd: [Double]?
    /// What it was fitted on (file name and, for slides, how many tiles).
    public var source: String?

    enum CodingKeys: String, CodingKey {
        case format, method, stainVectors = "stain_vectors", maxConcentrations = "max_concentrations"
        case labMean = "lab_mean", labStd = "lab_std", source
    }

    public init(method: StainMethod, stain: StainMatrix? = nil, labMean: [Double]? = nil, labStd: [Double]? = nil, source: String? = nil) {
        self.method = method
        self.stainVectors = stain?.vectors
        self.maxConcentrations = stain?.maxConcentrations
        self.labMean = labMean
        self.labStd = labStd
        self.source = source
    }

    public var stainMatrix: StainMatrix? {
        guard let v = stainVectors, let m = maxConcentrations else { return nil }
        return StainMatrix(vectors: v, maxConcentrations: m)
    }

    /// The published default target of a method when no reference is fitted (Macenko: the paper
    /// code's HERef/maxCRef, as torchstain uses).
    public static func defaultTarget(_ method: StainMethod) -> StainTarget? {
        switch method {
        case .macenko: return StainTarget(method: .macenko, stain: .macenkoReference, source: "Macenko et al. 2009 reference (HERef, maxCRef)")
        default: return nil
        }
    }

    public static func load(path: String) throws -> StainTarget {
        guard let data = AtomicFile.read(path) else {
            throw TesseraError(.unreadable, path: path, "cannot read the stain file", hint: "make one with `tessera stain fit REFERENCE --method macenko --out \(path)`")
        }
        let t: StainTarget
        do { t = try JSONDecoder().decode(StainTarget.self, from: data) } catch {
            throw TesseraError(.corrupt, path: path, "not a valid stain file: \(error)", hint: "refit it with `tessera stain fit`")
        }
        guard t.format <= formatVersion else {
            throw TesseraError(.unsupportedFormat, path: path, "stain file format \(t.format) is newer than this tool", hint: "upgrade tessera")
        }
        try t.validate(path: path)
        return t
    }

    public func validate(path: String? = nil) throws {
        func bad(_ m: String) -> TesseraError { TesseraError(.invalidConfig, path: path, m, hint: "refit it with `tessera stain fit`") }
        switch method {
        case .none: return
        case .macenko, .macenkoStaintools, .vahadane:
            guard let v = stainVectors, v.count == 2, v.allSatisfy({ $0.count == 3 && $0.allSatisfy(\.isFinite) }) else {
                throw bad("\(method.rawValue) needs stain_vectors: two RGB optical-density vectors [[h_r, h_g, h_b], [e_r, e_g, e_b]]")
            }
            guard let m = maxConcentrations, m.count == 2, m.allSatisfy({ $0.isFinite && $0 > 0 }) else {
                throw bad("\(method.rawValue) needs max_concentrations: two positive numbers")
            }
        case .reinhard, .reinhardCielab:
            guard let m = labMean, m.count == 3, m.allSatisfy(\.isFinite), let s = labStd, s.count == 3, s.allSatisfy({ $0.isFinite && $0 > 0 }) else {
                throw bad("\(method.rawValue) needs lab_mean and lab_std: three numbers each (std > 0)")
            }
        }
    }

    public func save(path: String) throws {
        try AtomicFile.write(try CanonicalJSON.encode(self, pretty: true), to: path)
    }
}
