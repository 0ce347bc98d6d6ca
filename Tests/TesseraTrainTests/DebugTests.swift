import XCTest
@testable import TesseraTrain

extension GradientCheckTests {
    func testCompositions() {
        var ini = Initializer(seed: 3)
        check("conv-bn", Sequential(indexed: [Conv2d(3, 4, kernel: 3, padding: 1, initializer: &ini), BatchNorm(4)]), input: [3, 2, 5, 5])
        check("conv-relu", Sequential(indexed: [Conv2d(3, 4, kernel: 3, padding: 1, initializer: &ini), ReLU()]), input: [3, 2, 5, 5])
        check("bn-relu", Sequential(indexed: [BatchNorm(4), ReLU()]), input: [4, 2, 5, 5])
        check("lin-lin", Sequential(indexed: [Linear(5, 4, initializer: &ini), Linear(4, 3, initializer: &ini)]), input: [3, 5])
        check("lin-gelu-lin", Sequential(indexed: [Linear(5, 4, initializer: &ini), GELU(), Linear(4, 3, initializer: &ini)]), input: [3, 5])
        check("lin-norm-wn", Sequential(indexed: [Linear(5, 4, initializer: &ini), L2Normalize(), WeightNormLinear(4, 6, initializer: &ini)]), input: [3, 5])
        check("pool-lin", Sequential(indexed: [GlobalAvgPool(), Linear(3, 4, initializer: &ini)]), input: [3, 2, 4, 4])
        check("conv-pool", Sequential(indexed: [Conv2d(3, 4, kernel: 3, padding: 1, initializer: &ini), GlobalAvgPool()]), input: [3, 2, 5, 5])
        check("conv-maxpool", Sequential(indexed: [Conv2d(3, 4, kernel: 3, padding: 1, initializer: &ini), MaxPool2d(2)]), input: [3, 2, 6, 6])
        let conv = BackboneSpec(kind: .convnet, widths: [4, 6, 8]).build(initializer: &ini)
        check("convnet", conv, input: [3, 4, 12, 12])
        check("simclr head bn", Heads.simclr(input: 8, hidden: 8, output: 4, batchNorm: true, initializer: &ini), input: [4, 8])
        check("simclr head bn b16", Heads.simclr(input: 8, hidden: 8, output: 4, batchNorm: true, initializer: &ini), input: [16, 8])
        check("simclr head", Heads.simclr(input: 8, hidden: 8, output: 4, batchNorm: false, initializer: &ini), input: [4, 8])
        let res = BackboneSpec(kind: .resnet, widths: [4, 6], blocks: [1, 1]).build(initializer: &ini)
        check("resnet", res, input: [3, 3, 10, 10])
        check("dino head", Heads.dino(input: 6, hidden: 10, bottleneck: 5, prototypes: 12, initializer: &ini), input: [3, 6])
    }
}
