/// Exact numpy-linear percentiles in a tail of a value stream (the 1st / 99th percentiles of
/// Macenko angles and concentrations) with one pass over the stream: a small strided sample gives a
/// threshold that, with a safety margin, holds the wanted order statistics on its side; the pass
/// collects the values beyond it and a selection among those few finds the exact answer. When the
/// sample misjudged (too few values collected) `finish` returns nil and the caller falls back to an
/// exact full method, so the result never depends on the sample, only the speed does.
struct TailPercentile {
    /// Ranks (0-based, ascending) of the two order statistics and the interpolation weight.
    let n: Int, k: Int, k1: Int, t: Double
    /// Collect values ≥ threshold (upper tail) or ≤ threshold (lower tail).
    let upper: Bool
    let q: Double
    var threshold: Double

    init(count n: Int, q: Double) {
        precondition(n > 0)
        self.n = n
        self.q = q
        let index = (q / 100) * Double(n - 1)
        k = max(0, min(n - 1, Int(index.rounded(.down))))
        k1 = min(n - 1, k + 1)
        t = index - Double(k)
        upper = q >= 50
        threshold = upper ? -.infinity : .infinity
    }

    /// How many sample values a stream of `n` should offer (0: collect everything, no sampling).
    static func sampleSize(count n: Int) -> Int { n >= 4096 ? 1024 : 0 }

    /// Sets the threshold from a sample of the stream (reordered in place). The margin is four
    /// binomial standard deviations plus a few values, so a fallback is rare.
    mutating func setThreshold(sample s: UnsafeMutableBufferPointer<Double>) {
        let size = s.count
        guard size > 0 else { return }
        // The share of the stream that must lie on the collected side.
        let share = upper ? Double(n - k) / Double(n) : Double(k1 + 1) / Double(n)
        let expected = Double(size) * share
        let margin = 4 * (expected * (1 - share)).squareRoot() + 4
        let d = Int((expected + margin).rounded(.up))
        if d >= size { threshold = upper ? -.infinity : .infinity; return }
        let j = upper ? size - 1 - d : d
        Percentile.select(s, j)
        threshold = s[j]
    }

    /// The percentile from the values collected beyond the threshold (reordered in place), or nil
    /// when they do not hold both order statistics.
    func finish(_ c: UnsafeMutableBufferPointer<Double>) -> (value: Double, lo: Double, hi: Double)? {
        let count = c.count
        // Rank of the first collected value in the whole stream.
        let base = upper ? n - count : 0
        guard count > 0, k >= base, k1 - base < count else { return nil }
        let j = k - base
        Percentile.select(c, j)
        let a = c[j]
        var b = a
        if k1 != k {
            b = c[j + 1]
            for i in (j + 1)..<count where c[i] < b { b = c[i] }
        }
        return (Percentile.lerp(a, b, t), a, b)
    }
}
