/* The x86 vector API over which the AVX2 (x86_avx2.c) and AVX-512 (x86_avx512.c) kernels
 * of every family share one body (csrc/kernels/<family>/x86_body.h), as the NEON and
 * SIMD128 ones share simd128_body.h over simd128.h. Everything is static inline over the
 * intrinsics, so a body compiles to the code the intrinsics written out would.
 *
 * An ISA file defines SK_X86_WIDTH (256: AVX2 + FMA + F16C; 512: AVX-512 F, CD, BW, DQ, VL,
 * whose files have the AVX2 flags too), includes this header, then its family's body.
 *
 * Types:
 *   sk_v8f, sk_m8     8 x f32 in a ymm, and its lane mask (a vector, all ones in a
 *                     selected lane); in every x86 ISA file (AVX-512 files use it where
 *                     8 lanes are faster, as the batch-1 gathers)
 *   sk_v16f, sk_m16   16 x f32 in a zmm, and its lane mask (a mask register); width 512
 *   sk_vf, sk_vmask   the file's own vector and mask: one of the above, by SK_X86_WIDTH
 * Per-width constants: SK_VF_LANES (floats per sk_vf), SK_VF_REGS (vector registers,
 * what the bodies size their tiles by), SK_VF_MASK_REGS (1 where masks are registers:
 * a mask costs one kmov, a masked load no more than a plain one).
 * SK_VF_FN(name): name##_avx2 or name##_avx512, the file's exported kernels.
 *
 * Ops, for each type T in v8f, v16f and (by width) vf:
 *   sk_T_load(p), sk_T_store(p, v)          unaligned
 *   sk_T_load_mask(p, m)                    lanes outside m read as 0 and their memory is
 *   sk_T_store_mask(p, m, v)                never accessed (a tail never faults)
 *   sk_T_zero(), sk_T_splat(f)
 *   sk_T_add(a, b), sk_T_mul(a, b), sk_T_fma(acc, a, b) = acc + a * b (fused)
 *   sk_T_hsum(v)                            sum of the lanes
 *   sk_T_bcast4(p)                          p[0..4) repeated in every 128-bit lane
 *   sk_T_splat_lane4(v, l)                  (macro, l a literal) lane l of each 128-bit
 *                                           lane to all four of its lanes
 * and for the masks M in m8, m16, vmask:
 *   sk_M_first(r)   lanes [0, r), for 0 <= r < 32 (r >= the lane count: all; sk_m8_first
 *                   takes any int: r <= 0 gives none)
 *   sk_M_none()     no lane (the tail argument of a tile that has none)
 * sk_v8f only: sk_v8f_make(8 floats) (lane 0 first), sk_v8f_and_mask(v, m) (v where m is
 * set, 0 elsewhere), sk_m8_range(lo, hi) (lanes i with lo <= i < hi; -lo and hi - lo
 * fit int32). sk_v16f only: sk_m16_from_bits(u) (lane i where bit i of u is set).
 * Not vectors: sk_prefetch(p) (into L1), sk_prefetch_l2(p). */
#ifndef SK_X86_VEC_H
#define SK_X86_VEC_H

#include <immintrin.h>

#include "internal.h"

#if !defined(SK_X86_WIDTH) || (SK_X86_WIDTH != 256 && SK_X86_WIDTH != 512)
#error "x86_vec.h: define SK_X86_WIDTH as 256 (AVX2 + FMA) or 512 (AVX-512) first"
#endif

SK_INLINE void sk_prefetch(const void *p) { _mm_prefetch((const char *)p, _MM_HINT_T0); }
SK_INLINE void sk_prefetch_l2(const void *p) { _mm_prefetch((const char *)p, _MM_HINT_T1); }

/* ------------------------------------------------------------ 8 x f32 (AVX2) */

typedef __m256 sk_v8f;
typedef __m256i sk_m8;

SK_INLINE sk_m8 sk_m8_first(int64_t r) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)r), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
SK_INLINE sk_m8 sk_m8_none(void) { return _mm256_setzero_si256(); }
SK_INLINE sk_m8 sk_m8_range(int64_t lo, int64_t hi) {
    const __m256i idx =
        _mm256_add_epi32(_mm256_set1_epi32((int)-lo), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    const __m256i ge = _mm256_cmpgt_epi32(idx, _mm256_set1_epi32(-1));
    const __m256i lt = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(hi - lo)), idx);
    return _mm256_and_si256(ge, lt);
}

