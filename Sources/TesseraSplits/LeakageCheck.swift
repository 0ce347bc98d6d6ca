import Foundation

/// One way a split leaks: the same patient, slide, site, slide file or tile on two sides (or in two
/// cross-validation folds).
public struct Leak: Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        case slide, patient, site, group
        case foldPatient = "fold-patient"
        case slideFile = "slide-file"
        case tileCoordinates = "tile-coordinates"
        case tilePixels = "tile-pixels"
    }
    public var kind: Kind
    /// The offending id (patient id, slide id, hash …).
    public var id: String
    /// Where it appears: sides or folds.
    public var places: [String]
    /// The slides involved.
    public var slides: [String]

    public init(kind: Kind, id: String, places: [String], slides: [String]) {
        self.kind = kind
        self.id = id
        self.places = places
        self.slides = slides
    }

    public var description: String {
        let s = slides.prefix(6).joined(separator: ", ") + (slides.count > 6 ? " …" : "")
        return "\(kind.rawValue) \(id) is on \(places.joined(separator: " and ")) (slides: \(s))"
    }
}

/// Leakage checks that need only the split table. Tile-level checks (duplicate source coordinates,
/// identical pixels) read the dataset and live in the pipeline.
public enum LeakageCheck {
    public static func check(_ file: SplitFile) -> [Leak] {
        var leaks: [Leak] = []
        let rows = file.rows
        for (id, rs) in Dictionary(grouping: rows, by: \.slide.slideId) where rs.count > 1 {
            leaks.append(Leak(kind: .slide, id: id, places: Array(Set(rs.map(\.side.rawValue))).sorted(), slides: [id]))
        }
        func sidesLeak(_ kind: Leak.Kind, _ key: (SplitRow) -> String?) {
            var by: [String: [SplitRow]] = [:]
            for r in rows { if let k = key(r) { by[k, default: []].append(r) } }
            for (id, rs) in by.sorted(by: { $0.key < $1.key }) {
                let sides = Set(rs.map(\.side.rawValue))
                if sides.count > 1 {
                    leaks.append(Leak(kind: kind, id: id, places: sides.sorted(), slides: rs.map(\.slide.slideId).sorted()))
                }
            }
            if kind == .patient {
                for (id, rs) in by.sorted(by: { $0.key < $1.key }) {
                    let folds = Set(rs.compactMap(\.fold))
                    if folds.count > 1 && Set(rs.map(\.side)).count == 1 {
                        leaks.append(Leak(kind: .foldPatient, id: id, places: folds.sorted().map { "fold \($0)" }, slides: rs.map(\.slide.slideId).sorted()))
                    }
                }
            }
        }
        sidesLeak(.patient) { $0.slide.patientId }
        sidesLeak(.group) { $0.group }
        if file.rule.contains("group=site") { sidesLeak(.site) { $0.slide.site } }
        return leaks
    }
}
