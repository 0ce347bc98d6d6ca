import Foundation
import TesseraCore
@testable import TesseraSlide
import TesseraTestSupport
import XCTest

final class ResolutionTests: XCTestCase {
    func testLookupOrderAndUnits() {
        XCTAssertEqual(Resolution.find(fields: ["openslide.mpp-x": "0.2527", "aperio.MPP": "0.3"], xresPerMM: nil).source, .openslide)
        XCTAssertEqual(Resolution.find(fields: ["aperio.MPP": "0.4990"], xresPerMM: nil).mpp, 0.499)
        let philips = Resolution.find(fields: ["philips.DICOM_PIXEL_SPACING": "\"0.000226891\" \"0.000226907\""], xresPerMM: nil)
        XCTAssertEqual(philips.source, .philips)
        XCTAssertEqual(philips.mpp ?? 0, 0.226891, accuracy: 1e-9)
        // 4000 px/mm = 0.25 µm/px; 2.83 px/mm is 72 dpi, a placeholder.
        XCTAssertEqual(Resolution.find(fields: [:], xresPerMM: 4000).mpp ?? 0, 0.25, accuracy: 1e-12)
        XCTAssertEqual(Resolution.find(fields: [:], xresPerMM: 2.83465).source, .none)
        let ome = "<?xml?><OME><Image><Pixels PhysicalSizeX=\"325\" PhysicalSizeXUnit=\"nm\" SizeX=\"10\"/></Image></OME>"
        XCTAssertEqual(Resolution.find(fields: ["image-description": ome], xresPerMM: nil).mpp ?? 0, 0.325, accuracy: 1e-12)
        let power = Resolution.find(fields: ["openslide.objective-power": "40"], xresPerMM: nil)
        XCTAssertEqual(power.source, .objectivePower)
        XCTAssertTrue(power.source.isEstimate)
        XCTAssertEqual(power.mpp ?? 0, 0.25, accuracy: 1e-12)
    }
}

final class TissueTests: XCTestCase {
    func testOtsuSplitsTwoModes() {
        let values = [UInt8](repeating: 20, count: 500) + [UInt8](repeating: 200, count: 500)
        let t = TissueMask.otsu(values)
        XCTAssertGreaterThanOrEqual(t, 20)
        XCTAssertLessThan(t, 200)
    }

    func testRealSlideMaskFindsTissueAndRemovesSpecks() throws {
        let slide = try Slide.open(path: Fixtures.svs)
        var options = PreparedSlide.Options()
        options.maskSize = 512
        let p = try PreparedSlide.prepare(slide, plan: try TilePlan.make(for: slide, target: .native), options: options)
        XCTAssertEqual(max(p.thumbnail.width, p.thumbnail.height), 512)
        // The sample is a strip of skin on glass: about a third tissue (QC thumbnail checked by eye).
        XCTAssertGreaterThan(p.mask.tissueFraction, 0.2)
        XCTAssertLessThan(p.mask.tissueFraction, 0.5)
        // The top-left corner is glass, the ground-truth tile at (1200,1200) is tissue.
        XCTAssertLessThan(p.mask.fraction(x: 0, y: 0, width: 256, height: 256), 0.05)
        XCTAssertGreaterThan(p.mask.fraction(x: 1200, y: 1200, width: 240, height: 240), 0.5)
        XCTAssertFalse(p.positions.isEmpty)
        XCTAssertTrue(p.positions.allSatisfy { $0.tissue >= 0.5 })
    }

    func testSpeckRemovalAndHoleFilling() {
        // 40×40 glass with a 20×20 tissue block holding a 1-pixel hole, and a 1-pixel speck.
        var mask = [UInt8](repeating: 0, count: 1600)
        for y in 10..<30 { for x in 10..<30 { mask[y * 40 + x] = 1 } }
        mask[20 * 40 + 20] = 0
        mask[2 * 40 + 2] = 1
        TissueMask.removeSmallRegions(&mask, width: 40, height: 40, value: 1, minArea: 4)
        TissueMask.removeSmallRegions(&mask, width: 40, height: 40, value: 0, minArea: 4)
        XCTAssertEqual(mask[2 * 40 + 2], 0)
        XCTAssertEqual(mask[20 * 40 + 20], 1)
        XCTAssertEqual(mask.reduce(0) { $0 + Int($1) }, 400)
    }

    func testFractionWeighsPartialPixels() {
        // 4×4 mask of a 400×400 slide: left half tissue.
        var m = [UInt8](repeating: 0, count: 16)
        for y in 0..<4 { m[y * 4] = 1; m[y * 4 + 1] = 1 }
        let mask = TissueMask(mask: m, width: 4, height: 4, level0Width: 400, level0Height: 400, threshold: nil)
        XCTAssertEqual(mask.fraction(x: 0, y: 0, width: 200, height: 400), 1, accuracy: 1e-12)
        XCTAssertEqual(mask.fraction(x: 150, y: 0, width: 100, height: 100), 0.5, accuracy: 1e-12)
        XCTAssertEqual(mask.fraction(x: 0, y: 0, width: 400, height: 400), 0.5, accuracy: 1e-12)
    }

    func testGridCoordinatesAreLevelZero() {
        let grid = TileGrid(size: 256, stride: 128, width: 1000, height: 600, level0PerPixel: 2)
        XCTAssertEqual(grid.columns, 6)  // 0,128,...,640 (640+256 ≤ 1000)
        XCTAssertEqual(grid.rows, 3)
        let pos = grid.positions(mask: nil, minTissue: 0)
        XCTAssertEqual(pos.count, 18)
        XCTAssertEqual(pos[1].level0X, 256)
        XCTAssertEqual(pos[6].level0Y, 256)
    }
}
