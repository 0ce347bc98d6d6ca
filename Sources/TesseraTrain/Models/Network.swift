import TesseraCore

/// What a training run builds: a backbone (images → features) and a head (features → the loss's
/// space), named `backbone.*` and `head.*` in checkpoints. The backbone's features are what
/// evaluation (kNN, linear probe) uses.
public final class Network {
    public let backbone: Sequential
    public let head: Sequential
    public let root: Sequential

    public init(backbone: Sequential, head: Sequential) {
        self.backbone = backbone
        self.head = head
        root = Sequential([("backbone", backbone), ("head", head)])
    }

    public var namedParameters: [(name: String, parameter: Parameter)] { root.namedParameters }

    /// Images [N, 3, H, W] (NCHW, as the view loader produces) through backbone and head.
    public func forward(images: [Float], shape: [Int], training: Bool) -> Tensor {
        root.forward(Tensor.channelMajor(fromNCHW: images, shape: shape), training: training)
    }

    /// Backbone features [N, F] in evaluation mode (running batch-norm statistics).
    public func features(images: [Float], shape: [Int]) -> Tensor {
        backbone.forward(Tensor.channelMajor(fromNCHW: images, shape: shape), training: false)
    }

    /// Backpropagates ∂loss/∂head output through head and backbone of the last forward.
    public func backward(_ gradient: Tensor) { _ = root.backward(gradient) }

    public func zeroGrad() { root.zeroGrad() }

    /// Turns running-statistics updates of every batch norm on or off.
    public func setRunningStatisticsUpdates(_ on: Bool) {
        root.visit { if let bn = $0 as? BatchNorm { bn.updatesRunningStatistics = on } }
    }

    /// Copies all parameters and buffers from a network of the same architecture.
    public func copy(from other: Network) {
        for (a, b) in zip(namedParameters, other.namedParameters) {
            precondition(a.name == b.name && a.parameter.shape == b.parameter.shape)
            a.parameter.value = b.parameter.value
        }
    }

    /// Exponential moving average towards `other` (DINO's teacher update): θ ← m·θ + (1 − m)·θ_other
    /// for trainable parameters; buffers (batch-norm statistics) are the teacher's own.
    public func movingAverage(towards other: Network, momentum m: Float) {
        for (a, b) in zip(namedParameters, other.namedParameters) where a.parameter.trainable {
            a.parameter.value.withUnsafeMutableBufferPointer { t in
                b.parameter.value.withUnsafeBufferPointer { s in
                    for i in t.indices { t[i] = m * t[i] + (1 - m) * s[i] }
                }
            }
        }
    }

    /// Loads parameters by name (from a checkpoint or a PyTorch export); every name must be present
    /// with the right size.
    public func load(_ values: [String: [Float]], prefix: String = "", source: String) throws {
        for (name, p) in namedParameters {
            guard let v = values[prefix + name] else {
                throw TesseraError(.mismatch, path: source, "no tensor '\(prefix + name)' for this architecture",
                                   hint: "was the checkpoint written for a different backbone or head?")
            }
            guard v.count == p.value.count else {
                throw TesseraError(.mismatch, path: source, "tensor '\(prefix + name)' has \(v.count) values, the model needs \(p.value.count)",
                                   hint: "was the checkpoint written for a different backbone or head?")
            }
            p.value = v
        }
    }
}
