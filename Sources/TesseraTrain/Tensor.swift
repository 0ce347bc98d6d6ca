import Foundation
import TesseraCore

/// A dense float32 array with a shape, stored row-major in that shape. Convolutional layers use the
/// channel-major layout [C, N, H, W] (each channel's values for the whole batch are one contiguous
/// row, so a convolution is one matrix product and batch norm reads rows); matrices are [N, F].
public struct Tensor: Sendable, Equatable {
    public var shape: [Int]
    public var data: [Float]

    public init(shape: [Int], data: [Float]) {
        precondition(shape.reduce(1, *) == data.count, "tensor shape \(shape) does not match \(data.count) values")
        self.shape = shape
        self.data = data
    }

    public init(zeros shape: [Int]) {
        self.shape = shape
        data = [Float](repeating: 0, count: shape.reduce(1, *))
    }

    public var count: Int { data.count }

    /// NCHW (the loaders' and PyTorch's layout) → channel-major CNHW.
    public static func channelMajor(fromNCHW data: [Float], shape: [Int]) -> Tensor {
        precondition(shape.count == 4)
        let (n, c, hw) = (shape[0], shape[1], shape[2] * shape[3])
        var out = [Float](repeating: 0, count: data.count)
        data.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for i in 0..<n {
                    for ch in 0..<c {
                        let s = (i * c + ch) * hw, d = (ch * n + i) * hw
                        for k in 0..<hw { dst[d + k] = src[s + k] }
                    }
                }
            }
        }
        return Tensor(shape: [c, n, shape[2], shape[3]], data: out)
    }

    /// Rows [from, to) of a matrix [N, F].
    public func rows(_ from: Int, _ to: Int) -> Tensor {
        let f = count / shape[0]
        return Tensor(shape: [to - from] + shape.dropFirst(), data: Array(data[(from * f)..<(to * f)]))
    }
}

/// A trainable array (or a buffer such as batch norm's running mean) with its gradient. Layers name
/// them as PyTorch's `state_dict` of the same architecture does, so checkpoints load into PyTorch.
public final class Parameter: @unchecked Sendable {
    public enum Kind: Sendable {
        /// Weights of convolutions and linear layers: decayed and, with LARS, adapted.
        case weight
        /// Biases and normalization scales/offsets: neither decayed nor LARS-adapted (as in SimCLR, DINO).
        case bias
        /// Running statistics: saved and loaded, never optimized.
        case buffer
    }

    public let shape: [Int]
    public let kind: Kind
    public var value: [Float]
    public var grad: [Float]

    public init(shape: [Int], kind: Kind, value: [Float]) {
        precondition(shape.reduce(1, *) == value.count)
        self.shape = shape
        self.kind = kind
        self.value = value
        grad = kind == .buffer ? [] : [Float](repeating: 0, count: value.count)
    }

    public var trainable: Bool { kind != .buffer }

    public func zeroGrad() {
        if !grad.isEmpty { grad.withUnsafeMutableBufferPointer { $0.update(repeating: 0) } }
    }
}

/// Deterministic parameter initialisation from one seed, with the distributions PyTorch uses.
public struct Initializer {
    var rng: SplitMix64
    public init(seed: UInt64) { rng = SplitMix64(seed: seed) }

    mutating func unit() -> Double { Double(rng.next() >> 11) * 0x1p-53 }

    /// PyTorch's default for Conv2d and Linear: kaiming_uniform_(a = √5) → bound = 1/√fan_in.
    public mutating func uniform(count: Int, bound: Float) -> [Float] {
        (0..<count).map { _ in Float(unit() * 2 - 1) * bound }
    }

    /// Kaiming-normal (fan_out, ReLU) as torchvision's ResNet uses for convolutions.
    public mutating func kaimingNormal(count: Int, fanOut: Int) -> [Float] {
        let std = (2.0 / Double(fanOut)).squareRoot()
        var out: [Float] = []
        out.reserveCapacity(count)
        while out.count < count {
            // Box–Muller from two uniforms in (0, 1].
            let u1 = 1 - unit(), u2 = unit()
            let r = (-2 * log(u1)).squareRoot()
            out.append(Float(r * cos(2 * Double.pi * u2) * std))
            if out.count < count { out.append(Float(r * sin(2 * Double.pi * u2) * std)) }
        }
        return out
    }

    /// Truncated normal (σ, cut at ±2σ) as DINO's heads use (trunc_normal_ std 0.02).
    public mutating func truncatedNormal(count: Int, std: Double) -> [Float] {
        var out: [Float] = []
        out.reserveCapacity(count)
        while out.count < count {
            let u1 = 1 - unit(), u2 = unit()
            let z = (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
            if abs(z) <= 2 { out.append(Float(z * std)) }
        }
        return out
    }
}
