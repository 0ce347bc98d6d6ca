import CBLAS

/// The one door to OpenBLAS's sgemm: row-major C = alpha·op(A)·op(B) + beta·C with explicit
/// leading dimensions, so callers can multiply strided sub-blocks (a chunk of a batch) in place.
enum BLAS {
    /// Floating-point operations issued through `sgemm` (benchmarks read it to report the fraction
    /// of the machine's sgemm ceiling a training step reaches). Only the training thread calls sgemm.
    nonisolated(unsafe) static var flops: Double = 0

    static func sgemm(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int, alpha: Float = 1,
                      a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                      beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
        if m == 0 || n == 0 { return }
        flops += 2 * Double(m) * Double(n) * Double(k)
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    static func sdot(_ n: Int, _ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>) -> Float {
        cblas_sdot(Int32(n), x, 1, y, 1)
    }

    /// Threads OpenBLAS uses per product. One per process is fastest on a shared machine
    /// (ARCHITECTURE.md: two spinning BLAS threads collapse when the other core is busy).
    static func setThreads(_ n: Int) { openblas_set_num_threads(Int32(max(1, n))) }
}
