/* sparsekern.h - the only public header of libsparsekern.
 *
 * Plain C11, no Python inside. Formats are plain structs that point at memory
 * the caller owns; entry points return status codes and never print or abort.
 *
 * The region between SK_CDEF_BEGIN and SK_CDEF_END is also read by the Python
 * binding (cffi ABI mode) as its cdef, so it must stay free of preprocessor
 * directives and of anything pycparser cannot parse.
 */
#ifndef SPARSEKERN_H
#define SPARSEKERN_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Everything declared here is exported; the library builds with hidden visibility. */
#if defined(__GNUC__)
#pragma GCC visibility push(default)
#endif

/* SK_CDEF_BEGIN */

/* Status codes. */
enum {
    SK_OK = 0,
    SK_ERR_INVALID_ARG = -1,   /* a null pointer, a negative size, a stride too small */
    SK_ERR_NOMEM = -2,
    SK_ERR_UNSUPPORTED = -3    /* an ISA this CPU or build cannot run */
};

/* Instruction-set levels, in increasing order on each architecture. */
enum {
    SK_ISA_SCALAR = 0,
    SK_ISA_AVX2 = 1,           /* AVX2 + FMA + F16C */
    SK_ISA_AVX512 = 2,         /* AVX-512 F, CD, BW, DQ, VL (OS-enabled ZMM state) */
    SK_ISA_NEON = 3,
    SK_ISA_WASMSIMD = 4,
    SK_ISA_COUNT = 5
};

/* Unstructured sparse matrix W[rows, cols] in compressed rows.
 *   row_ptr[rows + 1]  int64, row_ptr[0] == 0, non-decreasing, row_ptr[rows] == nnz
 *   col_idx[nnz]       uint16 when idx_bits == 16 (cols <= 65536), else int32;
 *                      strictly increasing within a row, each in [0, cols)
 *   values[nnz]        float32
 * The kernels trust this struct: it is validated once, when packed or loaded. */
typedef struct {
    int64_t rows;
    int64_t cols;
    int64_t nnz;
    int32_t idx_bits;
    const int64_t *row_ptr;
    const void *col_idx;
    const float *values;
} sk_csr_f32;

/* Y[rows, n] = W @ X[cols, n] (+ bias[rows], broadcast along n).
 * X and Y are row-major with leading dimensions ldx >= n and ldy >= n.
 * bias may be NULL. Non-finite values in X propagate as dense BLAS would:
 * a structural zero of W times inf or NaN gives NaN.
 * Runs on the selected ISA with the configured number of threads. */
int sk_f32_spmm_unstructured(const sk_csr_f32 *w, const float *x, int64_t n, int64_t ldx,
                             const float *bias, float *y, int64_t ldy);

/* The same with an explicit ISA variant (for tests and benchmarks). */
int sk_f32_spmm_unstructured_isa(int isa, const sk_csr_f32 *w, const float *x, int64_t n,
                                 int64_t ldx, const float *bias, float *y, int64_t ldy);

/* Configuration. The ISA in use is the best one this CPU supports, capped by
 * the environment variable SPARSEKERN_ISA (scalar|avx2|avx512|neon|wasmsimd)
 * read once at first use, and by sk_set_isa. */
const char *sk_version(void);
uint64_t sk_cpu_isa_mask(void);        /* bit i set: ISA i runs on this CPU and is compiled in */
int sk_get_isa(void);
int sk_set_isa(int isa);               /* SK_ERR_UNSUPPORTED if not in sk_cpu_isa_mask() */
const char *sk_isa_name(int isa);      /* "scalar", "avx2", ...; NULL when out of range */
int sk_isa_env_error(void);            /* nonzero if SPARSEKERN_ISA named an unknown or unsupported ISA */
int sk_get_num_threads(void);
int sk_set_num_threads(int n);         /* n >= 1; capped by what the build supports */
int sk_max_threads(void);              /* 1 when built without OpenMP */

/* SK_CDEF_END */

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#ifdef __cplusplus
}
#endif

#endif /* SPARSEKERN_H */
