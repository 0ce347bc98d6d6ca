import TesseraCore

/// Which backbone to build: a plain ConvNet (conv–BN–ReLU stages with 2×2 max-pooling between) or a
/// CIFAR-style ResNet of basic blocks. Both end in global average pooling, so they take any input
/// size from 28 px up.
public struct BackboneSpec: Sendable, Equatable, Codable {
    public enum Kind: String, Sendable, Codable { case convnet, resnet }
    public var kind: Kind
    /// Channels per stage (ConvNet: per conv block; ResNet: per group of blocks).
    public var widths: [Int]
    /// ResNet only: basic blocks per stage (the first block of stage i > 0 has stride 2).
    public var blocks: [Int]

    public init(kind: Kind, widths: [Int], blocks: [Int] = []) {
        self.kind = kind
        self.widths = widths
        self.blocks = blocks
    }

    /// ConvNet-4: four 3×3 conv–BN–ReLU blocks 3→32→64→128→256, 2×2 max-pool after the first three.
    public static let convnet4 = BackboneSpec(kind: .convnet, widths: [32, 64, 128, 256])
    /// ResNet-8 (CIFAR style, width 32): stem conv, three basic blocks at strides 1/2/2.
    public static let resnet8 = BackboneSpec(kind: .resnet, widths: [32, 64, 128], blocks: [1, 1, 1])

    /// Parses "convnet4", "resnet8", "convnet:32,64,128" or "resnet:32,64,128:2,2,2".
    public init(parsing text: String) throws {
        switch text {
        case "convnet4": self = .convnet4; return
        case "resnet8": self = .resnet8; return
        case "resnet14": self = BackboneSpec(kind: .resnet, widths: [32, 64, 128], blocks: [2, 2, 2]); return
        default: break
        }
        let parts = text.split(separator: ":").map(String.init)
        func ints(_ s: String) throws -> [Int] {
            let v = s.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard !v.isEmpty, v.allSatisfy({ $0 > 0 && $0 <= 4096 }) else {
                throw TesseraError(.invalidConfig, "backbone '\(text)': '\(s)' is not a list of positive sizes")
            }
            return v
        }
        switch parts.first {
        case "convnet" where parts.count == 2: self.init(kind: .convnet, widths: try ints(parts[1]))
        case "resnet" where parts.count == 3:
            let w = try ints(parts[1]), b = try ints(parts[2])
            guard w.count == b.count else { throw TesseraError(.invalidConfig, "backbone '\(text)': widths and blocks differ in length") }
            self.init(kind: .resnet, widths: w, blocks: b)
        default:
            throw TesseraError(.invalidConfig, "unknown backbone '\(text)': use convnet4, resnet8, resnet14, convnet:W1,W2,… or resnet:W1,…:B1,…")
        }
    }

    public var featureDimension: Int { widths.last ?? 0 }

    /// Builds the backbone: NCHW images in (converted to channel-major by `Network`), [N, features] out.
    public func build(initializer: inout Initializer) -> Sequential {
        var layers: [(String, Layer)] = []
        switch kind {
        case .convnet:
            var c = 3
            for (i, w) in widths.enumerated() {
                let conv = Conv2d(c, w, kernel: 3, padding: 1, initializer: &initializer)
                if i == 0 { conv.computesInputGradient = false }
                var block: [Layer] = [conv, BatchNorm(w), ReLU()]
                if i < widths.count - 1 { block.append(MaxPool2d(2)) }
                layers.append(("features.\(i)", Sequential(indexed: block)))
                c = w
            }
        case .resnet:
            let stem = Conv2d(3, widths[0], kernel: 3, padding: 1, initializer: &initializer)
            stem.computesInputGradient = false
            layers += [("conv1", stem), ("bn1", BatchNorm(widths[0])), ("relu", ReLU())]
            var c = widths[0]
            for (s, w) in widths.enumerated() {
                var stage: [Layer] = []
                for b in 0..<blocks[s] {
                    stage.append(BasicBlock(c, w, stride: (s > 0 && b == 0) ? 2 : 1, initializer: &initializer))
                    c = w
                }
                layers.append(("layer\(s + 1)", Sequential(indexed: stage)))
            }
        }
        layers.append(("pool", GlobalAvgPool()))
        return Sequential(layers)
    }
}

/// Projection heads: SimCLR's MLP and DINO's head.
public enum Heads {
    /// SimCLR (Chen et al. 2020): Linear–ReLU–Linear (optionally with batch norm after the hidden layer, as SimCLR v2).
    public static func simclr(input: Int, hidden: Int, output: Int, batchNorm: Bool = false, initializer: inout Initializer) -> Sequential {
        var layers: [Layer] = [Linear(input, hidden, bias: !batchNorm, initializer: &initializer)]
        if batchNorm { layers.append(BatchNorm(hidden)) }
        layers += [ReLU(), Linear(hidden, output, initializer: &initializer)]
        return Sequential(indexed: layers)
    }

    /// DINO (Caron et al. 2021, DINOHead): 3-layer MLP with GELU to a bottleneck, L2 normalization,
    /// then a weight-normalized bias-free layer to `prototypes` outputs (gain fixed at 1).
    public static func dino(input: Int, hidden: Int, bottleneck: Int, prototypes: Int, initializer: inout Initializer) -> Sequential {
        func linear(_ i: Int, _ o: Int) -> Linear {
            let l = Linear(i, o, initializer: &initializer)
            // DINOHead: trunc_normal_(std=0.02) weights, zero biases.
            l.weight.value = initializer.truncatedNormal(count: i * o, std: 0.02)
            l.bias?.value = [Float](repeating: 0, count: o)
            return l
        }
        let mlp = Sequential(indexed: [linear(input, hidden), GELU(), linear(hidden, hidden), GELU(), linear(hidden, bottleneck)])
        return Sequential([("mlp", mlp), ("norm", L2Normalize()),
                           ("last_layer", WeightNormLinear(bottleneck, prototypes, initializer: &initializer))])
    }

    /// Triplet embedding head: Linear to `output` then L2 normalization (distances on the unit sphere).
    public static func embedding(input: Int, output: Int, initializer: inout Initializer) -> Sequential {
        Sequential([("0", Linear(input, output, initializer: &initializer)), ("norm", L2Normalize())])
    }
}
