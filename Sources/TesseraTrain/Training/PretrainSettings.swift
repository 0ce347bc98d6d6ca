import TesseraCore

/// Everything that defines a self-supervised training run besides the data and the views: method,
/// architecture, optimization and loss settings. Defaults follow the papers named per field,
/// scaled down where the papers assume GPUs (noted).
public struct PretrainSettings: Codable, Sendable, Equatable {
    public enum Method: String, Codable, Sendable { case simclr, dino, triplet }

    public var method: Method = .simclr
    /// `convnet4`, `resnet8`, `resnet14`, `convnet:W,…` or `resnet:W,…:B,…`.
    public var backbone: String = "resnet8"
    public var epochs: Int = 20
    /// Source samples per step (SimCLR: 2 views each; DINO: all crops of each).
    public var batchSize: Int = 128
    public var optimizer: OptimizerKind = .sgd
    /// Peak learning rate after warm-up (not scaled by batch size: write the value you want).
    public var learningRate: Double = 0.3
    public var minLearningRate: Double = 0
    public var warmupEpochs: Double = 1
    public var weightDecay: Double = 1e-4
    /// Weight decay at the end of the cosine schedule (DINO: 0.04 → 0.4); nil = constant.
    public var weightDecayEnd: Double?
    public var momentum: Double = 0.9
    /// Global gradient-norm clip (0 = off; DINO clips at 3.0 per parameter tensor).
    public var clipGradient: Double = 0
    public var seed: UInt64 = 0

    // SimCLR (Chen et al. 2020): MLP head and temperature.
    public var projectionHidden: Int = 256
    public var projectionOutput: Int = 128
    public var projectionBatchNorm: Bool = false
    /// NT-Xent τ (SimCLR: 0.5 for CIFAR-10, 0.1 with LARS on ImageNet; solo-learn CIFAR: 0.2).
    public var temperature: Double = 0.2

    // DINO (Caron et al. 2021, main_dino.py defaults; head scaled down from 65,536 prototypes and
    // 2,048 hidden units for a CPU).
    public var dinoPrototypes: Int = 4096
    public var dinoHidden: Int = 512
    public var dinoBottleneck: Int = 128
    public var teacherTemperature: Double = 0.04
    public var warmupTeacherTemperature: Double = 0.04
    public var warmupTeacherTemperatureEpochs: Int = 0
    public var studentTemperature: Double = 0.1
    public var teacherMomentum: Double = 0.996
    public var centerMomentum: Double = 0.9
    public var freezeLastLayerEpochs: Int = 1

    // Batch-hard triplet (Hermans et al. 2017).
    public var tripletMargin: Double = 0.3
    public var embeddingDimension: Int = 128

    public init() {}

    /// Errors for values no run could use, naming the setting.
    public func validate() throws {
        func bad(_ name: String, _ why: String) -> TesseraError { TesseraError(.invalidConfig, "train.\(name): \(why)") }
        do { _ = try BackboneSpec(parsing: backbone) } catch let e as TesseraError { throw bad("backbone", e.message) }
        if epochs < 1 { throw bad("epochs", "must be at least 1, got \(epochs)") }
        if batchSize < 2 { throw bad("batch_size", "must be at least 2 (the losses contrast samples in a batch), got \(batchSize)") }
        if !(learningRate > 0) || !learningRate.isFinite { throw bad("lr", "must be positive, got \(learningRate)") }
        if minLearningRate < 0 || minLearningRate > learningRate { throw bad("min_lr", "must be in [0, lr], got \(minLearningRate)") }
        if warmupEpochs < 0 || warmupEpochs > Double(epochs) { throw bad("warmup_epochs", "must be in [0, epochs], got \(warmupEpochs)") }
        if weightDecay < 0 || (weightDecayEnd ?? 0) < 0 { throw bad("weight_decay", "must not be negative") }
        if momentum < 0 || momentum >= 1 { throw bad("momentum", "must be in [0, 1), got \(momentum)") }
        if clipGradient < 0 { throw bad("clip_grad", "must not be negative") }
        if !(temperature > 0) { throw bad("temperature", "must be positive, got \(temperature)") }
        if !(teacherTemperature > 0) || !(studentTemperature > 0) || !(warmupTeacherTemperature > 0) {
            throw bad("teacher_temp/student_temp", "must be positive")
        }
        if teacherMomentum < 0 || teacherMomentum > 1 { throw bad("teacher_momentum", "must be in [0, 1], got \(teacherMomentum)") }
        if tripletMargin < 0 { throw bad("margin", "must not be negative") }
        for (n, v) in [("projection_hidden", projectionHidden), ("projection_dim", projectionOutput), ("prototypes", dinoPrototypes),
                       ("dino_hidden", dinoHidden), ("bottleneck", dinoBottleneck), ("embedding_dim", embeddingDimension)] where v < 1 {
            throw bad(n, "must be at least 1, got \(v)")
        }
    }

