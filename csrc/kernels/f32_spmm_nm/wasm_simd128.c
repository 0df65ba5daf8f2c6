/* WebAssembly SIMD128 variant of the N:M SpMM: the shared 128-bit body (simd128_body.h,
 * plan in simd128_plan.h) over the SIMD128 side of csrc/core/simd128.h (no FMA:
 * multiply, then add; window lookups by OR-ed swizzles; tiles of at most 32 columns). */
#include "simd128.h"

#define SK_NM_FN sk_f32_spmm_nm_wasmsimd
#define SK_NM_TILING sk_f32_spmm_nm_tiling_wasmsimd
#include "simd128_body.h"
