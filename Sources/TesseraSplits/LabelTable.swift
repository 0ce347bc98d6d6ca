import Foundation
import TesseraCore

/// What is known about one slide (or one image of a microscopy collection) for splitting.
public struct SlideLabel: Sendable, Equatable, Codable {
    public var slideId: String
    public var patientId: String?
    public var label: String?
    public var site: String?
    public init(slideId: String, patientId: String? = nil, label: String? = nil, site: String? = nil) {
        self.slideId = slideId
        self.patientId = patientId
        self.label = label
        self.site = site
    }
}

/// A slide of a dataset as the manifest lists it.
public struct DatasetSlide: Sendable, Equatable {
    public var id: String
    public var path: String
    public init(id: String, path: String) {
        self.id = id
        self.path = path
    }
}

/// A user's labels table: a CSV with a header naming the slide (`slide_id`, or `path` matched against
/// the slide files) and any of `patient_id`, `label`, `site`. Other columns are ignored.
public struct LabelTable: Sendable {
    public struct Row: Sendable, Equatable {
        public var line: Int
        public var slideId: String?
        public var path: String?
        public var patientId: String?
        public var label: String?
        public var site: String?
    }

    public let path: String
    public let rows: [Row]

    static let slideColumns = ["slide_id", "slide"]
    static let pathColumns = ["path", "file", "filename"]
    static let patientColumns = ["patient_id", "patient", "case_id"]
    static let labelColumns = ["label", "class"]
    static let siteColumns = ["site", "center", "centre", "institution"]

    public init(path: String) throws {
        let table = try CSVTable.read(path: path)
        func find(_ names: [String]) -> Int? {
            names.lazy.compactMap { n in table.header.firstIndex { $0.lowercased() == n } }.first
        }
        let slide = find(Self.slideColumns), file = find(Self.pathColumns)
        guard slide != nil || file != nil else {
            throw TesseraError(.invalidConfig, path: path, "the labels table has no slide column (header: \(table.header.joined(separator: ",")))",
                               hint: "name the slide in a `slide_id` column (dataset slide ids) or a `path` column (slide file paths)")
        }
        let patient = find(Self.patientColumns), label = find(Self.labelColumns), site = find(Self.siteColumns)
        func value(_ r: [String], _ c: Int?) -> String? {
            guard let c else { return nil }
            let v = r[c].trimmingCharacters(in: .whitespaces)
            return v.isEmpty ? nil : v
        }
        var rows: [Row] = []
        for (i, r) in table.rows.enumerated() {
            let row = Row(line: i + 2 + table.comments.count, slideId: value(r, slide), path: value(r, file),
                          patientId: value(r, patient), label: value(r, label), site: value(r, site))
            guard row.slideId != nil || row.path != nil else {
                throw TesseraError(.invalidConfig, path: path, "line \(row.line) names no slide", hint: "fill its slide_id or path")
            }
            rows.append(row)
        }
        self.path = path
        self.rows = rows
    }

    /// The table on its own (no dataset): slide ids from `slide_id`, or made from `path` by `idForPath`.
    public func slides(idForPath: (String) -> String) throws -> [SlideLabel] {
        var seen: [String: Int] = [:]
        var out: [SlideLabel] = []
        for r in rows {
            let id = r.slideId ?? idForPath(r.path!)
            if let first = seen[id] {
                throw TesseraError(.invalidConfig, path: path, "slide \(id) appears on lines \(first) and \(r.line)", hint: "keep one row per slide")
            }
            seen[id] = r.line
            out.append(SlideLabel(slideId: id, patientId: r.patientId, label: r.label, site: r.site))
        }
        return out
    }

    /// Labels for every slide of a dataset, in the dataset's order. Table rows naming no slide of the
    /// dataset are an error unless `ignoreUnknown`; dataset slides without a row are an error unless
    /// `allowMissing` (they are then split without a label).
    public func resolve(_ slides: [DatasetSlide], ignoreUnknown: Bool = false, allowMissing: Bool = false) throws -> [SlideLabel] {
        let byId = Dictionary(slides.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        var byName: [String: [DatasetSlide]] = [:]
        for s in slides { byName[(s.path as NSString).lastPathComponent, default: []].append(s) }
        var found: [String: Row] = [:]
        var unknown: [String] = []
        for r in rows {
            var match: DatasetSlide?
            if let id = r.slideId {
                match = byId[id]
            } else if let p = r.path {
                let candidates = (byName[(p as NSString).lastPathComponent] ?? []).filter { Self.pathMatches($0.path, p) }
                if candidates.count > 1 {
                    throw TesseraError(.invalidConfig, path: path, "line \(r.line): path \(p) matches several slides (\(candidates.map(\.id).joined(separator: ", ")))",
                                       hint: "give more of the path, or use a slide_id column")
                }
                match = candidates.first
            }
            guard let s = match else { unknown.append(r.slideId ?? r.path!); continue }
            if let prev = found[s.id] {
                throw TesseraError(.invalidConfig, path: path, "slide \(s.id) appears on lines \(prev.line) and \(r.line)", hint: "keep one row per slide")
            }
            found[s.id] = r
        }
        if !unknown.isEmpty && !ignoreUnknown {
            throw TesseraError(.invalidConfig, path: path,
                "\(unknown.count) row(s) name slides the dataset does not have: \(Self.list(unknown))",
                hint: "check the ids (dataset slide ids are listed by `tessera inspect`), or pass --ignore-unknown if the table covers more slides than the dataset")
        }
        let missing = slides.filter { found[$0.id] == nil }.map(\.id)
        if !missing.isEmpty && !allowMissing {
            throw TesseraError(.invalidConfig, path: path,
                "\(missing.count) dataset slide(s) have no row: \(Self.list(missing))",
                hint: "add rows for them, or pass --allow-missing to split them without a label")
        }
        return slides.map { s in
            let r = found[s.id]
            return SlideLabel(slideId: s.id, patientId: r?.patientId, label: r?.label, site: r?.site)
        }
    }

    /// Microscopy collections: the label is the name of the folder holding each image; each image
    /// is its own slide and patient.
    public static func fromFolders(_ slides: [DatasetSlide]) -> [SlideLabel] {
        slides.map { s in
            let folder = ((s.path as NSString).deletingLastPathComponent as NSString).lastPathComponent
            return SlideLabel(slideId: s.id, patientId: nil, label: folder.isEmpty ? nil : folder, site: nil)
        }
    }

    /// `full` ends with `suffix` at a path-component boundary.
    static func pathMatches(_ full: String, _ suffix: String) -> Bool {
        let f = (full as NSString).standardizingPath, s = (suffix as NSString).standardizingPath
        if f == s { return true }
        let trimmed = s.hasPrefix("./") ? String(s.dropFirst(2)) : s
        return f.hasSuffix("/" + trimmed)
    }

    static func list(_ ids: [String]) -> String {
        ids.prefix(10).joined(separator: ", ") + (ids.count > 10 ? " … (\(ids.count - 10) more)" : "")
    }
}
