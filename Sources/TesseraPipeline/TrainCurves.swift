import Foundation
import TesseraCore
import TesseraSlide
import TesseraTrain

/// The pictures of a training run: `loss.png` (per-step loss and its 50-step moving average) and
/// `lr.png` (learning rate and weight decay), drawn from `train-log.csv`'s rows.
enum TrainCurves {
    static func write(log: [String], to dir: String) throws {
        var loss: [(x: Double, y: Double)] = [], lr: [(x: Double, y: Double)] = [], wd: [(x: Double, y: Double)] = []
        for line in log.dropFirst() {
            let f = line.split(separator: ",").map { Double($0) ?? .nan }
            guard f.count >= 5 else { continue }
            loss.append((f[0], f[2]))
            lr.append((f[0], f[3]))
            wd.append((f[0], f[4]))
        }
        guard !loss.isEmpty else { return }
        var smooth: [(x: Double, y: Double)] = []
        var window: [Double] = []
        for p in loss {
            window.append(p.y)
            if window.count > 50 { window.removeFirst() }
            smooth.append((p.x, window.reduce(0, +) / Double(window.count)))
        }
        let lossChart = LineChart.render(series: [
            .init(name: "loss", points: loss, color: RGBColor(170, 200, 230)),
            .init(name: "moving average (50 steps)", points: smooth, color: LineChart.palette[0]),
        ], title: "Training loss", xLabel: "step", yLabel: "loss")
        try PNGWriter.write(lossChart, to: dir + "/loss.png")
        let lrChart = LineChart.render(series: [
            .init(name: "learning rate", points: lr, color: LineChart.palette[1]),
            .init(name: "weight decay", points: wd, color: LineChart.palette[2]),
        ], title: "Schedules", xLabel: "step", yLabel: "value")
        try PNGWriter.write(lrChart, to: dir + "/lr.png")
    }
}
