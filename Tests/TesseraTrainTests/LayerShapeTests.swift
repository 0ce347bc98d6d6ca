import XCTest
@testable import TesseraTrain

final class LayerShapeTests: XCTestCase {
    func testBackbonesMapImagesToFeatures() {
        for spec in [BackboneSpec.convnet4, .resnet8] {
            var ini = Initializer(seed: 1)
            let net = spec.build(initializer: &ini)
            let x = Tensor(shape: [3, 2, 28, 28], data: (0..<(3 * 2 * 28 * 28)).map { Float($0 % 17) / 17 })
            let y = net.forward(x, training: true)
            XCTAssertEqual(y.shape, [2, spec.featureDimension])
            XCTAssertTrue(y.data.allSatisfy(\.isFinite))
        }
    }
}
