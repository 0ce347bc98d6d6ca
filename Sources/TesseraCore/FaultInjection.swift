import Foundation

/// Test-only fault points, switched on by the environment so that the fault-injection tests can
/// exercise the real binary: `TESSERA_FAULT_HANG=open:SUBSTRING` or `read:SUBSTRING` makes the
/// opening or tile reading of any slide whose path contains SUBSTRING hang (as a stuck network
/// mount or a pathological file would). Unset in normal use; costs one dictionary lookup per slide.
public enum FaultInjection {
    public enum Stage: String, Sendable { case open, read }

    private static let hang: (Stage, String)? = {
        guard let spec = ProcessInfo.processInfo.environment["TESSERA_FAULT_HANG"],
              let colon = spec.firstIndex(of: ":"),
              let stage = Stage(rawValue: String(spec[..<colon])) else { return nil }
        return (stage, String(spec[spec.index(after: colon)...]))
    }()

    /// Blocks the calling thread for an hour when a hang is injected for this stage and path.
    public static func maybeHang(_ stage: Stage, path: String) {
        guard let (s, needle) = hang, s == stage, path.contains(needle) else { return }
        sleep(3600)
    }
}
