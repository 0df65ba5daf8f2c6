/* A small 128-bit vector API over which the NEON (arm_neon.c) and WebAssembly SIMD128
 * (wasm_simd128.c) kernels of every family share one body (csrc/kernels/<family>/
 * simd128_*.h). Everything is static inline; an ISA file includes this header (it picks
 * <arm_neon.h> on AArch64, <wasm_simd128.h> with -msimd128) and then its family's body.
 *
 * Types: sk_v4f (4 x f32), sk_v4u (4 x u32, also lane masks), sk_v16u8 (16 x u8). On
 * SIMD128 all three are v128_t; on NEON they are distinct, hence the sk_*_as_* casts.
 *
 * Where NEON has a faster way the op has two implementations rather than the bodies
 * forking: fma (fmla; SIMD128 multiplies then adds), fma by lane (fmla by element;
 * SIMD128 splats the lane with a shuffle), sk_v4f_load_x4 (one ld1 of 4 registers),
 * sk_v4f_lookup_n (vqtbl2q/vqtbl4q; SIMD128 swizzles each vector and ORs), the per-lane
 * shift of sk_v4u_shr_by (ushl by negated counts; SIMD128, which has no per-lane shift,
 * a multiply and a shift by 8), horizontal sum (faddp), prefetch (SIMD128: none).
 *
 * Ops that need a literal lane (NEON and SIMD128 both) are macros: sk_v4f_fma_lane,
 * sk_v4f_load_lane, sk_v4f_store_lane, sk_v4f_get_lane. Their arguments may be
 * evaluated more than once.
 *
 * SK_V4_REGS: vector registers the kernels size their tiles by (32 on AArch64; 16 for
 * SIMD128, whose engines run it on x86-64 hosts with 16 xmm registers).
 * SK_V4_PREFETCH: 1 where sk_prefetch does something.
 * SK_OPAQUE(v): hides how an integer was computed from GCC (see its comment). */
#ifndef SK_SIMD128_H
#define SK_SIMD128_H

#include <stddef.h>
#include <stdint.h>

#include "internal.h"

#if defined(__aarch64__) && defined(SK_HAVE_NEON)
#include <arm_neon.h>
#define SK_SIMD128_NEON 1
#define SK_V4_REGS 32
#define SK_V4_PREFETCH 1
typedef float32x4_t sk_v4f;
typedef uint32x4_t sk_v4u;
typedef uint8x16_t sk_v16u8;
typedef float32x4x4_t sk_v4fx4; /* .val[0..3] */
#elif defined(__wasm_simd128__)
#include <wasm_simd128.h>
#define SK_SIMD128_WASM 1
#define SK_V4_REGS 16
#define SK_V4_PREFETCH 0
typedef v128_t sk_v4f;
typedef v128_t sk_v4u;
typedef v128_t sk_v16u8;
typedef struct {
    v128_t val[4];
} sk_v4fx4;
#else
#error "simd128.h: needs AArch64 NEON (SK_HAVE_NEON) or WebAssembly SIMD128 (-msimd128)"
#endif

/* Hides how a value was computed, so that GCC keeps the address of an X row as one
 * madd instead of splitting it into mul, shift and register-offset loads, which
 * cannot pair into ldp. A no-op for SIMD128. */
#if defined(SK_SIMD128_NEON) && defined(__GNUC__)
#define SK_OPAQUE(v) __asm__("" : "+r"(v))
#else
#define SK_OPAQUE(v) ((void)0)
#endif

#if defined(SK_SIMD128_NEON)
/* ------------------------------------------------------------------- NEON */

/* casts (no instruction) */
SK_INLINE sk_v16u8 sk_v4f_as_v16u8(sk_v4f v) { return vreinterpretq_u8_f32(v); }
SK_INLINE sk_v4f sk_v16u8_as_v4f(sk_v16u8 v) { return vreinterpretq_f32_u8(v); }
SK_INLINE sk_v4u sk_v16u8_as_v4u(sk_v16u8 v) { return vreinterpretq_u32_u8(v); }
SK_INLINE sk_v16u8 sk_v4u_as_v16u8(sk_v4u v) { return vreinterpretq_u8_u32(v); }

