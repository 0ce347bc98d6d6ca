// OpenBLAS: CBLAS plus the few LAPACK routines Tessera calls (Fortran ABI; Debian ships no lapacke.h
// with OpenBLAS). Only TesseraCore's linear-algebra wrappers see this module.
#include <cblas.h>

// Symmetric eigen-decomposition (divide and conquer), as numpy.linalg.eigh uses.
void dsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w,
             double *work, const int *lwork, int *iwork, const int *liwork, int *info);

char *openblas_get_config(void);
void openblas_set_num_threads(int num_threads);
