import Foundation
import TesseraCore

/// One self-supervised run's mutable state — student (and DINO's teacher), optimizer, loss state,
/// step counter — and the training step for each method. Everything a resumed run needs is in
/// `checkpointTensors` / `restore`, so a run resumed from a checkpoint continues bit for bit.
public final class Pretrainer {
    public let settings: PretrainSettings
    public let student: Network
    public let teacher: Network?
    public let optimizer: Optimizer
    public private(set) var dino: DINOLoss?
    public let stepsPerEpoch: Int
    /// Steps taken so far (the schedules' clock).
    public private(set) var step = 0
    public let learningRate: CosineSchedule
    public let weightDecay: CosineSchedule
    public let teacherMomentum: CosineSchedule

    public struct StepStats: Sendable {
        public var loss: Float
        public var learningRate: Double
        public var weightDecay: Double
        /// SimCLR: top-1 partner retrieval; DINO: teacher entropy; triplet: fraction of active triplets.
        public var monitor: Float
        public var gradientNorm: Float
    }

    public init(settings: PretrainSettings, stepsPerEpoch: Int) throws {
        try settings.validate()
        HeapPolicy.retainFreedBuffers()
        guard stepsPerEpoch >= 1 else { throw TesseraError(.invalidConfig, "a training epoch needs at least one full batch") }
        self.settings = settings
        self.stepsPerEpoch = stepsPerEpoch
        student = try settings.buildNetwork()
        if settings.method == .dino {
            let t = try settings.buildNetwork()
            t.copy(from: student)
            teacher = t
            var loss = DINOLoss(dimension: settings.dinoPrototypes)
            loss.studentTemperature = Float(settings.studentTemperature)
            loss.centerMomentum = Float(settings.centerMomentum)
            dino = loss
        } else {
            teacher = nil
        }
        optimizer = Optimizer(settings.optimizer, parameters: student.namedParameters)
        optimizer.momentum = Float(settings.momentum)
        let total = settings.epochs * stepsPerEpoch
        learningRate = CosineSchedule(base: settings.learningRate, final: settings.minLearningRate,
                                      warmupSteps: Int(settings.warmupEpochs * Double(stepsPerEpoch)), totalSteps: total)
        weightDecay = CosineSchedule(base: settings.weightDecay, final: settings.weightDecayEnd ?? settings.weightDecay,
                                     warmupSteps: 0, totalSteps: total)
        teacherMomentum = CosineSchedule(base: settings.teacherMomentum, final: 1, warmupSteps: 0, totalSteps: total)
    }

    public var epoch: Int { step / stepsPerEpoch }
    public var totalSteps: Int { settings.epochs * stepsPerEpoch }

    /// DINO's teacher temperature: linear warm-up, then constant.
    func teacherTemperature(epoch e: Double) -> Float {
        let s = settings
        if s.warmupTeacherTemperatureEpochs > 0, e < Double(s.warmupTeacherTemperatureEpochs) {
            return Float(s.warmupTeacherTemperature + (s.teacherTemperature - s.warmupTeacherTemperature) * e / Double(s.warmupTeacherTemperatureEpochs))
        }
        return Float(s.teacherTemperature)
    }

    /// One optimization step on a batch of views: per crop group an NCHW tensor, view-major (all
    /// samples' first view, then the second …); `batch` samples. SimCLR and triplet use the first
    /// group's first two views; DINO uses the first group as global crops and all groups as student crops.
    public func trainStep(groups: [(data: [Float], shape: [Int])], batch: Int) -> StepStats {
        let lr = learningRate.value(at: step), wd = weightDecay.value(at: step)
        student.zeroGrad()
        var loss: Float = 0, monitor: Float = 0
        switch settings.method {
        case .simclr, .triplet:
            let g = groups[0]
            let shape = [2 * batch, g.shape[1], g.shape[2], g.shape[3]]
            // The first two views; copied only when the group holds more.
            let pairs = g.shape[0] == 2 * batch ? g.data : Array(g.data.prefix(shape.reduce(1, *)))
            let z = student.forward(images: pairs, shape: shape, training: true)
            if settings.method == .simclr {
                let r = NTXentLoss.evaluate(z, temperature: Float(settings.temperature))
                student.backward(r.gradient)
                loss = r.loss; monitor = r.top1
            } else {
                let labels = (0..<(2 * batch)).map { $0 % batch }
                let r = TripletLoss.evaluate(z, labels: labels, margin: Float(settings.tripletMargin))
                student.backward(r.gradient)
                loss = r.loss; monitor = r.active
            }
        case .dino:
            (loss, monitor) = dinoStep(groups: groups, batch: batch)
        }
        let norm = optimizer.clipGradients(maxNorm: Float(settings.clipGradient))
        if settings.method == .dino, epoch < settings.freezeLastLayerEpochs {
            // DINO freezes the prototypes during the first epoch(s): it stabilises the start.
            for (name, p) in student.namedParameters where name.hasPrefix("head.last_layer.") { p.zeroGrad() }
        }
        optimizer.step(learningRate: Float(lr), weightDecay: Float(wd))
        if let t = teacher { t.movingAverage(towards: student, momentum: Float(teacherMomentum.value(at: step))) }
        step += 1
        return StepStats(loss: loss, learningRate: lr, weightDecay: wd, monitor: monitor, gradientNorm: norm)
    }