/* f32 */
SK_INLINE sk_v4f sk_v4f_load(const float *p) { return vld1q_f32(p); }
SK_INLINE void sk_v4f_store(float *p, sk_v4f v) { vst1q_f32(p, v); }
SK_INLINE sk_v4f sk_v4f_splat(float f) { return vdupq_n_f32(f); }
SK_INLINE sk_v4f sk_v4f_load_splat(const float *p) { return vld1q_dup_f32(p); }
/* 4 registers from p (one ld1) */
SK_INLINE sk_v4fx4 sk_v4f_load_x4(const float *p) { return vld1q_f32_x4(p); }
/* lanes a, b, c, d; GCC makes an initializer register-offset ldr + ins (no add per lane) */
SK_INLINE sk_v4f sk_v4f_make(float a, float b, float c, float d) {
    const sk_v4f v = {a, b, c, d};
    return v;
}
/* p[0..r), r in 1..3, in lanes [0, r) (the others: unspecified); reads only those */
SK_INLINE sk_v4f sk_v4f_load_partial(const float *p, const int r) {
    if (r == 1) return vld1q_dup_f32(p);
    const sk_v4f lo = vcombine_f32(vld1_f32(p), vdup_n_f32(0.0f));
    return r == 2 ? lo : vld1q_lane_f32(p + 2, lo, 2);
}
/* lanes [0, r) of v to p[0..r), r in 1..3 */
SK_INLINE void sk_v4f_store_partial(float *p, sk_v4f v, const int r) {
    if (r == 1) {
        vst1q_lane_f32(p, v, 0);
        return;
    }
    vst1_f32(p, vget_low_f32(v));
    if (r == 3) vst1q_lane_f32(p + 2, v, 2);
}
#define sk_v4f_load_lane(p, v, l) vld1q_lane_f32((p), (v), (l))
#define sk_v4f_store_lane(p, v, l) vst1q_lane_f32((p), (v), (l))
#define sk_v4f_get_lane(v, l) vgetq_lane_f32((v), (l))

SK_INLINE sk_v4f sk_v4f_add(sk_v4f a, sk_v4f b) { return vaddq_f32(a, b); }
SK_INLINE sk_v4f sk_v4f_mul(sk_v4f a, sk_v4f b) { return vmulq_f32(a, b); }
/* acc + a * b */
SK_INLINE sk_v4f sk_v4f_fma(sk_v4f acc, sk_v4f a, sk_v4f b) { return vfmaq_f32(acc, a, b); }
/* acc + a * s */
SK_INLINE sk_v4f sk_v4f_fma_n(sk_v4f acc, sk_v4f a, float s) { return vfmaq_n_f32(acc, a, s); }
/* acc + a * (lane l of v), l a literal */
#define sk_v4f_fma_lane(acc, a, v, l) vfmaq_laneq_f32((acc), (a), (v), (l))
/* v[0] + v[1] + v[2] + v[3], as (v0 + v1) + (v2 + v3) */
SK_INLINE float sk_v4f_hsum(sk_v4f v) { return vaddvq_f32(v); }
/* lanes of a where m is set, of b elsewhere */
SK_INLINE sk_v4f sk_v4f_select(sk_v4u m, sk_v4f a, sk_v4f b) { return vbslq_f32(m, a, b); }
/* mask of the lanes equal to 0 (+0 or -0) */
SK_INLINE sk_v4u sk_v4f_eqz(sk_v4f v) { return vceqzq_f32(v); }

