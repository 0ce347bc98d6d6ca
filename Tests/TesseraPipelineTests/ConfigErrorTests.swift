import Foundation
import TesseraTestSupport
import XCTest

/// Bad configuration and metadata through the real binary, table-driven: each is a clear error that
/// names the setting or file, exits non-zero without crashing, and starts no work (no output).
final class ConfigErrorTests: XCTestCase {
    static let binary = Fixtures.binary

    struct Case {
        var name: String
        var args: [String]
        var expect: [String]
    }

    func testBadConfigsAreClearErrorsBeforeAnyWork() throws {
        guard FileManager.default.isExecutableFile(atPath: Self.binary) else {
            throw XCTSkip("build the tool first (swift build): \(Self.binary) missing")
        }
        let dir = Fixtures.tempDir(self)
        func file(_ name: String, _ text: String) -> String {
            let p = dir + "/" + name
            try! text.write(toFile: p, atomically: true, encoding: .utf8)
            return p
        }
        // A tiny real dataset for views and train.
        let ds = dir + "/ds"
        let made = try Fixtures.run(Self.binary, ["tile", Fixtures.root + "/data/pbc-blood-cells/basophil", "-o", ds, "--tissue", "none",
                                                  "--min-tissue", "0", "--tile-size", "64", "--quiet", "--no-thumbnails"])
        XCTAssertEqual(made.status, 0, made.err)
        let img = Fixtures.fixture("BloodImage_00000.jpg")
        let out = dir + "/out"
        let stain = """
        {"format": 1, "method": "macenko", "max_concentrations": [MAXC],
         "stain_vectors": [[0.667, 0.725, 0.170], [0.357, 0.917, 0.179]]}
        """
        let views = """
        views:
          crops:
            - {name: view, count: 2, size: 24, scale: [0.3, 1.0], hflip: HFLIP, grayscale: 0.2}
          normalize: {mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225]}
        """
        func train(_ extra: String, lr: String = "0.1") -> String {
            views.replacingOccurrences(of: "HFLIP", with: "0.5") + """

            train:
              dataset: \(ds)
              output: \(out)
              method: simclr
              backbone: "convnet:8,16"
              epochs: 1
              batch_size: 4
              lr: \(lr)
              projection_hidden: 16
              projection_dim: 8
            \(extra)
            """
        }
        let cases: [Case] = [
            Case(name: "malformed YAML", args: ["tile", img, "-o", out, "--config", file("bad.yaml", "tile: [unclosed\n  x: {\n")], expect: ["bad.yaml"]),
            // Found by scripts/fuzz: a mapping used as a key trapped inside Yams' untyped loader.
            Case(name: "mapping as a key", args: ["run", file("key.yaml", "tile:\n  output: x\n? stain: a.json\n")],
                 expect: ["key.yaml", "mapping key must be a plain name", "line 3"]),
            Case(name: "billion laughs", args: ["run", file("laughs.yaml", "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
                     + (1...8).map { "l\($0): &l\($0) [" + Array(repeating: $0 == 1 ? "*a" : "*l\($0 - 1)", count: 10).joined(separator: ", ") + "]" }.joined(separator: "\n") + "\n")],
                 expect: ["laughs.yaml", "expands to more than"]),
            // Found by scripts/fuzz: 1,800 nested `{` overflowed the stack inside Yams.
            Case(name: "deep nesting", args: ["run", file("deep.yaml", "views:\n  crops: " + String(repeating: "{", count: 100_000) + "\n")],
                 expect: ["deep.yaml", "nested too deeply"]),
            Case(name: "brackets hidden behind a quoted #", args: ["run", file("hide.yaml", "a: [\" #\", " + String(repeating: "[", count: 5_000) + "\n")],
                 expect: ["hide.yaml", "nested too deeply"]),
            Case(name: "deep indentation", args: ["run", file("indent.yaml", (0..<1_100).map { String(repeating: " ", count: $0) + "k\($0):" }.joined(separator: "\n") + " 1\n")],
                 expect: ["indent.yaml", "nested too deeply"]),
            Case(name: "unknown key", args: ["tile", img, "-o", out, "--config", file("typo.yaml", "tile:\n  tile_sise: 256\n")], expect: ["tile_sise"]),
            Case(name: "wrong type", args: ["tile", img, "-o", out, "--config", file("type.yaml", "tile:\n  tile_size: big\n")], expect: ["tile_size"]),
            Case(name: "negative tile size", args: ["tile", img, "-o", out, "--tile-size=-256"], expect: ["tile-size"]),
            Case(name: "stride 0", args: ["tile", img, "-o", out, "--stride", "0"], expect: ["stride"]),
            Case(name: "min-tissue > 1", args: ["tile", img, "-o", out, "--min-tissue", "1.5"], expect: ["min-tissue"]),
            Case(name: "pixel limit 0", args: ["tile", img, "-o", out, "--max-pixels", "0"], expect: ["max-pixels"]),
            Case(name: "stain JSON with NaN", args: ["tile", img, "-o", out, "--normalize", "macenko",
                                                     "--stain", file("nan.json", stain.replacingOccurrences(of: "MAXC", with: "NaN, 1.2"))], expect: ["nan.json"]),
            Case(name: "stain JSON with infinity", args: ["tile", img, "-o", out, "--normalize", "macenko",
                                                          "--stain", file("inf.json", stain.replacingOccurrences(of: "MAXC", with: "1e999, 1.2"))], expect: ["inf.json"]),
            Case(name: "stain JSON negative maximum", args: ["tile", img, "-o", out, "--normalize", "macenko",
                                                             "--stain", file("neg.json", stain.replacingOccurrences(of: "MAXC", with: "-1, 1.2"))], expect: ["max_concentrations"]),
            Case(name: "labels with a duplicate id", args: ["tile", img, "-o", out, "--labels",
                                                            file("dup.csv", "slide_id,label\nBloodImage_00000,a\nBloodImage_00000,b\n")], expect: ["BloodImage_00000", "lines 2 and 3"]),
            Case(name: "labels with a row naming no slide", args: ["tile", img, "-o", out, "--labels",
                                                                   file("missing.csv", "slide_id,label\nBloodImage_00000,a\n,b\n")], expect: ["line 3"]),
            Case(name: "a folder with no slides", args: ["tile", { try! FileManager.default.createDirectory(atPath: dir + "/empty", withIntermediateDirectories: true); return dir + "/empty" }(),
                                                         "-o", out], expect: ["no slides or images found"]),
            Case(name: "views probability > 1", args: ["views", ds, "--recipe", file("p.yaml", views.replacingOccurrences(of: "HFLIP", with: "1.5")),
                                                       "--epochs", "1", "--out", out], expect: ["hflip"]),
            Case(name: "views epochs 0", args: ["views", ds, "--recipe", file("ok.yaml", views.replacingOccurrences(of: "HFLIP", with: "0.5")),
                                                "--epochs", "0", "--out", out], expect: ["epochs"]),
            // Materializing with no workers used to wait forever; evaluation took 0 as 1.
            Case(name: "views workers 0", args: ["views", ds, "--recipe", file("ok.yaml", views.replacingOccurrences(of: "HFLIP", with: "0.5")),
                                                 "--epochs", "1", "--out", out, "--workers", "0"], expect: ["workers", "got 0"]),
            Case(name: "eval workers 0", args: ["eval", "--checkpoint", dir + "/missing.safetensors", "--dataset", ds, "--split", dir + "/missing.csv",
                                                "--workers", "0"], expect: ["workers", "got 0"]),
            Case(name: "train lr 0", args: ["train", file("lr0.yaml", train("", lr: "0"))], expect: ["lr"]),
            Case(name: "train lr negative", args: ["train", file("lrneg.yaml", train("", lr: "-0.1"))], expect: ["lr"]),
            Case(name: "train batch 0", args: ["train", file("b0.yaml", train("").replacingOccurrences(of: "batch_size: 4", with: "batch_size: 0"))], expect: ["batch"]),
            Case(name: "train unknown key", args: ["train", file("tk.yaml", train("  learning_rate: 0.1"))], expect: ["learning_rate"]),
            Case(name: "train malformed YAML", args: ["train", file("tm.yaml", train("  - [oops"))], expect: ["tm.yaml"]),
        ]
        for c in cases {
            let r = try Fixtures.run(Self.binary, c.args)
            XCTAssertTrue(r.status != 0 && r.status < 128, "\(c.name): exit \(r.status)")
            XCTAssertTrue(r.err.contains("error:"), "\(c.name): \(r.err)")
            for phrase in c.expect { XCTAssertTrue(r.err.contains(phrase), "\(c.name): expected '\(phrase)' in: \(r.err)") }
            XCTAssertFalse(FileManager.default.fileExists(atPath: out), "\(c.name): work started (\(out) exists)")
            try? FileManager.default.removeItem(atPath: out)
        }
    }
}