    private func dinoStep(groups: [(data: [Float], shape: [Int])], batch: Int) -> (Float, Float) {
        guard let teacher, var dino else { preconditionFailure("DINO step without a teacher") }
        let globals = groups[0]
        let t = teacher.forward(images: globals.data, shape: globals.shape, training: true)
        // The student sees every group. Layers keep one forward's activations, so the smaller groups
        // go first without keeping theirs, the global group last (kept); after its backward the
        // others are recomputed one at a time (batch norm statistics updated only the first time).
        var outputs: [Tensor] = Array(repeating: Tensor(zeros: [0, 0]), count: groups.count)
        for gi in groups.indices.reversed() {
            outputs[gi] = student.forward(images: groups[gi].data, shape: groups[gi].shape, training: true)
        }
        let k = outputs[0].shape[1]
        var all: [Float] = []
        for o in outputs { all += o.data }
        let rows = outputs.reduce(0) { $0 + $1.shape[0] }
        let r = dino.evaluate(student: Tensor(shape: [rows, k], data: all), teacher: t, batch: batch,
                              teacherTemperature: teacherTemperature(epoch: Double(step) / Double(stepsPerEpoch)))
        self.dino = dino
        var offset = 0
        for gi in groups.indices {
            let n = outputs[gi].count
            let slice = Tensor(shape: outputs[gi].shape, data: Array(r.gradient.data[offset..<(offset + n)]))
            offset += n
            if gi > 0 {
                student.setRunningStatisticsUpdates(false)
                _ = student.forward(images: groups[gi].data, shape: groups[gi].shape, training: true)
                student.setRunningStatisticsUpdates(true)
            }
            student.backward(slice)
        }
        return (r.loss, r.teacherEntropy)
    }

    // MARK: checkpoints

    /// All state as named float arrays: the student under its own names (`backbone.*`, `head.*`, the
    /// keys PyTorch's `load_state_dict` expects), `teacher.*`, `optimizer.*`, `dino.center`.
    public var checkpointTensors: [(name: String, shape: [Int], values: [Float])] {
        var out: [(String, [Int], [Float])] = student.namedParameters.map { ($0.name, $0.parameter.shape, $0.parameter.value) }
        if let t = teacher { out += t.namedParameters.map { ("teacher." + $0.name, $0.parameter.shape, $0.parameter.value) } }
        out += optimizer.state.map { s in ("optimizer." + s.name, [s.values.count], s.values) }
        if let d = dino { out.append(("dino.center", [d.center.count], d.center)) }
        return out
    }

    public func restore(tensors: [String: [Float]], step: Int, source: String) throws {
        try student.load(tensors, source: source)
        if let t = teacher { try t.load(tensors, prefix: "teacher.", source: source) }
        var state: [String: [Float]] = [:]
        for (k, v) in tensors where k.hasPrefix("optimizer.") { state[String(k.dropFirst("optimizer.".count))] = v }
        try optimizer.restore(state: state, steps: step)
        if dino != nil {
            guard let c = tensors["dino.center"], c.count == settings.dinoPrototypes else {
                throw TesseraError(.corrupt, path: source, "checkpoint has no DINO centre of \(settings.dinoPrototypes) values")
            }
            dino?.center = c
        }
        self.step = step
    }
}
