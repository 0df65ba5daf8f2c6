/* Internal declarations of the activation-sparse family (f32_act_linear).
 *
 * The operator (csrc/ops/f32_act_linear.c) selects the active input channels of
 * each row of x and compacts them into a list; a microkernel then streams the
 * weight rows of those channels only:
 *
 *   y[i*ldy + j] += sum_{c < nact} coef[c*n + i] * wt[idx[c]*ldw + j]   for j < len, i < n
 *
 * wt points into W transposed (row k = W[:, k], ldw floats apart) at the first column
 * of the tile. coef holds the sparsified
 * input values (0 for a row that does not use channel idx[c], union mode only).
 * With n == 1 every listed channel is multiplied (0 * inf = NaN as in dense BLAS);
 * with n > 1 a kernel may skip a row whose coefficients are 0 (the operator uses
 * union mode only for weights that are all finite, where that changes nothing).
 * The kernel reads nothing outside wt rows idx[0..nact) columns [0, len), and writes
 * only y[0:n, 0:len). */
#ifndef SK_ACT_INTERNAL_H
#define SK_ACT_INTERNAL_H

#include "internal.h"

typedef void sk_f32_act_ukernel_fn(const float *wt, int64_t ldw, const int32_t *idx,
                                   const float *coef, int64_t nact, int64_t n, int64_t len,
                                   float *y, int64_t ldy);
typedef sk_f32_act_ukernel_fn *sk_f32_act_ukernel;

sk_f32_act_ukernel_fn sk_f32_act_linear_scalar;
extern const sk_tiling sk_f32_act_linear_tiling_scalar;
#if defined(SK_HAVE_AVX2)
sk_f32_act_ukernel_fn sk_f32_act_linear_avx2;
extern const sk_tiling sk_f32_act_linear_tiling_avx2;
#endif
#if defined(SK_HAVE_NEON)
sk_f32_act_ukernel_fn sk_f32_act_linear_neon;
extern const sk_tiling sk_f32_act_linear_tiling_neon;
#endif
#if defined(SK_HAVE_WASMSIMD)
sk_f32_act_ukernel_fn sk_f32_act_linear_wasmsimd;
extern const sk_tiling sk_f32_act_linear_tiling_wasmsimd;
#endif
#if defined(SK_HAVE_AVX512)
sk_f32_act_ukernel_fn sk_f32_act_linear_avx512;
extern const sk_tiling sk_f32_act_linear_tiling_avx512;
#endif

#endif /* SK_ACT_INTERNAL_H */
