import Foundation
import TesseraCore

/// Scores of a classifier on labelled samples: accuracy, balanced accuracy, per-class recall and
/// precision, and the confusion matrix (rows = truth, columns = prediction), as a table and a figure.
///
/// Balanced accuracy is the mean recall over the classes present in the truth (scikit-learn's
/// `balanced_accuracy_score`); a class never predicted has precision 0, a class absent from the
/// truth has recall `nil` (it is not part of the mean).
public struct ClassificationReport: Sendable {
    public let classNames: [String]
    /// confusion[t][p] = samples of true class t predicted as p.
    public let confusion: [[Int]]

    public init(truth: [Int], predicted: [Int], classNames: [String]) throws {
        guard truth.count == predicted.count else {
            throw TesseraError(.invalidConfig, "classification report: \(truth.count) true labels but \(predicted.count) predictions")
        }
        let k = classNames.count
        var m = [[Int]](repeating: [Int](repeating: 0, count: k), count: k)
        for (t, p) in zip(truth, predicted) {
            guard (0..<k).contains(t), (0..<k).contains(p) else {
                throw TesseraError(.invalidConfig, "classification report: label \((0..<k).contains(t) ? p : t) outside 0..<\(k)")
            }
            m[t][p] += 1
        }
        self.classNames = classNames
        self.confusion = m
    }

    public var classes: Int { classNames.count }
    public var total: Int { confusion.reduce(0) { $0 + $1.reduce(0, +) } }
    public var correct: Int { (0..<classes).reduce(0) { $0 + confusion[$1][$1] } }
    public var accuracy: Double { total == 0 ? 0 : Double(correct) / Double(total) }

    /// Per class: correct / true samples of the class, or nil when the truth has none.
    public var recall: [Double?] {
        (0..<classes).map { c in
            let n = confusion[c].reduce(0, +)
            return n == 0 ? nil : Double(confusion[c][c]) / Double(n)
        }
    }

    /// Per class: correct / samples predicted as the class (0 when never predicted).
    public var precision: [Double] {
        (0..<classes).map { c in
            let n = (0..<classes).reduce(0) { $0 + confusion[$1][c] }
            return n == 0 ? 0 : Double(confusion[c][c]) / Double(n)
        }
    }

    public var balancedAccuracy: Double {
        let present = recall.compactMap { $0 }
        return present.isEmpty ? 0 : present.reduce(0, +) / Double(present.count)
    }

    /// A plain-text summary: overall scores, a per-class table and the confusion matrix.
    public var text: String {
        let nameWidth = max(5, classNames.map(\.count).max() ?? 0)
        func pad(_ s: String, _ w: Int, left: Bool = false) -> String {
            let fill = String(repeating: " ", count: max(0, w - s.count))
            return left ? s + fill : fill + s
        }
        func pct(_ v: Double?) -> String { v.map { String(format: "%.1f%%", 100 * $0) } ?? "-" }
        var lines = [
            "samples \(total)  accuracy \(pct(accuracy))  balanced accuracy \(pct(balancedAccuracy))",
            "",
            pad("class", nameWidth, left: true) + "  " + pad("support", 7) + "  " + pad("recall", 7) + "  " + pad("precision", 9),
        ]
        let (rec, prec) = (recall, precision)
        for c in 0..<classes {
            lines.append(pad(classNames[c], nameWidth, left: true) + "  " + pad(String(confusion[c].reduce(0, +)), 7) + "  "
                         + pad(pct(rec[c]), 7) + "  " + pad(pct(prec[c]), 9))
        }
        let rowLabels = (0..<classes).map { "\($0) \(classNames[$0])" }
        let labelWidth = rowLabels.map(\.count).max() ?? 0
        let cellWidth = max(6, String(confusion.flatMap { $0 }.max() ?? 0).count + 1, String(classes).count + 1)
        lines += ["", "confusion (rows = truth, columns = prediction)",
                  pad("", labelWidth) + (0..<classes).map { pad(String($0), cellWidth) }.joined()]
        for c in 0..<classes {
            lines.append(pad(rowLabels[c], labelWidth, left: true) + confusion[c].map { pad(String($0), cellWidth) }.joined())
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
