import Foundation
import TesseraCore

/// The supervised-from-scratch baseline: the same backbone as a pretraining run plus a linear
/// classifier, trained end to end with cross-entropy on the labelled images only (SGD with momentum,
/// warm-up + cosine learning rate). It answers "what would these labels give without pretraining?".
public final class SupervisedTrainer {
    public let network: Network
    public let optimizer: Optimizer
    public let schedule: CosineSchedule
    public let weightDecay: Float
    public private(set) var step = 0

    public init(backbone: String, classes: Int, totalSteps: Int, learningRate: Double = 0.1, weightDecay: Double = 5e-4, seed: UInt64 = 0) throws {
        HeapPolicy.retainFreedBuffers()
        let spec = try BackboneSpec(parsing: backbone)
        var ini = Initializer(seed: seed &+ 0x5e7f)
        network = Network(backbone: spec.build(initializer: &ini),
                          head: Sequential(indexed: [Linear(spec.featureDimension, classes, initializer: &ini)]))
        optimizer = Optimizer(.sgd, parameters: network.namedParameters)
        schedule = CosineSchedule(base: learningRate, final: 0, warmupSteps: max(1, totalSteps / 20), totalSteps: totalSteps)
        self.weightDecay = Float(weightDecay)
    }

    /// One step on NCHW images with their classes; returns the batch loss.
    @discardableResult
    public func trainStep(images: [Float], shape: [Int], targets: [Int]) -> Float {
        network.zeroGrad()
        let logits = network.forward(images: images, shape: shape, training: true)
        let r = CrossEntropyLoss.evaluate(logits, targets: targets)
        network.backward(r.gradient)
        optimizer.step(learningRate: Float(schedule.value(at: step)), weightDecay: weightDecay)
        step += 1
        return r.loss
    }

    /// Predicted classes (batch norm in evaluation mode).
    public func predict(images: [Float], shape: [Int]) -> [Int] {
        let logits = network.root.forward(Tensor.channelMajor(fromNCHW: images, shape: shape), training: false)
        let k = logits.shape[1]
        return (0..<logits.shape[0]).map { r in
            var best = 0
            for j in 1..<k where logits.data[r * k + j] > logits.data[r * k + best] { best = j }
            return best
        }
    }
}
