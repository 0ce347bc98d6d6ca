import Foundation
import TesseraCore
import TesseraSlide
@testable import TesseraAugment
@testable import TesseraPipeline
import TesseraTestSupport
import XCTest

/// The recipes in pipelines/ and the determinism of view generation.
final class RecipeTests: XCTestCase {
    static func recipe(_ name: String) throws -> ViewRecipe {
        try XCTUnwrap(try PipelineFile.load(path: Fixtures.root + "/pipelines/\(name).yaml").views)
    }

    func testRecipesLoadWithThePublishedLayouts() throws {
        let simclr = try Self.recipe("simclr"), dino = try Self.recipe("dino"), histo = try Self.recipe("histo")
        XCTAssertEqual(simclr.viewCount, 2)
        XCTAssertEqual(simclr.crops[0].scale, [0.08, 1])
        XCTAssertEqual(simclr.crops[0].jitter?.hue, 0.2)
        XCTAssertEqual(dino.crops.map(\.count), [2, 8])
        XCTAssertEqual(dino.crops.map(\.size), [224, 96])
        XCTAssertEqual(dino.crops[0].blur?.p[0], 1.0)
        XCTAssertEqual(dino.crops[0].blur?.p[1], 0.1)
        XCTAssertEqual(dino.crops[0].solarize[1], 0.2)
        XCTAssertEqual(dino.crops[0].solarize[0], 0)
        XCTAssertEqual(histo.crops[1].rot90, 0.75)
        XCTAssertEqual(histo.stainJitter?.space, .hed)
        for r in [simclr, dino, histo] { XCTAssertNoThrow(try r.validate()) }
    }

    func testBadRecipesAreRejectedWithTheSetting() throws {
        let dir = Fixtures.tempDir(self)
        try "views:\n  crops:\n    - {count: 2, size: 224, scal: [0.1, 1]}\n".write(toFile: dir + "/a.yaml", atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try PipelineFile.load(path: dir + "/a.yaml")) { XCTAssertTrue("\($0)".contains("scal"), "\($0)") }
        var r = try Self.recipe("dino")
        r.crops[1].scale = [0.5, 0.2]
        XCTAssertThrowsError(try r.validate()) { XCTAssertTrue("\($0)".contains("local") && "\($0)".contains("scale"), "\($0)") }
    }

    func testViewsAreAFunctionOfSeedEpochSampleAndView() throws {
        let tile = try ImageDecoder.readRGB(path: Fixtures.root + "/data/stain/input_TUM-AACHEHDV.png")
        let gen = try ViewGenerator(recipe: try Self.recipe("histo"), seed: 42)
        let a = gen.views(of: tile, sample: 7, epoch: 3)
        XCTAssertEqual(a.count, 10)
        XCTAssertEqual(a.map(\.width), [224, 224] + Array(repeating: 96, count: 8))
        XCTAssertEqual(gen.views(of: tile, sample: 7, epoch: 3), a, "regenerated alone: identical")
        // Generated on other threads, in another order: identical.
        let results = UnsafeMutableBufferPointer<[RGBImage]>.allocate(capacity: 4)
        defer { _ = results.deinitialize(); results.deallocate() }
        let box = UncheckedBox(results)
        DispatchQueue.concurrentPerform(iterations: 4) { i in
            box.value.baseAddress!.advanced(by: i).initialize(to: gen.views(of: tile, sample: 7 + (i % 2), epoch: 3))
        }
        XCTAssertEqual(results[0], a)
        XCTAssertEqual(results[2], a)
        XCTAssertNotEqual(results[1], a)
        XCTAssertNotEqual(gen.views(of: tile, sample: 7, epoch: 4), a, "another epoch, other views")
        XCTAssertNotEqual(try ViewGenerator(recipe: try Self.recipe("histo"), seed: 43).views(of: tile, sample: 7, epoch: 3), a)
        // Views differ from one another.
        XCTAssertNotEqual(a[0], a[1])
        // Tensors are normalized views: (v/255 − mean)/std, CHW.
        let t = gen.tensors(of: tile, sample: 7, epoch: 3)
        XCTAssertEqual(t[0].count, 3 * 224 * 224)
        let v0 = a[0]
        XCTAssertEqual(t[0][0], (Float(v0.pixels[0]) / 255 - 0.485) / 0.229, accuracy: 1e-5)
        XCTAssertEqual(t[0][224 * 224 + 5], (Float(v0.pixels[5 * 3 + 1]) / 255 - 0.456) / 0.224, accuracy: 1e-5)
    }

    func testFullScaleCropWithoutJitterIsTheResizedTile() throws {
        let tile = try ImageDecoder.readRGB(path: Fixtures.root + "/data/stain/input_TUM-AACHEHDV.png")
        var r = ViewRecipe()
        var g = CropGroup()
        g.count = 1; g.size = 112; g.scale = [1, 1]; g.ratio = [1, 1]; g.hflip = 0
        r.crops = [g]
        let v = try ViewGenerator(recipe: r, seed: 0).views(of: tile, sample: 0, epoch: 0)[0]
        XCTAssertEqual(v, Resample.crop(tile, x: 0, y: 0, width: 224, height: 224, outWidth: 112, outHeight: 112, interpolation: .bicubic))
    }
}

/// Hands a pointer to concurrent test closures.
final class UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ v: T) { value = v }
}
