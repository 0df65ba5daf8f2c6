/* Internal to the f32_conv2d_sparse family: the decoded taps and the microkernel type. */
#ifndef SK_CONV_INTERNAL_H
#define SK_CONV_INTERNAL_H

#include "internal.h"

/* One stored weight, decoded by the operator for one input layout. The kernel reads
 * input row iy = oy*stride_h + dy (valid when 0 <= iy < h) at xb + off + iy*ld, and
 * output column ox reads column ox + dx of that row (valid when 0 <= ox + dx < width).
 * Strided convolutions read a column-phase plane (see the operator), so the kernels
 * only ever move along a row with unit stride. */
typedef struct {
    int64_t off;
    int64_t dy;
    int32_t ld;
    int32_t width;
    int32_t dx;
    int32_t col; /* the tap's row of the mask table (the operator's choice) */
} sk_conv_tap;

/* A microkernel (its declarations below use the function type, so that every ISA's
 * definition is checked against one signature). Output rows: channels [co_begin, co_end) of one image, y points at that image's
 * output [c_out, h_out, w_out]; values/row_ptr/taps cover every channel.
 * masks[taps[p].col * nvec + v] (nvec = ceil(w_out / 16)) has bit i set when output
 * column 16*v + i exists and tap p's input column for it exists (AVX-512 uses it; the
 * operator passes NULL to the others, which ignore it). */
typedef void sk_f32_conv2d_sparse_ukernel_fn(const float *values, const int64_t *row_ptr,
                                             const sk_conv_tap *taps, int64_t co_begin,
                                             int64_t co_end, const float *xb, int64_t h,
                                             int64_t stride_h, int64_t oy_begin, int64_t oy_end,
                                             int64_t h_out, int64_t w_out, const float *bias,
                                             float *y, const uint16_t *masks, int64_t nvec);
typedef sk_f32_conv2d_sparse_ukernel_fn *sk_f32_conv2d_sparse_ukernel;

sk_f32_conv2d_sparse_ukernel_fn sk_f32_conv2d_sparse_scalar;
extern const sk_tiling sk_f32_conv2d_sparse_tiling_scalar;
#if defined(SK_HAVE_AVX2)
sk_f32_conv2d_sparse_ukernel_fn sk_f32_conv2d_sparse_avx2;
extern const sk_tiling sk_f32_conv2d_sparse_tiling_avx2;
#endif
#if defined(SK_HAVE_NEON)
sk_f32_conv2d_sparse_ukernel_fn sk_f32_conv2d_sparse_neon;
extern const sk_tiling sk_f32_conv2d_sparse_tiling_neon;
#endif
#if defined(SK_HAVE_WASMSIMD)
sk_f32_conv2d_sparse_ukernel_fn sk_f32_conv2d_sparse_wasmsimd;
extern const sk_tiling sk_f32_conv2d_sparse_tiling_wasmsimd;
#endif
#if defined(SK_HAVE_AVX512)
int sk_f32_conv2d_nonfinite_avx512(const float *x, int64_t n);
sk_f32_conv2d_sparse_ukernel_fn sk_f32_conv2d_sparse_avx512;
extern const sk_tiling sk_f32_conv2d_sparse_tiling_avx512;
#endif

/* Valid output columns [lo, hi) of a tap (may be empty: hi <= lo). */
SK_INLINE void sk_conv_tap_cols(const sk_conv_tap *t, int64_t w_out, int64_t *lo, int64_t *hi) {
    const int64_t a = -(int64_t)t->dx, b = (int64_t)t->width - t->dx;
    *lo = a > 0 ? a : 0;
    *hi = b < w_out ? b : w_out;
}

#endif /* SK_CONV_INTERNAL_H */
