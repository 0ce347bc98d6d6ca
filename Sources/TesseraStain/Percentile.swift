#if arch(x86_64)
import _Builtin_intrinsics.intel
#endif

/// numpy-compatible percentiles (method "linear", numpy's default) by selection instead of sorting:
/// O(n) per percentile instead of O(n log n).
public enum Percentile {
    /// The q-th percentile (0–100) of `values`, which is reordered in place. Same result as
    /// `np.percentile(values, q)`: virtual index q/100·(n−1), linear interpolation between neighbours.
    public static func linear(_ values: inout [Double], _ q: Double) -> Double {
        let n = values.count
        precondition(n > 0, "percentile of no values")
        let index = (q / 100) * Double(n - 1)
        let lo = max(0, min(n - 1, Int(index.rounded(.down))))
        let hi = min(n - 1, lo + 1)
        let t = index - Double(lo)
        return values.withUnsafeMutableBufferPointer { buf -> Double in
            select(buf, lo)
            let a = buf[lo]
            guard hi != lo else { return a }
            // After selecting lo, the next order statistic is the minimum of the right part.
            var b = buf[hi]
            for i in (lo + 1)..<n where buf[i] < b { b = buf[i] }
            return lerp(a, b, t)
        }
    }

    /// numpy's `_lerp`: exact at both ends and monotone.
    @inline(__always) static func lerp(_ a: Double, _ b: Double, _ t: Double) -> Double {
        let d = b - a
        return t >= 0.5 ? b - d * (1 - t) : a + d * t
    }

    /// Puts the k-th smallest element at index k, smaller-or-equal ones before, larger-or-equal ones
    /// after. Quickselect with median-of-three pivots and a branch-free Lomuto partition (every
    /// element is swapped, the boundary moves by the comparison's 0 or 1): on the tails this selects
    /// in, a branching partition mispredicts about every other element. A pivot that is the range's
    /// minimum (many equal values) gets a second pass that gathers its copies, so ties cannot stall it.
    /// Insertion sort finishes ranges of fewer than 16. NaN-free input.
    static func select(_ a: UnsafeMutableBufferPointer<Double>, _ k: Int) {
        /// 1 when x < y, else 0, without a branch the compiler could make of a plain comparison.
        @inline(__always) func less(_ x: Double, _ y: Double) -> Int {
            #if arch(x86_64)
            Int(truncatingIfNeeded: _mm_movemask_pd(_mm_cmplt_sd(SIMD2(x, 0), SIMD2(y, 0))) & 1)
            #else
            x < y ? 1 : 0
            #endif
        }
        guard let p = a.baseAddress, k >= 0, k < a.count else { return }
        var lo = 0, hi = a.count  // [lo, hi) holds rank k
        while hi - lo > 16 {
            let mid = lo + (hi - lo) / 2, last = hi - 1
            if p[mid] < p[lo] { swap(&p[mid], &p[lo]) }
            if p[last] < p[lo] { swap(&p[last], &p[lo]) }
            if p[last] < p[mid] { swap(&p[last], &p[mid]) }
            let pivot = p[mid]
            // [lo, i) < pivot ≤ [i, j).
            var i = lo
            for j in lo..<hi {
                let v = p[j]
                p[j] = p[i]
                p[i] = v
                i &+= less(v, pivot)
            }
            if k < i { hi = i; continue }
            if i == lo {
                // The pivot is the minimum: its copies first, [lo, e) == pivot.
                var e = lo
                for j in lo..<hi {
                    let v = p[j]
                    p[j] = p[e]
                    p[e] = v
                    e &+= less(pivot, v) ^ 1
                }
                if k < e { return }
                lo = e
            } else {
                lo = i
            }
        }
        if hi - lo > 1 {
            for i in (lo + 1)..<hi {
                let v = p[i]
                var j = i - 1
                while j >= lo && p[j] > v { p[j + 1] = p[j]; j -= 1 }
                p[j + 1] = v
            }
        }
    }
}

/// Exact order statistics of values computed on the fly (never stored or sorted): a min/max pass,
/// a histogram pass to find the bins holding the wanted ranks, and a pass collecting just those
/// bins. Memory is the histogram, not the data.
enum OrderStatistics {
    static let bins = 4096

    /// numpy-style linear percentile q (0–100) of v(0) … v(n−1) (finite values), plus the indices
    /// of the two order statistics it interpolates between.
    static func percentile(count n: Int, _ q: Double, _ v: (Int) -> Double) -> (value: Double, lo: Int, hi: Int) {
        precondition(n > 0)
        let index = (q / 100) * Double(n - 1)
        let k = max(0, min(n - 1, Int(index.rounded(.down))))
        let k1 = min(n - 1, k + 1)
        let t = index - Double(k)
        let ((a, ia), (b, ib)) = select(count: n, k, k1, v)
        return (Percentile.lerp(a, b, t), ia, ib)
    }

