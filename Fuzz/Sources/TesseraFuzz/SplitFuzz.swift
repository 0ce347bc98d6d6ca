// Split files (CSV with a `#` header), split selectors, and label tables.
import Foundation
import TesseraSplits

func fuzzSplit(_ bytes: UnsafeRawBufferPointer) {
    let path = scratchFile("split.csv", bytes)
    if let split = try? SplitFile.read(path: path) {
        for selector in ["train", "val", "test", "trainval,fold!=1", "train,subset=5", "label=x"] {
            _ = try? split.select(selector)
        }
    }
    // A split file's checksum rejects most mutated files early, so the selector grammar gets its
    // own shot at the same bytes against a fixed split.
    if bytes.count < 256, let text = String(bytes: bytes, encoding: .utf8) {
        _ = try? fixedSplit.select(text)
    }
}

let fixedSplit: SplitFile = {
    let sides: [SplitSide] = [.train, .train, .val, .test]
    let rows = (0..<8).map { i in
        SplitRow(slide: SlideLabel(slideId: "s\(i)", patientId: "p\(i / 2)", label: i % 2 == 0 ? "x" : "y"),
                 group: "p\(i / 2)", side: sides[i % 4], fold: sides[i % 4] == .test ? nil : i % 3, minSubset: i % 4 == 0 ? 1 : nil)
    }
    return SplitFile(path: workDir + "/fixed.csv", rule: SplitRule(), tool: "fuzz", rows: rows)
}()

func fuzzLabels(_ bytes: UnsafeRawBufferPointer) {
    _ = try? LabelTable(path: scratchFile("labels.csv", bytes))
}
