/* NEON variant of the activation-sparse microkernel (see act_internal.h): the shared
 * 128-bit body (simd128_body.h) over the NEON side of csrc/core/simd128.h (fmla,
 * fmla by element, ld1 of 4 registers, prefetches, 8-column steps for 4 rows). */
#include "simd128.h"

#define SK_ACT_FN sk_f32_act_linear_neon
#define SK_ACT_TILING sk_f32_act_linear_tiling_neon
#include "simd128_body.h"
