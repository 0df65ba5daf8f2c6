/* Scalar reference: the semantics every ISA variant must match. */
#include "internal.h"

SK_INLINE void spmm_rows(const sk_csr_f32 *w, int64_t r0, int64_t r1, const float *x, int64_t n,
                         int64_t ldx, const float *bias, float *y, int64_t ldy, int wide) {
    const float *SK_RESTRICT values = w->values;
    for (int64_t m = r0; m < r1; ++m) {
        float *SK_RESTRICT yrow = y + m * ldy;
        const float b = bias ? bias[m] : 0.0f;
        for (int64_t j = 0; j < n; ++j) yrow[j] = b;
        for (int64_t p = w->row_ptr[m]; p < w->row_ptr[m + 1]; ++p) {
            const float v = values[p];
            const float *SK_RESTRICT xrow = x + sk_col_at(w->col_idx, wide ? 32 : 16, p) * ldx;
            for (int64_t j = 0; j < n; ++j) yrow[j] += v * xrow[j];
        }
    }
}

void sk_f32_spmm_unstructured_scalar(const sk_csr_f32 *w, int64_t r0, int64_t r1, const float *x,
                                     int64_t n, int64_t ldx, const float *bias, float *y,
                                     int64_t ldy) {
    if (w->idx_bits == 16) spmm_rows(w, r0, r1, x, n, ldx, bias, y, ldy, 0);
    else spmm_rows(w, r0, r1, x, n, ldx, bias, y, ldy, 1);
}

/* one column, one nonzero and one row at a time */
const sk_tiling sk_f32_spmm_unstructured_tiling_scalar = {
    .n_tiles = {1},
    .k_step = 1,
    .k_step1 = 1,
    .row_block = 1,
    .row_block1 = 1,
};
