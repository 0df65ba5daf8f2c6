/* WebAssembly SIMD128 variant of the activation-sparse microkernel (see
 * act_internal.h): the shared 128-bit body (simd128_body.h) over the SIMD128 side of
 * csrc/core/simd128.h (multiply + add: SIMD128 has no FMA; no prefetch instruction;
 * 4-column steps for 4 rows, whose 16 splatted coefficients fill a 16-register host). */
#include "simd128.h"

#define SK_ACT_FN sk_f32_act_linear_wasmsimd
#define SK_ACT_TILING sk_f32_act_linear_tiling_wasmsimd
#include "simd128_body.h"
