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
public struct ODToByte: Sendable {
    let io: Double
    /// thresholds[k] = −ln(k / Io) for k in 1…255; index 0 unused.
    let thresholds: [Double]
    let start: Double
    let scale: Double
    let table: [UInt8]
    /// Past the last bin every x maps to 0.
    let limit: Double

    /// `rounding`: ⌊Io·e^(−x) + ½⌋ (round to nearest) instead of truncation.
    public init(io: Double, rounding: Bool = false) {
        self.io = io
        let offset = rounding ? 0.5 : 0
        var t = [Double](repeating: .infinity, count: 256)
        for k in 1...255 { t[k] = -log((Double(k) - offset) / io) }
        thresholds = t
        // Gaps tₖ − tₖ₊₁ = ln((k+1)/k) ≥ ln(256/255) ≈ 0.0039; bins of 1/1024 hold at most one threshold.
        start = t[255] - 1.0 / 1024
        scale = 1024
        let end = t[1] + 1.0 / 1024
        let bins = Int(((end - start) * scale).rounded(.up)) + 1
        var table = [UInt8](repeating: 0, count: bins)
        for b in 0..<bins {
            let x = start + Double(b) / scale
            table[b] = Self.exact(x, t)
        }
        self.table = table
        limit = start + Double(bins - 1) / scale
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

    /// The output byte for optical density x (x must be finite).
    @inline(__always) public func byte(_ x: Double) -> UInt8 {
        if x <= start { return 255 }
        // Also catches NaN (no comparison holds), which must never reach Int().
        guard x < limit else { return 0 }
        let b = Int((x - start) * scale)
        let k = table[b]
        return k > 0 && x > thresholds[Int(k)] ? k - 1 : k
    }
}
