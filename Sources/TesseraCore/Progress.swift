import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Reports progress of long work on stderr: a live, rewritten line on a terminal;
/// a plain line every `interval` seconds otherwise; nothing when `quiet` (CI) is set.
public final class ProgressReporter: @unchecked Sendable {
    private let lock = NSLock()
    private let label: String
    private let unit: String
    private let total: Int?
    private let start = Date()
    private var lastPrint = Date.distantPast
    private let isTerminal: Bool
    private let interval: TimeInterval
    private let quiet: Bool
    private var done = 0
    private var extra = ""

    public init(label: String, unit: String, total: Int? = nil, quiet: Bool = false) {
        self.label = label
        self.unit = unit
        self.total = total
        self.isTerminal = isatty(STDERR_FILENO) != 0
        self.quiet = quiet || (ProcessInfo.processInfo.environment["CI"] != nil && isatty(STDERR_FILENO) == 0)
        self.interval = isTerminal ? 0.25 : 10
    }

    /// Adds `count` finished units; `status` replaces the free-text part of the line.
    public func advance(by count: Int = 1, status: String? = nil) {
        lock.lock(); defer { lock.unlock() }
        done += count
        if let status { extra = status }
        let now = Date()
        if now.timeIntervalSince(lastPrint) >= interval {
            lastPrint = now
            emit(final: false)
        }
    }

    public func finish(status: String? = nil) {
        lock.lock(); defer { lock.unlock() }
        if let status { extra = status }
        emit(final: true)
    }

    private func emit(final: Bool) {
        guard !quiet else { return }
        let elapsed = max(Date().timeIntervalSince(start), 1e-6)
        let rate = Double(done) / elapsed
        var line = "\(label): \(done)"
        if let total { line += "/\(total)" }
        line += " \(unit), \(String(format: "%.0f", rate)) \(unit)/s"
        if let total, rate > 0, !final, done < total {
            line += ", ETA \(Self.duration(Double(total - done) / rate))"
        }
        line += ", elapsed \(Self.duration(elapsed))"
        if !extra.isEmpty { line += " | \(extra)" }
        if isTerminal {
            FileHandle.standardError.write(Data(("\r\u{1B}[K" + line + (final ? "\n" : "")).utf8))
        } else {
            FileHandle.standardError.write(Data((line + "\n").utf8))
        }
    }

    public static func duration(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        if s >= 3600 { return String(format: "%dh%02dm", s / 3600, (s % 3600) / 60) }
        if s >= 60 { return String(format: "%dm%02ds", s / 60, s % 60) }
        return "\(s)s"
    }
}
