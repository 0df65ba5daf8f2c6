/* WebAssembly SIMD128 variant of the unstructured SpMM: the shared 128-bit body
 * (simd128_body.h) over the SIMD128 side of csrc/core/simd128.h (no FMA: a multiply
 * and an add per step). */
#include "simd128.h"

#define SK_SPMM_U_FN sk_f32_spmm_unstructured_wasmsimd
#define SK_SPMM_U_TILING sk_f32_spmm_unstructured_tiling_wasmsimd
#include "simd128_body.h"