/* u32 */
SK_INLINE sk_v4u sk_v4u_load(const uint32_t *p) { return vld1q_u32(p); }
SK_INLINE sk_v4u sk_v4u_splat(uint32_t u) { return vdupq_n_u32(u); }
SK_INLINE sk_v4u sk_v4u_iota(void) { /* 0, 1, 2, 3 */
    const sk_v4u v = {0, 1, 2, 3};
    return v;
}
SK_INLINE sk_v4u sk_v4u_add(sk_v4u a, sk_v4u b) { return vaddq_u32(a, b); }
SK_INLINE sk_v4u sk_v4u_and(sk_v4u a, sk_v4u b) { return vandq_u32(a, b); }
/* acc + a * b (mod 2^32) */
SK_INLINE sk_v4u sk_v4u_mla(sk_v4u acc, sk_v4u a, sk_v4u b) { return vmlaq_u32(acc, a, b); }
/* unsigned a < b, as a lane mask */
SK_INLINE sk_v4u sk_v4u_lt(sk_v4u a, sk_v4u b) { return vcltq_u32(a, b); }
/* whether every lane of a mask is set */
SK_INLINE int sk_v4u_all(sk_v4u m) { return vminvq_u32(m) != 0; }
/* Per-lane right shifts: sk_v4u_shr_by(v, sk_v4u_shifts(sh)) = v[l] >> sh[l], for
 * sh[l] in 0..8 and v[l] < 2^24 (what the SIMD128 version, a multiply by
 * 2^(8 - sh) and a shift by 8, needs). */
typedef int32x4_t sk_v4u_shifts;
SK_INLINE sk_v4u_shifts sk_v4u_shifts_make(const int32_t *sh) { return vnegq_s32(vld1q_s32(sh)); }
SK_INLINE sk_v4u sk_v4u_shr_by(sk_v4u v, sk_v4u_shifts s) { return vshlq_u32(v, s); }

/* u8 */
SK_INLINE sk_v16u8 sk_v16u8_load(const uint8_t *p) { return vld1q_u8(p); }
SK_INLINE sk_v16u8 sk_v16u8_splat(uint8_t u) { return vdupq_n_u8(u); }
/* the 8 bytes of u (little-endian) twice */
SK_INLINE sk_v16u8 sk_v16u8_splat_u64(uint64_t u) { return vreinterpretq_u8_u64(vdupq_n_u64(u)); }
SK_INLINE sk_v16u8 sk_v16u8_iota(void) { /* 0, 1, ..., 15 */
    const sk_v16u8 v = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    return v;
}
SK_INLINE sk_v16u8 sk_v16u8_add(sk_v16u8 a, sk_v16u8 b) { return vaddq_u8(a, b); }
/* unsigned a < b, as a byte mask */
SK_INLINE sk_v16u8 sk_v16u8_lt(sk_v16u8 a, sk_v16u8 b) { return vcltq_u8(a, b); }
/* byte i: t[idx[i]], 0 where idx[i] >= 16 (tbl and i8x16.swizzle agree on that) */
SK_INLINE sk_v16u8 sk_v16u8_lookup(sk_v16u8 t, sk_v16u8 idx) { return vqtbl1q_u8(t, idx); }
/* the same over the 16 * NW bytes of t[0..NW), NW in 1, 2, 4 (a literal after
 * inlining): 0 where idx[i] >= 16 * NW */
SK_INLINE sk_v4f sk_v4f_lookup_n(const sk_v4f *t, sk_v16u8 idx, const int NW) {
    if (NW == 1) return vreinterpretq_f32_u8(vqtbl1q_u8(vreinterpretq_u8_f32(t[0]), idx));
    if (NW == 2) {
        const uint8x16x2_t t2 = {{vreinterpretq_u8_f32(t[0]), vreinterpretq_u8_f32(t[1])}};
        return vreinterpretq_f32_u8(vqtbl2q_u8(t2, idx));
    }
    const uint8x16x4_t t4 = {{vreinterpretq_u8_f32(t[0]), vreinterpretq_u8_f32(t[1]),
                              vreinterpretq_u8_f32(t[2]), vreinterpretq_u8_f32(t[3])}};
    return vreinterpretq_f32_u8(vqtbl4q_u8(t4, idx));
}

