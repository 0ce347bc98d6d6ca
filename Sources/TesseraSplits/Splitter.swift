import Foundation
import TesseraCore

/// Which side of a split a slide is on.
public enum SplitSide: String, Sendable, Codable, CaseIterable {
    case train, val, test
}

/// Slides that must stay together: all slides of a patient (default), each slide alone, or all
/// slides of a site (Howard et al. 2021, site-preserved splits for external-validation style tests).
public enum SplitGrouping: String, Sendable, Codable, CaseIterable {
    case patient, slide, site
}

/// How groups are given sides.
/// - `hash`: each group's side is a function of (seed, group id) alone, so adding slides never moves
///   existing ones; class proportions match the targets in expectation (binomial spread).
/// - `balanced`: within each class, groups ordered by the same hash fill exact quotas; proportions
///   are as close as group sizes allow, but adding slides can move groups near the quota edges.
public enum SplitAssignment: String, Sendable, Codable, CaseIterable {
    case hash, balanced
}

/// Everything that decides a split: the header of the split file records it.
public struct SplitRule: Sendable, Equatable {
    public var seed: UInt64 = 0
    public var group: SplitGrouping = .patient
    public var assignment: SplitAssignment = .hash
    public var test = 0.2
    public var val = 0.1
    /// k of k-fold cross-validation over the non-test groups; 0 = no folds.
    public var folds = 5
    /// Nested few-label subset sizes per class (drawn from the train side).
    public var subsets: [Int] = [1, 5, 10, 25, 50, 100, 250]
    /// Whether subset sizes count slides or tiles.
    public var subsetUnit: SubsetUnit = .slide

    public enum SubsetUnit: String, Sendable, Codable, CaseIterable { case slide, tile }

    public init() {}

    public func validate() throws {
        guard test >= 0, val >= 0, test + val < 1 else {
            throw TesseraError(.invalidConfig, "test (\(test)) and val (\(val)) fractions must be ≥ 0 and leave some train (sum < 1)")
        }
        guard folds == 0 || folds >= 2 else { throw TesseraError(.invalidConfig, "folds must be 0 (none) or at least 2, got \(folds)") }
        guard subsets.allSatisfy({ $0 >= 1 }) else { throw TesseraError(.invalidConfig, "subset sizes must be ≥ 1, got \(subsets)") }
    }

    /// One line for the split file header; `SplitFile` parses it back.
    public var description: String {
        "group=\(group.rawValue) assign=\(assignment.rawValue) test=\(Self.number(test)) val=\(Self.number(val)) folds=\(folds) subsets=\(subsets.sorted().map(String.init).joined(separator: ",")) subset_unit=\(subsetUnit.rawValue)"
    }

    static func number(_ x: Double) -> String {
        x == x.rounded() ? String(Int(x)) : String(x)
    }
}

/// One slide's place in a split.
public struct SplitRow: Sendable, Equatable {
    public var slide: SlideLabel
    public var group: String
    public var side: SplitSide
    /// Cross-validation fold (0-based) of a non-test slide; nil on the test side or without folds.
    public var fold: Int?
    /// Smallest few-label subset size that contains this slide (nested: it is in every larger one).
    public var minSubset: Int?

    public init(slide: SlideLabel, group: String, side: SplitSide, fold: Int? = nil, minSubset: Int? = nil) {
        self.slide = slide
        self.group = group
        self.side = side
        self.fold = fold
        self.minSubset = minSubset
    }
}

/// Assigns slides to sides, folds and nested subsets. Deterministic: a function of the rule and the
/// slide table (order-independent), so the same inputs give the same split file byte for byte.
public enum Splitter {
    public static func split(_ slides: [SlideLabel], rule: SplitRule) throws -> [SplitRow] {
        try rule.validate()
        var seen = Set<String>()
        for s in slides where !seen.insert(s.slideId).inserted {
            throw TesseraError(.invalidConfig, "slide \(s.slideId) is listed twice")
        }
        let groupOf = try groups(slides, by: rule.group)
        // Groups and their class (the most frequent label of their slides; ties to the smaller name).
        var members: [String: [SlideLabel]] = [:]
        for s in slides { members[groupOf[s.slideId]!, default: []].append(s) }
        let stratum: [String: String] = members.mapValues { ss in
            var count: [String: Int] = [:]
            for s in ss { count[s.label ?? "", default: 0] += 1 }
            return count.max { a, b in a.value != b.value ? a.value < b.value : a.key > b.key }!.key
        }
        var side: [String: SplitSide] = [:]
        var fold: [String: Int] = [:]
        switch rule.assignment {
        case .hash:
            for g in members.keys {
                let u = unit(rule.seed, "side", g)
                side[g] = u < rule.test ? .test : (u < rule.test + rule.val ? .val : .train)
                if rule.folds > 0 && side[g] != .test {
                    fold[g] = min(rule.folds - 1, Int(unit(rule.seed, "fold", g) * Double(rule.folds)))
                }
            }
        case .balanced:
            var byStratum: [String: [String]] = [:]
            for (g, s) in stratum { byStratum[s, default: []].append(g) }
            for (_, gs) in byStratum {
                let ordered = gs.sorted { (unit(rule.seed, "side", $0), $0) < (unit(rule.seed, "side", $1), $1) }
                let n = Double(ordered.count)
                let nTest = Int((n * rule.test).rounded()), nVal = Int((n * rule.val).rounded())
                for (i, g) in ordered.enumerated() {
                    side[g] = i < nTest ? .test : (i < nTest + nVal ? .val : .train)
                }
                if rule.folds > 0 {
                    let rest = ordered.filter { side[$0] != .test }
                        .sorted { (unit(rule.seed, "fold", $0), $0) < (unit(rule.seed, "fold", $1), $1) }
                    for (i, g) in rest.enumerated() { fold[g] = i % rule.folds }
                }
            }
        }
        var rows = slides.map { s -> SplitRow in
            let g = groupOf[s.slideId]!
            return SplitRow(slide: s, group: g, side: side[g]!, fold: fold[g], minSubset: nil)
        }
        if rule.subsetUnit == .slide && !rule.subsets.isEmpty {
            let items = rows.filter { $0.side == .train && $0.slide.label != nil }.map { (id: $0.slide.slideId, label: $0.slide.label!) }
            let sizes = nestedSubsets(items, sizes: rule.subsets, seed: rule.seed)
            for i in rows.indices { rows[i].minSubset = sizes[rows[i].slide.slideId] }
        }
        return rows.sorted { $0.slide.slideId < $1.slide.slideId }
    }

