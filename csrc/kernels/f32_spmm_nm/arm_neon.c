/* NEON (AArch64 baseline) variant of the N:M SpMM: the shared 128-bit body
 * (simd128_body.h, plan in simd128_plan.h) over the NEON side of csrc/core/simd128.h
 * (window lookups by vqtbl2q/vqtbl4q_u8, 64-column tiles). */
#include "simd128.h"

#define SK_NM_FN sk_f32_spmm_nm_neon
#define SK_NM_TILING sk_f32_spmm_nm_tiling_neon
#include "simd128_body.h"