    /// The k1-th and k2-th smallest values (0-based, k1 ≤ k2) with an index holding each.
    static func select(count n: Int, _ k1: Int, _ k2: Int, _ v: (Int) -> Double) -> ((Double, Int), (Double, Int)) {
        var lo = Double.infinity, hi = -Double.infinity
        for i in 0..<n {
            let x = v(i)
            if x < lo { lo = x }
            if x > hi { hi = x }
        }
        if !(hi > lo) {
            let i = (0..<n).first { v($0) == lo } ?? 0
            return ((lo, i), (lo, i))
        }
        let scale = Double(bins) / (hi - lo)
        @inline(__always) func bin(_ x: Double) -> Int { min(bins - 1, Int((x - lo) * scale)) }
        var counts = [Int](repeating: 0, count: bins)
        for i in 0..<n { counts[bin(v(i))] += 1 }
        // Bins holding ranks k1 and k2, and how many values lie below each.
        var b1 = 0, b2 = 0, below1 = 0, below2 = 0, seen = 0
        var found1 = false
        for b in 0..<bins {
            if !found1 && seen + counts[b] > k1 { b1 = b; below1 = seen; found1 = true }
            if seen + counts[b] > k2 { b2 = b; below2 = seen; break }
            seen += counts[b]
        }
        var c1: [(Double, Int)] = [], c2: [(Double, Int)] = []
        c1.reserveCapacity(counts[b1])
        for i in 0..<n {
            let x = v(i), b = bin(x)
            if b == b1 { c1.append((x, i)) }
            if b == b2 && b2 != b1 { c2.append((x, i)) }
        }
        c1.sort { $0.0 < $1.0 }
        c2.sort { $0.0 < $1.0 }
        let first = c1[k1 - below1]
        let second = b2 == b1 ? c1[k2 - below1] : c2[k2 - below2]
        return (first, second)
    }
}

extension OrderStatistics {
    /// Several numpy-style linear percentiles of one stream of values known to lie in
    /// [lower, upper] (no min/max pass): one histogram pass and one collection pass in all.
    /// Returns, per q, the value and the indices of the two order statistics it interpolates.
    static func percentiles(count n: Int, _ qs: [Double], lower: Double, upper: Double,
                            _ v: (Int) -> Double) -> [(value: Double, lo: Int, hi: Int)] {
        precondition(n > 0)
        guard upper > lower else {
            return qs.map { _ in (v(0), 0, 0) }
        }
        let scale = Double(bins) / (upper - lower)
        let top = Double(bins - 1)
        @inline(__always) func bin(_ x: Double) -> Int { Int(Swift.min(Swift.max((x - lower) * scale, 0), top)) }
        var counts = [Int](repeating: 0, count: bins)
        counts.withUnsafeMutableBufferPointer { c in
            for i in 0..<n { c[bin(v(i))] += 1 }
        }
        var below = [Int](repeating: 0, count: bins)
        var seen = 0
        for b in 0..<bins { below[b] = seen; seen += counts[b] }
        func binOf(rank k: Int) -> Int {
            var lo = 0, hi = bins - 1
            while lo < hi {
                let mid = (lo + hi + 1) / 2
                if below[mid] <= k { lo = mid } else { hi = mid - 1 }
            }
            return lo
        }
        // The ranks wanted and their bins.
        var ranks: [(k: Int, k1: Int, t: Double)] = []
        var wanted = Set<Int>()
        for q in qs {
            let index = (q / 100) * Double(n - 1)
            let k = max(0, min(n - 1, Int(index.rounded(.down))))
            ranks.append((k, min(n - 1, k + 1), index - Double(k)))
            wanted.insert(binOf(rank: k))
            wanted.insert(binOf(rank: min(n - 1, k + 1)))
        }
        var collected: [Int: [(Double, Int)]] = [:]
        for b in wanted { collected[b] = []; collected[b]!.reserveCapacity(counts[b]) }
        var isWanted = [Bool](repeating: false, count: bins)
        for b in wanted { isWanted[b] = true }
        isWanted.withUnsafeBufferPointer { w in
            for i in 0..<n {
                let x = v(i), b = bin(x)
                if w[b] { collected[b]!.append((x, i)) }
            }
        }
        for b in wanted { collected[b]!.sort { $0.0 < $1.0 } }
        func statistic(_ k: Int) -> (Double, Int) {
            let b = binOf(rank: k)
            return collected[b]![k - below[b]]
        }
        return ranks.map { r in
            let a = statistic(r.k), c = statistic(r.k1)
            return (Percentile.lerp(a.0, c.0, r.t), a.1, c.1)
        }
    }
}
