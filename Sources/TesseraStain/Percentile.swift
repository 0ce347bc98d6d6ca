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

    /// Puts the k-th smallest element at index k, smaller ones before, larger ones after (Hoare
    /// partition quickselect with median-of-three pivots; falls back to heapsort-free insertion for
    /// tiny ranges).
    static func select(_ a: UnsafeMutableBufferPointer<Double>, _ k: Int) {
        var lo = 0, hi = a.count - 1
        while hi > lo {
            if hi - lo < 16 {
                for i in (lo + 1)...hi {
                    let v = a[i]
                    var j = i - 1
                    while j >= lo && a[j] > v { a[j + 1] = a[j]; j -= 1 }
                    a[j + 1] = v
                }
                return
            }
            let mid = lo + (hi - lo) / 2
            if a[mid] < a[lo] { a.swapAt(mid, lo) }
            if a[hi] < a[lo] { a.swapAt(hi, lo) }
            if a[hi] < a[mid] { a.swapAt(hi, mid) }
            let pivot = a[mid]
            var i = lo, j = hi
            while i <= j {
                while a[i] < pivot { i += 1 }
                while a[j] > pivot { j -= 1 }
                if i <= j { a.swapAt(i, j); i += 1; j -= 1 }
            }
            if k <= j { hi = j } else if k >= i { lo = i } else { return }
        }
    }
}
