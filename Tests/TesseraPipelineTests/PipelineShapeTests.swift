import Foundation
@testable import TesseraPipeline
import TesseraTestSupport
import XCTest

/// The text-level nesting bound that guards Yams' recursive parser: loose enough for every real
/// pipeline, tight where nesting runs away.
final class PipelineShapeTests: XCTestCase {
    func testRealPipelinesAreFarBelowTheNestingLimit() throws {
        let dir = Fixtures.root + "/pipelines"
        let files = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".yaml") }
        XCTAssertGreaterThan(files.count, 4)
        for f in files {
            let text = try String(contentsOfFile: dir + "/" + f, encoding: .utf8)
            let bound = PipelineFile.nestingBound(text)
            XCTAssertLessThan(bound, PipelineFile.maxNesting / 5, f)
            XCTAssertNoThrow(try PipelineFile.load(path: dir + "/" + f), f)
        }
    }

    func testNestingBoundCannotBeTalkedDown() {
        XCTAssertEqual(PipelineFile.nestingBound("a: 1\n"), 0)
        XCTAssertEqual(PipelineFile.nestingBound("a:\n  b: [1, {c: 2}]\n"), 2 + 2)
        XCTAssertEqual(PipelineFile.nestingBound("- - - x\n"), 6)
        XCTAssertEqual(PipelineFile.nestingBound("? a\n: - - - - x\n"), 10)   // `:` opens compact nesting too
        // A `#` or closing brackets inside a string neither hide nor cancel real opening brackets.
        XCTAssertEqual(PipelineFile.nestingBound("a: [\" #\", " + String(repeating: "[", count: 300) + "\n"), 301)
        XCTAssertEqual(PipelineFile.nestingBound(String(repeating: "[", count: 150) + "\"" + String(repeating: "]", count: 150) + "\"" + String(repeating: "[", count: 150)), 300)
        XCTAssertEqual(PipelineFile.nestingBound(String(repeating: "[", count: 500)), 500)
    }
}
