import Foundation

/// CPU time of the whole process (all threads), for benchmarks that must be fair on a shared machine
/// where wall-clock time depends on what else runs.
public enum CPUClock {
    public static func processSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }
}
