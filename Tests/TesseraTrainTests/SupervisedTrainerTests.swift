import XCTest
import TesseraCore
@testable import TesseraTrain

final class SupervisedTrainerTests: XCTestCase {
    /// Two classes a network can tell apart (a bright top half vs a bright bottom half, plus noise):
    /// training from scratch must learn them, which a broken backward pass or optimizer would not.
    func testLearnsASeparableTask() throws {
        var g = SplitMix64(seed: 4)
        func batch(_ n: Int) -> ([Float], [Int]) {
            var x: [Float] = [], y: [Int] = []
            for i in 0..<n {
                let c = i % 2
                y.append(c)
                for _ in 0..<3 {
                    for r in 0..<12 {
                        for _ in 0..<12 {
                            let bright = (r < 6) == (c == 0)
                            x.append((bright ? 1 : -1) + Float(g.next() >> 40) / Float(1 << 24) - 0.5)
                        }
                    }
                }
            }
            return (x, y)
        }
        let t = try SupervisedTrainer(backbone: "convnet:4,8", classes: 2, totalSteps: 40, learningRate: 0.05)
        var first: Float = 0, last: Float = 0
        for s in 0..<40 {
            let (x, y) = batch(16)
            let l = t.trainStep(images: x, shape: [16, 3, 12, 12], targets: y)
            if s == 0 { first = l }
            last = l
        }
        XCTAssertLessThan(last, first * 0.5, "loss \(first) → \(last)")
        let (x, y) = batch(32)
        XCTAssertEqual(t.predict(images: x, shape: [32, 3, 12, 12]), y)
    }
}
