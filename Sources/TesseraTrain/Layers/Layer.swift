/// A differentiable module. `forward` keeps what `backward` needs (so calls alternate: one forward,
/// then at most one backward of the same batch); `backward` takes ∂loss/∂output, adds the parameter
/// gradients into `Parameter.grad` and returns ∂loss/∂input.
public protocol Layer: AnyObject {
    func forward(_ x: Tensor, training: Bool) -> Tensor
    func backward(_ dy: Tensor) -> Tensor
    /// Parameters and buffers with their names relative to this layer (PyTorch `state_dict` keys).
    var namedParameters: [(name: String, parameter: Parameter)] { get }
}

extension Layer {
    public var namedParameters: [(name: String, parameter: Parameter)] { [] }
    /// Calls `body` on this layer and every layer inside it, depth first.
    public func visit(_ body: (Layer) -> Void) {
        body(self)
        if let s = self as? Sequential { for c in s.children { c.layer.visit(body) } }
        if let b = self as? BasicBlock { for l in b.sublayers { l.visit(body) } }
    }
    /// The trainable parameters, in state-dict order.
    public var trainableParameters: [Parameter] { namedParameters.map(\.parameter).filter(\.trainable) }
    public func zeroGrad() { for p in namedParameters { p.parameter.zeroGrad() } }
}

/// Layers applied in order; parameter names are prefixed with each child's name, as PyTorch's
/// `nn.Sequential` (index names) or a module's attribute names do.
public final class Sequential: Layer {
    public private(set) var children: [(name: String, layer: Layer)]

    public init(_ children: [(String, Layer)]) {
        self.children = children.map { (name: $0.0, layer: $0.1) }
    }

    /// Children named by their index, as `nn.Sequential(a, b, c)`.
    public convenience init(indexed layers: [Layer]) {
        self.init(layers.enumerated().map { (String($0.offset), $0.element) })
    }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        var h = x
        for c in children { h = c.layer.forward(h, training: training) }
        return h
    }

    public func backward(_ dy: Tensor) -> Tensor {
        var g = dy
        for c in children.reversed() { g = c.layer.backward(g) }
        return g
    }

    public var namedParameters: [(name: String, parameter: Parameter)] {
        children.flatMap { c in c.layer.namedParameters.map { (name: c.name + "." + $0.name, parameter: $0.parameter) } }
    }
}