    /// Nested labelled subsets: per class, items ordered by a hash of (seed, id); the subset of size n
    /// is the first n of that order, so each smaller subset lies inside every larger one. Returns,
    /// for each item in some subset, the smallest size whose subset holds it.
    public static func nestedSubsets(_ items: [(id: String, label: String)], sizes: [Int], seed: UInt64) -> [String: Int] {
        let sorted = Array(Set(sizes)).sorted()
        guard let largest = sorted.last else { return [:] }
        var byLabel: [String: [String]] = [:]
        for item in items { byLabel[item.label, default: []].append(item.id) }
        var out: [String: Int] = [:]
        for (_, ids) in byLabel {
            let ordered = ids.sorted { (unit(seed, "subset", $0), $0) < (unit(seed, "subset", $1), $1) }
            for (rank, id) in ordered.prefix(largest).enumerated() {
                out[id] = sorted.first { rank < $0 }!
            }
        }
        return out
    }

    static func groups(_ slides: [SlideLabel], by grouping: SplitGrouping) throws -> [String: String] {
        var out: [String: String] = [:]
        var missing: [String] = []
        for s in slides {
            switch grouping {
            case .slide: out[s.slideId] = s.slideId
            case .patient:
                if let p = s.patientId { out[s.slideId] = p } else { missing.append(s.slideId) }
            case .site:
                if let p = s.site { out[s.slideId] = p } else { missing.append(s.slideId) }
            }
        }
        if !missing.isEmpty {
            let what = grouping == .patient ? "patient id" : "site"
            let hint = grouping == .patient
                ? "add a patient_id column to the labels table, or use --group slide when there are no patient ids"
                : "add a site column to the labels table"
            throw TesseraError(.invalidConfig, "\(missing.count) slide(s) have no \(what): \(LabelTable.list(missing))", hint: hint)
        }
        return out
    }

    /// A uniform number in [0, 1) from SHA-256("tessera-split|seed|purpose|id"): reproducible in any
    /// language and independent of every other slide.
    public static func unit(_ seed: UInt64, _ purpose: String, _ id: String) -> Double {
        let digest = SHA256.digest(Array("tessera-split|\(seed)|\(purpose)|\(id)".utf8))
        var v: UInt64 = 0
        for b in digest.prefix(8) { v = v << 8 | UInt64(b) }
        return Double(v >> 11) / Double(UInt64(1) << 53)
    }

    /// Per side and class: slide counts (for the report the CLI prints).
    public static func report(_ rows: [SplitRow]) -> String {
        let labels = Array(Set(rows.map { $0.slide.label ?? "(none)" })).sorted()
        var lines: [String] = []
        let width = max(8, (labels.map(\.count).max() ?? 0) + 2)
        func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
        lines.append(pad("class", width) + SplitSide.allCases.map { pad($0.rawValue, 16) }.joined())
        for l in labels + ["all"] {
            let ofClass = rows.filter { l == "all" || ($0.slide.label ?? "(none)") == l }
            var line = pad(l, width)
            for side in SplitSide.allCases {
                let n = ofClass.filter { $0.side == side }.count
                let pct = ofClass.isEmpty ? 0 : 100 * Double(n) / Double(ofClass.count)
                line += pad("\(n) (\(String(format: "%.1f", pct))%)", 16)
            }
            lines.append(line)
        }
        let groups = Dictionary(grouping: rows, by: \.group)
        lines.append("groups: \(groups.count) (\(SplitSide.allCases.map { s in "\(s.rawValue) \(groups.values.filter { $0[0].side == s }.count)" }.joined(separator: ", ")))")
        return lines.joined(separator: "\n")
    }
}
