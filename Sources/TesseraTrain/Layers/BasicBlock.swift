/// The ResNet basic block (He et al. 2016): conv3×3(stride)–BN–ReLU–conv3×3–BN, plus the input
/// (or a conv1×1(stride)–BN projection when the shape changes), then ReLU. Parameter names follow
/// the common CIFAR ResNet: conv1, bn1, conv2, bn2, shortcut.0, shortcut.1.
public final class BasicBlock: Layer {
    let conv1: Conv2d, bn1: BatchNorm, relu1 = ReLU(), conv2: Conv2d, bn2: BatchNorm, relu2 = ReLU()
    let shortcut: Sequential?

    public init(_ inChannels: Int, _ outChannels: Int, stride: Int, initializer: inout Initializer) {
        conv1 = Conv2d(inChannels, outChannels, kernel: 3, stride: stride, padding: 1, initializer: &initializer)
        bn1 = BatchNorm(outChannels)
        conv2 = Conv2d(outChannels, outChannels, kernel: 3, stride: 1, padding: 1, initializer: &initializer)
        bn2 = BatchNorm(outChannels)
        if stride != 1 || inChannels != outChannels {
            shortcut = Sequential(indexed: [Conv2d(inChannels, outChannels, kernel: 1, stride: stride, initializer: &initializer),
                                            BatchNorm(outChannels)])
        } else {
            shortcut = nil
        }
    }

    var sublayers: [Layer] { [conv1, bn1, relu1, conv2, bn2, relu2] + (shortcut.map { [$0] } ?? []) }

    public var namedParameters: [(name: String, parameter: Parameter)] {
        var all: [(name: String, parameter: Parameter)] = []
        for (name, layer) in [("conv1", conv1 as Layer), ("bn1", bn1), ("conv2", conv2), ("bn2", bn2)] {
            all += layer.namedParameters.map { (name + "." + $0.name, $0.parameter) }
        }
        if let s = shortcut { all += s.namedParameters.map { ("shortcut." + $0.name, $0.parameter) } }
        return all
    }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        var h = relu1.forward(bn1.forward(conv1.forward(x, training: training), training: training), training: training)
        h = bn2.forward(conv2.forward(h, training: training), training: training)
        let skip = shortcut?.forward(x, training: training) ?? x
        h.data.withUnsafeMutableBufferPointer { p in
            skip.data.withUnsafeBufferPointer { s in Kernels.add(p.baseAddress!, s.baseAddress!, p.count) }
        }
        return relu2.forward(h, training: training)
    }

    public func backward(_ dy: Tensor) -> Tensor {
        let g = relu2.backward(dy)
        var dx = conv1.backward(bn1.backward(relu1.backward(conv2.backward(bn2.backward(g)))))
        let ds = shortcut?.backward(g) ?? g
        dx.data.withUnsafeMutableBufferPointer { p in
            ds.data.withUnsafeBufferPointer { s in Kernels.add(p.baseAddress!, s.baseAddress!, p.count) }
        }
        return dx
    }
}
