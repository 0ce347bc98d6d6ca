import Foundation

/// The DINO loss (Caron et al. 2021, main_dino.py DINOLoss): the teacher's outputs for the global
/// crops are centred (minus a running centre) and sharpened (softmax at temperature τt); the student's
/// outputs for every crop go through log-softmax at τs; the loss is the cross-entropy between each
/// teacher global crop and every student crop of a different view, averaged over the pairs and the
/// batch. After each step the centre moves towards the teacher's batch mean with momentum 0.9.
public struct DINOLoss: Sendable {
    public var center: [Float]
    public var studentTemperature: Float = 0.1
    public var centerMomentum: Float = 0.9

    public init(dimension: Int) { center = [Float](repeating: 0, count: dimension) }

    public struct Result {
        public var loss: Float
        /// ∂loss/∂student outputs.
        public var gradient: Tensor
        /// Mean entropy of the teacher's sharpened distributions (collapse monitor: → 0 is collapse to
        /// one prototype, → log K is collapse to uniform).
        public var teacherEntropy: Float
    }

    static func softmaxRows(_ x: [Float], rows: Int, cols: Int, temperature: Float, shift: [Float]? = nil) -> [Float] {
        var out = [Float](repeating: 0, count: rows * cols)
        for r in 0..<rows {
            var mx = -Float.infinity
            for k in 0..<cols { mx = max(mx, (x[r * cols + k] - (shift?[k] ?? 0)) / temperature) }
            var s = 0.0
            for k in 0..<cols {
                let e = exp((x[r * cols + k] - (shift?[k] ?? 0)) / temperature - mx)
                out[r * cols + k] = e
                s += Double(e)
            }
            let inv = Float(1 / s)
            for k in 0..<cols { out[r * cols + k] *= inv }
        }
        return out
    }

    /// - Parameters:
    ///   - student: [Vs·B, K], view-major; the first `teacher.shape[0] / B` views are the global crops.
    ///   - teacher: [Vt·B, K] for the global crops, view-major.
    /// Updates the centre with this batch's teacher outputs (after computing the loss, as DINO does).
    public mutating func evaluate(student: Tensor, teacher: Tensor, batch b: Int, teacherTemperature: Float) -> Result {
        let k = student.shape[1]
        precondition(teacher.shape[1] == k && center.count == k, "DINO loss: student, teacher and centre dimensions differ")
        let vs = student.shape[0] / b, vt = teacher.shape[0] / b
        precondition(vs * b == student.shape[0] && vt * b == teacher.shape[0] && vt <= vs, "DINO loss: batch \(b) does not divide the crops")
        let q = Self.softmaxRows(teacher.data, rows: vt * b, cols: k, temperature: teacherTemperature, shift: center)
        let p = Self.softmaxRows(student.data, rows: vs * b, cols: k, temperature: studentTemperature)
        // Every teacher view pairs with every student view but its own.
        let terms = vt * vs - vt
        var loss = 0.0
        var grad = [Float](repeating: 0, count: student.count)
        let w = 1 / (Float(terms) * Float(b))
        for v in 0..<vs {
            for r in 0..<b {
                let srow = (v * b + r) * k
                // log p = s/τs − logsumexp(s/τs)
                var mx = -Float.infinity
                for j in 0..<k { mx = max(mx, student.data[srow + j] / studentTemperature) }
                var se = 0.0
                for j in 0..<k { se += Double(exp(student.data[srow + j] / studentTemperature - mx)) }
                let lse = Float(log(se)) + mx
                var pairs = 0
                for iq in 0..<vt where iq != v {
                    pairs += 1
                    let trow = (iq * b + r) * k
                    var ce = 0.0
                    for j in 0..<k { ce -= Double(q[trow + j] * (student.data[srow + j] / studentTemperature - lse)) }
                    loss += ce
                    for j in 0..<k { grad[srow + j] -= q[trow + j] * w / studentTemperature }
                }
                if pairs > 0 {
                    // Each pair contributes p/τs (the softmax part of −q·log p, as q sums to 1).
                    let c = Float(pairs) * w / studentTemperature
                    for j in 0..<k { grad[srow + j] += c * p[srow + j] }
                }
            }
        }
        var entropy = 0.0
        for r in 0..<(vt * b) { for j in 0..<k where q[r * k + j] > 0 { entropy -= Double(q[r * k + j]) * log(Double(q[r * k + j])) } }
        // Centre update: EMA of the teacher's batch mean.
        var mean = [Double](repeating: 0, count: k)
        for r in 0..<(vt * b) { for j in 0..<k { mean[j] += Double(teacher.data[r * k + j]) } }
        for j in 0..<k { center[j] = center[j] * centerMomentum + Float(mean[j] / Double(vt * b)) * (1 - centerMomentum) }
        return Result(loss: Float(loss) / Float(terms * b), gradient: Tensor(shape: student.shape, data: grad),
                      teacherEntropy: Float(entropy / Double(vt * b)))
    }
}
