/* Scalar reference of the activation-sparse microkernel: the semantics every ISA
 * variant must match (see act_internal.h). */
#include "act_internal.h"

void sk_f32_act_linear_scalar(const float *wt, int64_t ldw, const int32_t *idx, const float *coef,
                              int64_t nact, int64_t n, int64_t len, float *y, int64_t ldy) {
    for (int64_t c = 0; c < nact; ++c) {
        const float *SK_RESTRICT w = wt + (int64_t)idx[c] * ldw;
        for (int64_t i = 0; i < n; ++i) {
            const float a = coef[c * n + i];
            if (n > 1 && a == 0.0f) continue; /* a row that does not use this channel (union) */
            float *SK_RESTRICT yr = y + i * ldy;
            for (int64_t j = 0; j < len; ++j) yr[j] += a * w[j];
        }
    }
}

/* one channel, one row and one output at a time */
const sk_tiling sk_f32_act_linear_tiling_scalar = {
    .n_tiles = {1},
    .k_step = 1,
    .k_step1 = 1,
    .row_block = 1,
    .row_block1 = 1,
};
