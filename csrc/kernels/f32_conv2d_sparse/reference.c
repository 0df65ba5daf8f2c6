/* Scalar reference of the direct sparse convolution: the semantics every ISA variant
 * must match. For each output row: bias, then every stored weight of the channel adds
 * weight * (its shifted input row) over the columns where that row exists. */
#include "conv_internal.h"

void sk_f32_conv2d_sparse_scalar(const float *values, const int64_t *row_ptr,
                                 const sk_conv_tap *taps, int64_t co_begin, int64_t co_end,
                                 const float *xb, int64_t h, int64_t stride_h, int64_t oy_begin,
                                 int64_t oy_end, int64_t h_out, int64_t w_out, const float *bias,
                                 float *y, const uint16_t *masks, int64_t nvec) {
    for (int64_t co = co_begin; co < co_end; ++co) {
        const float b = bias ? bias[co] : 0.0f;
        for (int64_t oy = oy_begin; oy < oy_end; ++oy) {
            float *SK_RESTRICT yrow = y + (co * h_out + oy) * w_out;
            for (int64_t j = 0; j < w_out; ++j) yrow[j] = b;
            for (int64_t p = row_ptr[co]; p < row_ptr[co + 1]; ++p) {
                const sk_conv_tap *t = &taps[p];
                const int64_t iy = oy * stride_h + t->dy;
                if (iy < 0 || iy >= h) continue;
                int64_t lo, hi;
                sk_conv_tap_cols(t, w_out, &lo, &hi);
                const float v = values[p];
                const float *SK_RESTRICT xr = xb + t->off + iy * t->ld + t->dx;
                for (int64_t j = lo; j < hi; ++j) yrow[j] += v * xr[j];
            }
        }
    }
}

/* one output column, one tap and one row at a time */
const sk_tiling sk_f32_conv2d_sparse_tiling_scalar = {
    .n_tiles = {1},
    .k_step = 1,
    .k_step1 = 1,
    .row_block = 1,
    .row_block1 = 1,
};