    enum CodingKeys: String, CodingKey {
        case method, backbone, epochs, optimizer, momentum, seed, temperature
        case batchSize = "batch_size", learningRate = "lr", minLearningRate = "min_lr", warmupEpochs = "warmup_epochs"
        case weightDecay = "weight_decay", weightDecayEnd = "weight_decay_end", clipGradient = "clip_grad"
        case projectionHidden = "projection_hidden", projectionOutput = "projection_dim", projectionBatchNorm = "projection_bn"
        case dinoPrototypes = "prototypes", dinoHidden = "dino_hidden", dinoBottleneck = "bottleneck"
        case teacherTemperature = "teacher_temp", warmupTeacherTemperature = "warmup_teacher_temp"
        case warmupTeacherTemperatureEpochs = "warmup_teacher_temp_epochs", studentTemperature = "student_temp"
        case teacherMomentum = "teacher_momentum", centerMomentum = "center_momentum", freezeLastLayerEpochs = "freeze_last_layer"
        case tripletMargin = "margin", embeddingDimension = "embedding_dim"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = PretrainSettings()
        method = try c.decodeIfPresent(Method.self, forKey: .method) ?? d.method
        backbone = try c.decodeIfPresent(String.self, forKey: .backbone) ?? d.backbone
        epochs = try c.decodeIfPresent(Int.self, forKey: .epochs) ?? d.epochs
        batchSize = try c.decodeIfPresent(Int.self, forKey: .batchSize) ?? d.batchSize
        optimizer = try c.decodeIfPresent(OptimizerKind.self, forKey: .optimizer) ?? d.optimizer
        learningRate = try c.decodeIfPresent(Double.self, forKey: .learningRate) ?? d.learningRate
        minLearningRate = try c.decodeIfPresent(Double.self, forKey: .minLearningRate) ?? d.minLearningRate
        warmupEpochs = try c.decodeIfPresent(Double.self, forKey: .warmupEpochs) ?? d.warmupEpochs
        weightDecay = try c.decodeIfPresent(Double.self, forKey: .weightDecay) ?? d.weightDecay
        weightDecayEnd = try c.decodeIfPresent(Double.self, forKey: .weightDecayEnd)
        momentum = try c.decodeIfPresent(Double.self, forKey: .momentum) ?? d.momentum
        clipGradient = try c.decodeIfPresent(Double.self, forKey: .clipGradient) ?? d.clipGradient
        seed = try c.decodeIfPresent(UInt64.self, forKey: .seed) ?? d.seed
        projectionHidden = try c.decodeIfPresent(Int.self, forKey: .projectionHidden) ?? d.projectionHidden
        projectionOutput = try c.decodeIfPresent(Int.self, forKey: .projectionOutput) ?? d.projectionOutput
        projectionBatchNorm = try c.decodeIfPresent(Bool.self, forKey: .projectionBatchNorm) ?? d.projectionBatchNorm
        temperature = try c.decodeIfPresent(Double.self, forKey: .temperature) ?? d.temperature
        dinoPrototypes = try c.decodeIfPresent(Int.self, forKey: .dinoPrototypes) ?? d.dinoPrototypes
        dinoHidden = try c.decodeIfPresent(Int.self, forKey: .dinoHidden) ?? d.dinoHidden
        dinoBottleneck = try c.decodeIfPresent(Int.self, forKey: .dinoBottleneck) ?? d.dinoBottleneck
        teacherTemperature = try c.decodeIfPresent(Double.self, forKey: .teacherTemperature) ?? d.teacherTemperature
        warmupTeacherTemperature = try c.decodeIfPresent(Double.self, forKey: .warmupTeacherTemperature) ?? d.warmupTeacherTemperature
        warmupTeacherTemperatureEpochs = try c.decodeIfPresent(Int.self, forKey: .warmupTeacherTemperatureEpochs) ?? d.warmupTeacherTemperatureEpochs
        studentTemperature = try c.decodeIfPresent(Double.self, forKey: .studentTemperature) ?? d.studentTemperature
        teacherMomentum = try c.decodeIfPresent(Double.self, forKey: .teacherMomentum) ?? d.teacherMomentum
        centerMomentum = try c.decodeIfPresent(Double.self, forKey: .centerMomentum) ?? d.centerMomentum
        freezeLastLayerEpochs = try c.decodeIfPresent(Int.self, forKey: .freezeLastLayerEpochs) ?? d.freezeLastLayerEpochs
        tripletMargin = try c.decodeIfPresent(Double.self, forKey: .tripletMargin) ?? d.tripletMargin
        embeddingDimension = try c.decodeIfPresent(Int.self, forKey: .embeddingDimension) ?? d.embeddingDimension
    }

    public static var knownKeys: Set<String> { Set(["method", "backbone", "epochs", "optimizer", "momentum", "seed", "temperature", "batch_size", "lr",
        "min_lr", "warmup_epochs", "weight_decay", "weight_decay_end", "clip_grad", "projection_hidden", "projection_dim", "projection_bn",
        "prototypes", "dino_hidden", "bottleneck", "teacher_temp", "warmup_teacher_temp", "warmup_teacher_temp_epochs", "student_temp",
        "teacher_momentum", "center_momentum", "freeze_last_layer", "margin", "embedding_dim"]) }

    /// Builds the student network for this method (deterministic from `seed`).
    public func buildNetwork() throws -> Network {
        let spec = try BackboneSpec(parsing: backbone)
        var ini = Initializer(seed: seed &+ 0x7e55e7a)
        let bb = spec.build(initializer: &ini)
        let f = spec.featureDimension
        let head: Sequential
        switch method {
        case .simclr:
            head = Heads.simclr(input: f, hidden: projectionHidden, output: projectionOutput, batchNorm: projectionBatchNorm, initializer: &ini)
        case .dino:
            head = Heads.dino(input: f, hidden: dinoHidden, bottleneck: dinoBottleneck, prototypes: dinoPrototypes, initializer: &ini)
        case .triplet:
            head = Heads.embedding(input: f, output: embeddingDimension, initializer: &ini)
        }
        return Network(backbone: bb, head: head)
    }
}
