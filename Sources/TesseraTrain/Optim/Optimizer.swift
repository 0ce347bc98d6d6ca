import Foundation

/// Which update rule, with PyTorch's semantics for SGD and AdamW and the SimCLR/solo-learn form of
/// LARS. Biases and normalization parameters (`Parameter.Kind.bias`) get no weight decay and no
/// LARS adaptation, as SimCLR and DINO exclude them.
public enum OptimizerKind: String, Sendable, Codable { case sgd, adamw, lars }

/// An optimizer over a fixed list of parameters; its state (momentum, Adam moments) is named after
/// the parameters so a checkpoint restores it exactly.
public final class Optimizer {
    public let kind: OptimizerKind
    public let parameters: [(name: String, parameter: Parameter)]
    public var momentum: Float = 0.9
    public var beta1: Float = 0.9
    public var beta2: Float = 0.999
    public var eps: Float = 1e-8
    /// LARS trust coefficient η (You et al. 2017; 0.001 in SimCLR's LARS, 0.02 in solo-learn).
    public var trust: Float = 0.001
    /// Adam's step count (for bias correction).
    public private(set) var steps = 0
    /// Per parameter: momentum buffer (SGD, LARS) or first moment (AdamW).
    var first: [[Float]]
    /// Per parameter: second moment (AdamW only).
    var second: [[Float]]

    public init(_ kind: OptimizerKind, parameters: [(name: String, parameter: Parameter)]) {
        self.kind = kind
        self.parameters = parameters.filter { $0.parameter.trainable }
        first = self.parameters.map { [Float](repeating: 0, count: $0.parameter.value.count) }
        second = kind == .adamw ? self.parameters.map { [Float](repeating: 0, count: $0.parameter.value.count) } : []
    }

    /// Scales all gradients so their global L2 norm is at most `maxNorm`; returns the norm before.
    @discardableResult
    public func clipGradients(maxNorm: Float) -> Float {
        var s = 0.0
        for p in parameters { for g in p.parameter.grad { s += Double(g) * Double(g) } }
        let norm = Float(s.squareRoot())
        if maxNorm > 0, norm > maxNorm {
            let f = maxNorm / (norm + 1e-6)
            for p in parameters { p.parameter.grad.withUnsafeMutableBufferPointer { g in for i in g.indices { g[i] *= f } } }
        }
        return norm
    }

    /// One update with this step's learning rate and weight decay; gradients are left as they are.
    public func step(learningRate lr: Float, weightDecay wd: Float) {
        steps += 1
        for (index, entry) in parameters.enumerated() {
            let p = entry.parameter
            let decays = p.kind == .weight
            let wdp = decays ? wd : 0
            switch kind {
            case .sgd:
                // PyTorch SGD: g += wd·w; buf = μ·buf + g; w −= lr·buf.
                p.value.withUnsafeMutableBufferPointer { w in
                    first[index].withUnsafeMutableBufferPointer { m in
                        for i in w.indices {
                            let g = p.grad[i] + wdp * w[i]
                            m[i] = momentum * m[i] + g
                            w[i] -= lr * m[i]
                        }
                    }
                }
            case .lars:
                // g += wd·w; for weights scale by η‖w‖/‖g‖; buf = μ·buf + scaled g; w −= lr·buf.
                var local: Float = 1
                if decays {
                    var wn = 0.0, gn = 0.0
                    for i in p.value.indices {
                        let g = Double(p.grad[i] + wdp * p.value[i])
                        wn += Double(p.value[i]) * Double(p.value[i])
                        gn += g * g
                    }
                    if wn > 0, gn > 0 { local = trust * Float(wn.squareRoot() / gn.squareRoot()) }
                }
                p.value.withUnsafeMutableBufferPointer { w in
                    first[index].withUnsafeMutableBufferPointer { m in
                        for i in w.indices {
                            let g = (p.grad[i] + wdp * w[i]) * local
                            m[i] = momentum * m[i] + g
                            w[i] -= lr * m[i]
                        }
                    }
                }
            case .adamw:
                // PyTorch AdamW: w −= lr·wd·w; m, v moments; w −= lr·m̂/(√v̂ + ε).
                let c1 = 1 - pow(beta1, Float(steps)), c2 = 1 - pow(beta2, Float(steps))
                p.value.withUnsafeMutableBufferPointer { w in
                    first[index].withUnsafeMutableBufferPointer { m in
                        second[index].withUnsafeMutableBufferPointer { v in
                            for i in w.indices {
                                let g = p.grad[i]
                                w[i] -= lr * wdp * w[i]
                                m[i] = beta1 * m[i] + (1 - beta1) * g
                                v[i] = beta2 * v[i] + (1 - beta2) * g * g
                                w[i] -= lr * (m[i] / c1) / ((v[i] / c2).squareRoot() + eps)
                            }
                        }
                    }
                }
            }
        }
    }

    /// Named state for checkpoints: "<param>.momentum" / ".exp_avg" / ".exp_avg_sq", plus the step.
    public var state: [(name: String, values: [Float])] {
        var out: [(String, [Float])] = []
        for (i, p) in parameters.enumerated() {
            out.append((p.name + (kind == .adamw ? ".exp_avg" : ".momentum"), first[i]))
            if kind == .adamw { out.append((p.name + ".exp_avg_sq", second[i])) }
        }
        return out
    }

    public func restore(state: [String: [Float]], steps: Int) throws {
        for (i, p) in parameters.enumerated() {
            guard let m = state[p.name + (kind == .adamw ? ".exp_avg" : ".momentum")], m.count == first[i].count else {
                throw TrainError.checkpoint("optimizer state for \(p.name) is missing or has the wrong size")
            }
            first[i] = m
            if kind == .adamw {
                guard let v = state[p.name + ".exp_avg_sq"], v.count == second[i].count else {
                    throw TrainError.checkpoint("optimizer state \(p.name).exp_avg_sq is missing or has the wrong size")
                }
                second[i] = v
            }
        }
        self.steps = steps
    }
}

/// Linear warm-up then cosine decay (Loshchilov & Hutter 2017), per step, as SimCLR and DINO's
/// `cosine_scheduler`: value(t) = base·t/warmup during warm-up (from `warmupStart`), then
/// final + (base − final)·(1 + cos(π·(t − warmup)/(total − warmup)))/2.
public struct CosineSchedule: Sendable, Codable, Equatable {
    public var base: Double
    public var final: Double
    public var warmupSteps: Int
    public var totalSteps: Int
    public var warmupStart: Double = 0

    public init(base: Double, final: Double, warmupSteps: Int, totalSteps: Int, warmupStart: Double = 0) {
        self.base = base
        self.final = final
        self.warmupSteps = warmupSteps
        self.totalSteps = totalSteps
        self.warmupStart = warmupStart
    }

    public func value(at step: Int) -> Double {
        if step < warmupSteps { return warmupStart + (base - warmupStart) * Double(step) / Double(warmupSteps) }
        let span = max(1, totalSteps - warmupSteps)
        let t = min(1, Double(step - warmupSteps) / Double(span))
        return final + (base - final) * (1 + cos(Double.pi * t)) / 2
    }
}