SK_INLINE sk_v8f sk_v8f_load(const float *p) { return _mm256_loadu_ps(p); }
SK_INLINE void sk_v8f_store(float *p, sk_v8f v) { _mm256_storeu_ps(p, v); }
SK_INLINE sk_v8f sk_v8f_load_mask(const float *p, sk_m8 m) { return _mm256_maskload_ps(p, m); }
SK_INLINE void sk_v8f_store_mask(float *p, sk_m8 m, sk_v8f v) { _mm256_maskstore_ps(p, m, v); }
SK_INLINE sk_v8f sk_v8f_zero(void) { return _mm256_setzero_ps(); }
SK_INLINE sk_v8f sk_v8f_splat(float f) { return _mm256_set1_ps(f); }
SK_INLINE sk_v8f sk_v8f_make(float a, float b, float c, float d, float e, float f, float g,
                             float h) {
    return _mm256_setr_ps(a, b, c, d, e, f, g, h);
}
SK_INLINE sk_v8f sk_v8f_add(sk_v8f a, sk_v8f b) { return _mm256_add_ps(a, b); }
SK_INLINE sk_v8f sk_v8f_mul(sk_v8f a, sk_v8f b) { return _mm256_mul_ps(a, b); }
SK_INLINE sk_v8f sk_v8f_fma(sk_v8f acc, sk_v8f a, sk_v8f b) { return _mm256_fmadd_ps(a, b, acc); }
SK_INLINE sk_v8f sk_v8f_and_mask(sk_v8f v, sk_m8 m) {
    return _mm256_and_ps(v, _mm256_castsi256_ps(m));
}
SK_INLINE float sk_v8f_hsum(sk_v8f v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
SK_INLINE sk_v8f sk_v8f_bcast4(const float *p) { return _mm256_broadcast_ps((const __m128 *)p); }
#define sk_v8f_splat_lane4(v, l) _mm256_permute_ps((v), (l) * 0x55)

/* ---------------------------------------------------------- 16 x f32 (AVX-512) */

#if SK_X86_WIDTH == 512
typedef __m512 sk_v16f;
typedef __mmask16 sk_m16;

SK_INLINE sk_m16 sk_m16_first(int64_t r) { return (sk_m16)((1u << r) - 1u); }
SK_INLINE sk_m16 sk_m16_none(void) { return (sk_m16)0; }
SK_INLINE sk_m16 sk_m16_from_bits(unsigned u) { return (sk_m16)u; }

SK_INLINE sk_v16f sk_v16f_load(const float *p) { return _mm512_loadu_ps(p); }
SK_INLINE void sk_v16f_store(float *p, sk_v16f v) { _mm512_storeu_ps(p, v); }
SK_INLINE sk_v16f sk_v16f_load_mask(const float *p, sk_m16 m) {
    return _mm512_maskz_loadu_ps(m, p);
}
SK_INLINE void sk_v16f_store_mask(float *p, sk_m16 m, sk_v16f v) { _mm512_mask_storeu_ps(p, m, v); }
SK_INLINE sk_v16f sk_v16f_zero(void) { return _mm512_setzero_ps(); }
SK_INLINE sk_v16f sk_v16f_splat(float f) { return _mm512_set1_ps(f); }
SK_INLINE sk_v16f sk_v16f_add(sk_v16f a, sk_v16f b) { return _mm512_add_ps(a, b); }
SK_INLINE sk_v16f sk_v16f_mul(sk_v16f a, sk_v16f b) { return _mm512_mul_ps(a, b); }
SK_INLINE sk_v16f sk_v16f_fma(sk_v16f acc, sk_v16f a, sk_v16f b) {
    return _mm512_fmadd_ps(a, b, acc);
}
SK_INLINE float sk_v16f_hsum(sk_v16f v) { return _mm512_reduce_add_ps(v); }
SK_INLINE sk_v16f sk_v16f_bcast4(const float *p) { return _mm512_broadcast_f32x4(_mm_loadu_ps(p)); }
#define sk_v16f_splat_lane4(v, l) _mm512_permute_ps((v), (l) * 0x55)
#endif

/* ------------------------------------------------------ the file's own vector */

#if SK_X86_WIDTH == 512
#define SK_VF_LANES 16
#define SK_VF_REGS 32
#define SK_VF_MASK_REGS 1
#define SK_VF_FN(name) name##_avx512
#define SK_VF_OP(op) sk_v16f_##op
#define SK_VMASK_OP(op) sk_m16_##op
typedef sk_v16f sk_vf;
typedef sk_m16 sk_vmask;
#else
#define SK_VF_LANES 8
#define SK_VF_REGS 16
#define SK_VF_MASK_REGS 0
#define SK_VF_FN(name) name##_avx2
#define SK_VF_OP(op) sk_v8f_##op
#define SK_VMASK_OP(op) sk_m8_##op
typedef sk_v8f sk_vf;
typedef sk_m8 sk_vmask;
#endif

#define sk_vmask_first SK_VMASK_OP(first)
#define sk_vmask_none SK_VMASK_OP(none)
#define sk_vf_load SK_VF_OP(load)
#define sk_vf_store SK_VF_OP(store)
#define sk_vf_load_mask SK_VF_OP(load_mask)
#define sk_vf_store_mask SK_VF_OP(store_mask)
#define sk_vf_zero SK_VF_OP(zero)
#define sk_vf_splat SK_VF_OP(splat)
#define sk_vf_add SK_VF_OP(add)
#define sk_vf_mul SK_VF_OP(mul)
#define sk_vf_fma SK_VF_OP(fma)
#define sk_vf_hsum SK_VF_OP(hsum)
#define sk_vf_bcast4 SK_VF_OP(bcast4)
#define sk_vf_splat_lane4 SK_VF_OP(splat_lane4)

#endif /* SK_X86_VEC_H */
