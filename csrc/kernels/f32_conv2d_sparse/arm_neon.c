/* NEON variant of the direct sparse convolution: the shared 128-bit body
 * (simd128_body.h) over the NEON side of csrc/core/simd128.h (chunks of up to 32
 * columns, 2 rows x 8 vectors of accumulators; whole-chunk loads by ld1 of 4 registers;
 * windows by tbl). */
#include "simd128.h"

#define SK_CONV_FN sk_f32_conv2d_sparse_neon
#define SK_CONV_TILING sk_f32_conv2d_sparse_tiling_neon
#include "simd128_body.h"
