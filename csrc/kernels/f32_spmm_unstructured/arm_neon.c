/* NEON variant (baseline on AArch64) of the unstructured SpMM: the shared 128-bit body
 * (simd128_body.h) over the NEON side of csrc/core/simd128.h. */
#include "simd128.h"

#define SK_SPMM_U_FN sk_f32_spmm_unstructured_neon
#define SK_SPMM_U_TILING sk_f32_spmm_unstructured_tiling_neon
#include "simd128_body.h"
