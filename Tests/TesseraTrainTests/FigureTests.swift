import XCTest
import TesseraCore
@testable import TesseraTrain

final class ClassificationReportTests: XCTestCase {
    func testHandComputedThreeClassExample() throws {
        let truth = [0, 0, 0, 1, 1, 2, 2, 2, 2, 2]
        let predicted = [0, 1, 0, 1, 1, 2, 0, 2, 2, 1]
        let r = try ClassificationReport(truth: truth, predicted: predicted, classNames: ["tumor", "stroma", "lymph"])
        XCTAssertEqual(r.confusion, [[2, 1, 0], [0, 2, 0], [1, 1, 3]])
        XCTAssertEqual(r.accuracy, 0.7, accuracy: 1e-12)
        XCTAssertEqual(r.recall.map { $0! }, [2.0 / 3, 1, 0.6])
        XCTAssertEqual(r.precision[0], 2.0 / 3, accuracy: 1e-12)
        XCTAssertEqual(r.precision[1], 0.5, accuracy: 1e-12)
        XCTAssertEqual(r.precision[2], 1, accuracy: 1e-12)
        XCTAssertEqual(r.balancedAccuracy, (2.0 / 3 + 1 + 0.6) / 3, accuracy: 1e-12)
        XCTAssertTrue(r.text.contains("accuracy 70.0%"), r.text)
        XCTAssertTrue(r.text.contains("balanced accuracy 75.6%"), r.text)
        // A class absent from the truth has no recall and stays out of the balanced mean.
        let withAbsent = try ClassificationReport(truth: truth, predicted: predicted, classNames: ["tumor", "stroma", "lymph", "debris"])
        XCTAssertNil(withAbsent.recall[3])
        XCTAssertEqual(withAbsent.balancedAccuracy, r.balancedAccuracy, accuracy: 1e-12)
        XCTAssertThrowsError(try ClassificationReport(truth: [0, 3], predicted: [0, 0], classNames: ["a", "b"]))
    }

    func testFigureSizeAndShading() throws {
        let truth = [0, 0, 1, 1, 1, 2]
        let r = try ClassificationReport(truth: truth, predicted: truth, classNames: ["tumor", "stroma", "lymph"])
        let image = r.figure(cell: 48)
        // Left: pad 8 + axis title 7 + pad 8 + "stroma" (35) + pad 8 = 66; grid 3 × 48; pad 8.
        // Top: 8 + 7 + 8 = 23; grid 144; below: 8 + 35 + 8.
        XCTAssertEqual(image.width, 66 + 144 + 8)
        XCTAssertEqual(image.height, 23 + 144 + 8 + 35 + 8)
        let layout = ClassificationReport.FigureLayout(cell: 48, classNames: r.classNames)
        func shade(_ row: Int, _ col: Int) -> Int {
            let p = image.pixel(x: layout.gridX + col * 48 + 5, y: layout.gridY + row * 48 + 5)
            return Int(p.r) + Int(p.g) + Int(p.b)
        }
        XCTAssertLessThan(shade(1, 1), shade(1, 0))
        XCTAssertEqual(image.pixel(x: layout.gridX + 5, y: layout.gridY + 5), ClassificationReport.figureInk)
        XCTAssertEqual(image.pixel(x: layout.gridX + 48 + 5, y: layout.gridY + 5), .white)
    }
}

final class LineChartTests: XCTestCase {
    func testChartSizeAndSeriesColours() {
        let loss = LineChart.Series(name: "train loss", points: (0..<50).map { i -> (x: Double, y: Double) in (Double(i), 5 * exp(-Double(i) / 10)) }, color: LineChart.palette[0])
        var valPoints: [(x: Double, y: Double)] = []
        for i in 0..<50 {
            let y: Double = i == 20 ? .nan : 4 * exp(-Double(i) / 15) + 0.5
            valPoints.append((Double(i), y))
        }
        let lr = LineChart.Series(name: "val loss", points: valPoints, color: LineChart.palette[1])
        let image = LineChart.render(series: [loss, lr], title: "Loss", xLabel: "epoch", yLabel: "loss")
        XCTAssertEqual(image.width, 800)
        XCTAssertEqual(image.height, 480)
        var counts: [RGBColor: Int] = [:]
        for y in 0..<image.height { for x in 0..<image.width { counts[image.pixel(x: x, y: y), default: 0] += 1 } }
        XCTAssertGreaterThan(counts[LineChart.palette[0], default: 0], 200)
        XCTAssertGreaterThan(counts[LineChart.palette[1], default: 0], 200)
        XCTAssertGreaterThan(counts[.black, default: 0], 500)  // axes and labels
        // Degenerate input still draws a frame.
        let empty = LineChart.render(series: [], title: "", xLabel: "", yLabel: "", width: 200, height: 150)
        XCTAssertEqual(empty.width, 200)
    }

    func testTicksCoverTheDataAtNiceSteps() {
        let (ticks, range) = LineChart.ticks([0.013, 0.87])
        XCTAssertEqual(range.lowerBound, 0)
        XCTAssertEqual(range.upperBound, 1, accuracy: 1e-12)
        XCTAssertEqual(ticks.count, 6)
        XCTAssertEqual(LineChart.format(ticks[3]), "0.6")
    }

    func testTextStaysInsideItsMeasuredBox() {
        var image = RGBImage(width: 100, height: 20, fill: 255)
        let text = "Acc 97.5% e-3"
        image.drawText(text, x: 2, y: 3, color: .black)
        var maxX = 0, minX = 100
        for y in 0..<20 { for x in 0..<100 where image.pixel(x: x, y: y) == .black { maxX = max(maxX, x); minX = min(minX, x); XCTAssertTrue((3..<10).contains(y)) } }
        XCTAssertEqual(minX, 2)
        XCTAssertLessThan(maxX, 2 + BitmapFont.width(of: text))
    }
}
