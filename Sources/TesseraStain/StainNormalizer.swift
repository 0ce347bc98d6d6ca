import Foundation
import TesseraCore

/// Normalizes tiles to a fitted target. `normalize` never fails: a tile that cannot be fitted
/// (nearly all background, a flat colour) comes back unchanged with `changed == false`, so callers
/// count it and carry on.
public struct StainNormalizer: Sendable {
    public let target: StainTarget
    public var vahadane = VahadaneOptions()

    public init(target: StainTarget) throws {
        try target.validate()
        self.target = target
    }

    public func normalize(_ image: RGBImage) -> (image: RGBImage, changed: Bool) {
        do {
            switch target.method {
            case .none:
                return (image, false)
            case .macenko:
                return (try Macenko.normalize(image, to: target.stainMatrix!), true)
            case .macenkoStaintools:
                return (try Macenko.normalize(image, to: target.stainMatrix!, options: MacenkoOptions(variant: .staintools)), true)
            case .vahadane:
                return (try Vahadane.normalize(image, to: target.stainMatrix!, options: vahadane), true)
            case .reinhard:
                return (try Reinhard.normalize(image, mean: target.labMean!, std: target.labStd!, space: .opencvLab8), true)
            case .reinhardCielab:
                return (try Reinhard.normalize(image, mean: target.labMean!, std: target.labStd!, space: .cielab), true)
            }
        } catch {
            return (image, false)
        }
    }

    /// Fits a target of `method` to a reference image (for slides: a mosaic of tissue tiles).
    public static func fit(_ reference: RGBImage, method: StainMethod, source: String? = nil, vahadane: VahadaneOptions = VahadaneOptions()) throws -> StainTarget {
        do {
            switch method {
            case .none:
                return StainTarget(method: .none, source: source)
            case .macenko:
                return StainTarget(method: method, stain: try Macenko.fit(reference), source: source)
            case .macenkoStaintools:
                return StainTarget(method: method, stain: try Macenko.fit(reference, options: MacenkoOptions(variant: .staintools)), source: source)
            case .vahadane:
                return StainTarget(method: method, stain: try Vahadane.fit(reference, options: vahadane), source: source)
            case .reinhard, .reinhardCielab:
                let (m, s) = try Reinhard.statistics(reference, space: method == .reinhard ? .opencvLab8 : .cielab)
                guard s.allSatisfy({ $0 > 1e-12 }) else { throw StainFitError(reason: "the reference has a LAB channel with no spread") }
                return StainTarget(method: method, labMean: m, labStd: s, source: source)
            }
        } catch let e as StainFitError {
            throw TesseraError(.noTissue, path: source, "cannot fit \(method.rawValue): \(e.reason)",
                               hint: "use a reference with more stained tissue (not background or a flat colour)")
        }
    }
}
