import CBLAS

/// Small dense linear algebra on OpenBLAS's LAPACK (no hand-written eigen-solvers).
public enum LinearAlgebra {
    /// Eigen-decomposition of a symmetric n×n matrix (row-major; only the lower triangle is read), by
    /// LAPACK dsyevd as numpy.linalg.eigh does: eigenvalues ascending, eigenvectors as the columns of
    /// the returned row-major matrix. Nil if LAPACK reports failure or the input is not finite.
    public static func symmetricEigen(_ matrix: [Double], n: Int) -> (values: [Double], vectors: [Double])? {
        guard matrix.count == n * n, n > 0, matrix.allSatisfy(\.isFinite) else { return nil }
        // Row-major symmetric = column-major symmetric; LAPACK's "L" then reads our upper triangle,
        // which equals the lower one.
        var a = matrix
        var w = [Double](repeating: 0, count: n)
        var nn = Int32(n), lda = Int32(n), info: Int32 = 0
        var lwork: Int32 = -1, liwork: Int32 = -1
        var workQuery = 0.0
        var iworkQuery: Int32 = 0
        let jobz: CChar = 86 /* V */, uplo: CChar = 76 /* L */
        var j = jobz, u = uplo
        dsyevd_(&j, &u, &nn, &a, &lda, &w, &workQuery, &lwork, &iworkQuery, &liwork, &info)
        guard info == 0 else { return nil }
        lwork = Int32(workQuery)
        liwork = iworkQuery
        var work = [Double](repeating: 0, count: Int(lwork))
        var iwork = [Int32](repeating: 0, count: Int(liwork))
        dsyevd_(&j, &u, &nn, &a, &lda, &w, &work, &lwork, &iwork, &liwork, &info)
        guard info == 0 else { return nil }
        // `a` now holds the eigenvectors column-major: a[col * n + row]. Return row-major.
        var vectors = [Double](repeating: 0, count: n * n)
        for col in 0..<n { for row in 0..<n { vectors[row * n + col] = a[col * n + row] } }
        return (w, vectors)
    }

    /// OpenBLAS's build configuration (for logs and benchmarks).
    public static var blasConfig: String { String(cString: openblas_get_config()) }

    /// Caps OpenBLAS's own thread pool (one BLAS thread per worker is best on a shared box).
    public static func setBLASThreads(_ n: Int) { openblas_set_num_threads(Int32(n)) }
}