SK_INLINE void sk_prefetch(const void *p) { __builtin_prefetch(p); }

#else
/* ------------------------------------------------------------------- SIMD128 */

SK_INLINE sk_v16u8 sk_v4f_as_v16u8(sk_v4f v) { return v; }
SK_INLINE sk_v4f sk_v16u8_as_v4f(sk_v16u8 v) { return v; }
SK_INLINE sk_v4u sk_v16u8_as_v4u(sk_v16u8 v) { return v; }
SK_INLINE sk_v16u8 sk_v4u_as_v16u8(sk_v4u v) { return v; }

SK_INLINE sk_v4f sk_v4f_load(const float *p) { return wasm_v128_load(p); }
SK_INLINE void sk_v4f_store(float *p, sk_v4f v) { wasm_v128_store(p, v); }
SK_INLINE sk_v4f sk_v4f_splat(float f) { return wasm_f32x4_splat(f); }
SK_INLINE sk_v4f sk_v4f_load_splat(const float *p) { return wasm_v128_load32_splat(p); }
SK_INLINE sk_v4fx4 sk_v4f_load_x4(const float *p) {
    sk_v4fx4 q;
    for (int i = 0; i < 4; ++i) q.val[i] = wasm_v128_load(p + 4 * i);
    return q;
}
SK_INLINE sk_v4f sk_v4f_make(float a, float b, float c, float d) {
    return wasm_f32x4_make(a, b, c, d);
}
SK_INLINE sk_v4f sk_v4f_load_partial(const float *p, const int r) {
    if (r == 1) return wasm_v128_load32_splat(p);
    const sk_v4f lo = wasm_v128_load64_zero(p);
    return r == 2 ? lo : wasm_v128_load32_lane(p + 2, lo, 2);
}
SK_INLINE void sk_v4f_store_partial(float *p, sk_v4f v, const int r) {
    if (r == 1) {
        wasm_v128_store32_lane(p, v, 0);
        return;
    }
    wasm_v128_store64_lane(p, v, 0);
    if (r == 3) wasm_v128_store32_lane(p + 2, v, 2);
}
#define sk_v4f_load_lane(p, v, l) wasm_v128_load32_lane((p), (v), (l))
#define sk_v4f_store_lane(p, v, l) wasm_v128_store32_lane((p), (v), (l))
#define sk_v4f_get_lane(v, l) wasm_f32x4_extract_lane((v), (l))

SK_INLINE sk_v4f sk_v4f_add(sk_v4f a, sk_v4f b) { return wasm_f32x4_add(a, b); }
SK_INLINE sk_v4f sk_v4f_mul(sk_v4f a, sk_v4f b) { return wasm_f32x4_mul(a, b); }
SK_INLINE sk_v4f sk_v4f_fma(sk_v4f acc, sk_v4f a, sk_v4f b) {
    return wasm_f32x4_add(acc, wasm_f32x4_mul(a, b));
}
SK_INLINE sk_v4f sk_v4f_fma_n(sk_v4f acc, sk_v4f a, float s) {
    return wasm_f32x4_add(acc, wasm_f32x4_mul(a, wasm_f32x4_splat(s)));
}
#define sk_v4f_fma_lane(acc, a, v, l) \
    sk_v4f_fma((acc), (a), wasm_i32x4_shuffle((v), (v), (l), (l), (l), (l)))
