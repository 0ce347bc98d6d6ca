import Foundation

/// Optical density lookups: 8-bit intensities have only 256 values, so −log is a table.
public struct ODTable: Sendable {
    /// od[v] for v in 0…255.
    public let od: [Double]

    /// torchstain / Macenko paper code: OD = −ln((I + 1) / Io).
    public static func plusOne(io: Double) -> ODTable {
        ODTable(od: (0..<256).map { -log((Double($0) + 1) / io) })
    }

    /// staintools: zeros replaced by 1, OD = max(−ln(I / 255), 1e-6).
    public static func staintools() -> ODTable {
        ODTable(od: (0..<256).map { max(-log(Double(max($0, 1)) / 255), 1e-6) })
    }
}

extension ODToByte {
    /// Tables are 40 KB and depend only on Io and rounding: build each once.
    static let truncated240 = ODToByte(io: 240)
    static let truncated255 = ODToByte(io: 255)
    static let rounded255 = ODToByte(io: 255, rounding: true)

    public static func shared(io: Double, rounding: Bool = false) -> ODToByte {
        switch (io, rounding) {
        case (240, false): return truncated240
        case (255, false): return truncated255
        case (255, true): return rounded255
        default: return ODToByte(io: io, rounding: rounding)
        }
    }
}

/// Maps an optical density x to the byte ⌊min(255, Io·e^(−x))⌋ (numpy's clip-then-astype(uint8))
/// without calling exp: the byte changes only where x crosses tₖ = −ln(k / Io), and a table over
/// bins narrower than the smallest gap between thresholds finds the byte with one comparison.
/// Branch-free in the hot path; the tables live as long as the instance (shared ones forever).
public final class ODToByte: @unchecked Sendable {
    let io: Double
    /// thresholds[k] = −ln(k / Io) for k in 1…255; thresholds[0] = +∞ (never step below 0).
    let thresholds: UnsafeMutablePointer<Double>
    let table: UnsafeMutablePointer<UInt8>
    let bins: Int
    let start: Double
    let scale: Double
    /// The start of the last bin: larger x all map to 0.
    let last: Double

    /// `rounding`: ⌊Io·e^(−x) + ½⌋ (round to nearest) instead of truncation.
    public init(io: Double, rounding: Bool = false) {
        self.io = io
        let offset = rounding ? 0.5 : 0
        thresholds = .allocate(capacity: 256)
        thresholds[0] = .infinity
        for k in 1...255 { thresholds[k] = -log((Double(k) - offset) / io) }
        // Gaps tₖ − tₖ₊₁ = ln((k+1)/k) ≥ ln(256/255) ≈ 0.0039; bins of 1/1024 hold at most one threshold.
        scale = 1024
        start = thresholds[255] - 1.0 / 1024
        let end = thresholds[1] + 1.0 / 1024
        bins = Int(((end - start) * scale).rounded(.up)) + 1
        last = start + Double(bins - 1) / scale
        table = .allocate(capacity: bins)
        let t = Array(UnsafeBufferPointer(start: thresholds, count: 256))
        for b in 0..<bins { table[b] = Self.exact(start + Double(b) / scale, t) }
    }

    deinit {
        thresholds.deallocate()
        table.deallocate()
    }

    static func exact(_ x: Double, _ t: [Double]) -> UInt8 {
        // Largest k with x ≤ tₖ (t decreasing), 255 when x ≤ t₂₅₅, 0 when x > t₁.
        var lo = 0, hi = 255
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if x <= t[mid] { lo = mid } else { hi = mid - 1 }
        }
        return UInt8(lo)
    }

    /// The output byte for optical density x; NaN maps to 0.
    @inline(__always) public func byte(_ x: Double) -> UInt8 {
        let xc = x.isNaN ? last : Swift.min(Swift.max(x, start), last)
        let k = table[Int((xc - start) * scale)]
        return k &- (xc > thresholds[Int(k)] ? 1 : 0)
    }
}
