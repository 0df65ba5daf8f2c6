/* Scalar reference: the semantics every ISA variant must match. */
#include "nm_internal.h"

void sk_f32_spmm_nm_scalar(const sk_nm_f32 *w, int64_t r0, int64_t r1, const float *x, int64_t n,
                           int64_t ldx, const float *bias, float *y, int64_t ldy) {
    const int64_t slots = sk_nm_groups(w) * w->n;
    for (int64_t r = r0; r < r1; ++r) {
        float *yrow = y + r * ldy;
        const float b = bias ? bias[r] : 0.0f;
        for (int64_t c = 0; c < n; ++c) yrow[c] = b;
        sk_nm_slots_scalar(w, r, 0, slots, x, n, ldx, yrow);
    }
}

/* one column, one slot and one row at a time */
const sk_tiling sk_f32_spmm_nm_tiling_scalar = {
    .n_tiles = {1},
    .k_step = 1,
    .k_step1 = 1,
    .row_block = 1,
    .row_block1 = 1,
};