SK_INLINE float sk_v4f_hsum(sk_v4f v) {
    v = wasm_f32x4_add(v, wasm_i32x4_shuffle(v, v, 1, 0, 3, 2));
    v = wasm_f32x4_add(v, wasm_i32x4_shuffle(v, v, 2, 3, 0, 1));
    return wasm_f32x4_extract_lane(v, 0);
}
SK_INLINE sk_v4f sk_v4f_select(sk_v4u m, sk_v4f a, sk_v4f b) {
    return wasm_v128_bitselect(a, b, m);
}
SK_INLINE sk_v4u sk_v4f_eqz(sk_v4f v) { return wasm_f32x4_eq(v, wasm_f32x4_splat(0.0f)); }

SK_INLINE sk_v4u sk_v4u_load(const uint32_t *p) { return wasm_v128_load(p); }
SK_INLINE sk_v4u sk_v4u_splat(uint32_t u) { return wasm_u32x4_splat(u); }
SK_INLINE sk_v4u sk_v4u_iota(void) { return wasm_u32x4_const(0, 1, 2, 3); }
SK_INLINE sk_v4u sk_v4u_add(sk_v4u a, sk_v4u b) { return wasm_i32x4_add(a, b); }
SK_INLINE sk_v4u sk_v4u_and(sk_v4u a, sk_v4u b) { return wasm_v128_and(a, b); }
SK_INLINE sk_v4u sk_v4u_mla(sk_v4u acc, sk_v4u a, sk_v4u b) {
    return wasm_i32x4_add(acc, wasm_i32x4_mul(a, b));
}
SK_INLINE sk_v4u sk_v4u_lt(sk_v4u a, sk_v4u b) { return wasm_u32x4_lt(a, b); }
SK_INLINE int sk_v4u_all(sk_v4u m) { return wasm_i32x4_all_true(m); }
/* no per-lane shift: v * 2^(8 - sh) >> 8 (exact for v < 2^24, sh in 0..8) */
typedef v128_t sk_v4u_shifts;
SK_INLINE sk_v4u_shifts sk_v4u_shifts_make(const int32_t *sh) {
    return wasm_i32x4_make(1 << (8 - sh[0]), 1 << (8 - sh[1]), 1 << (8 - sh[2]), 1 << (8 - sh[3]));
}
SK_INLINE sk_v4u sk_v4u_shr_by(sk_v4u v, sk_v4u_shifts s) {
    return wasm_u32x4_shr(wasm_i32x4_mul(v, s), 8);
}

SK_INLINE sk_v16u8 sk_v16u8_load(const uint8_t *p) { return wasm_v128_load(p); }
SK_INLINE sk_v16u8 sk_v16u8_splat(uint8_t u) { return wasm_u8x16_splat(u); }
SK_INLINE sk_v16u8 sk_v16u8_splat_u64(uint64_t u) { return wasm_u64x2_splat(u); }
SK_INLINE sk_v16u8 sk_v16u8_iota(void) {
    return wasm_u8x16_const(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
}
SK_INLINE sk_v16u8 sk_v16u8_add(sk_v16u8 a, sk_v16u8 b) { return wasm_i8x16_add(a, b); }
SK_INLINE sk_v16u8 sk_v16u8_lt(sk_v16u8 a, sk_v16u8 b) { return wasm_u8x16_lt(a, b); }
SK_INLINE sk_v16u8 sk_v16u8_lookup(sk_v16u8 t, sk_v16u8 idx) { return wasm_i8x16_swizzle(t, idx); }
/* one swizzle per vector, OR-ed: vector i sees idx - 16 i, which wraps past 15 (to 0)
 * outside its 16 bytes */
SK_INLINE sk_v4f sk_v4f_lookup_n(const sk_v4f *t, sk_v16u8 idx, const int NW) {
    v128_t r = wasm_i8x16_swizzle(t[0], idx);
    for (int i = 1; i < NW; ++i)
        r = wasm_v128_or(
            r, wasm_i8x16_swizzle(t[i], wasm_i8x16_sub(idx, wasm_i8x16_splat((int8_t)(16 * i)))));
    return r;
}

SK_INLINE void sk_prefetch(const void *p) { (void)p; }

#endif

#endif /* SK_SIMD128_H */
