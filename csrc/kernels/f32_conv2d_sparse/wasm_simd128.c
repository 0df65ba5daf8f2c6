/* WebAssembly SIMD128 variant of the direct sparse convolution: the shared 128-bit body
 * (simd128_body.h) over the SIMD128 side of csrc/core/simd128.h (chunks of up to 16
 * columns, 2 rows x 4 vectors of accumulators for the 16 vector registers of x86-64
 * hosts; multiply + add, SIMD128 having no FMA; windows by i8x16.swizzle). */
#include "simd128.h"

#define SK_CONV_FN sk_f32_conv2d_sparse_wasmsimd
#define SK_CONV_TILING sk_f32_conv2d_sparse_tiling_wasmsimd
#include "simd128_body.h"
