/* Internal declarations shared by the core, the operators and the kernels. */
#ifndef SK_INTERNAL_H
#define SK_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "sparsekern.h"

#if defined(__GNUC__)
#define SK_INLINE static inline __attribute__((always_inline))
#define SK_RESTRICT __restrict__
#else
#define SK_INLINE static inline
#define SK_RESTRICT
#endif

/* A microkernel computes rows [row_begin, row_end) of Y[:, 0:n] = W @ X[:, 0:n] (+ bias).
 * It handles any n >= 1, any row lengths (empty rows write bias or 0), reads
 * nothing past the arrays' ends and writes only Y[row_begin:row_end, 0:n].
 * Non-finite inputs are the operator's business, not the kernel's. */
typedef void (*sk_f32_spmm_unstructured_ukernel)(
    const sk_csr_f32 *w, int64_t row_begin, int64_t row_end,
    const float *x, int64_t n, int64_t ldx,
    const float *bias, float *y, int64_t ldy);

void sk_f32_spmm_unstructured_scalar(const sk_csr_f32 *w, int64_t row_begin, int64_t row_end,
                                     const float *x, int64_t n, int64_t ldx,
                                     const float *bias, float *y, int64_t ldy);
#if defined(SK_HAVE_AVX2)
void sk_f32_spmm_unstructured_avx2(const sk_csr_f32 *w, int64_t row_begin, int64_t row_end,
                                   const float *x, int64_t n, int64_t ldx,
                                   const float *bias, float *y, int64_t ldy);
#endif
#if defined(SK_HAVE_AVX512)
void sk_f32_spmm_unstructured_avx512(const sk_csr_f32 *w, int64_t row_begin, int64_t row_end,
                                     const float *x, int64_t n, int64_t ldx,
                                     const float *bias, float *y, int64_t ldy);
#endif

/* Dispatch: the ISA in use (after detection, SPARSEKERN_ISA and sk_set_isa). */
int sk_isa_current(void);
int sk_isa_supported(int isa);
int sk_threads_current(void);

/* Column index of entry j of a compressed row array with 16- or 32-bit indices. */
SK_INLINE int64_t sk_col_at(const void *col_idx, int32_t idx_bits, int64_t j) {
    return idx_bits == 16 ? (int64_t)((const uint16_t *)col_idx)[j]
                          : (int64_t)((const int32_t *)col_idx)[j];
}

#endif /* SK_INTERNAL_H */
