/* WebAssembly SIMD128 variant of the activation-sparse microkernel (see act_internal.h);
 * the plan of arm_neon.c (multiply + add: SIMD128 has no FMA).
 *
 * Batch 1: four active channels per step, y += a0*w0 + a1*w1 + a2*w2 + a3*w3 over 16
 * columns, so y is loaded and stored once per four weight rows; the columns beyond the
 * last multiple of 4 in scalar code (no access past column len). SIMD128 has no
 * prefetch instruction.
 * Batch n > 1 (union of the rows' channels): four rows at a time share every weight
 * load (16 splatted coefficients); a set of rows whose coefficients are all zero is
 * skipped. */
#include <wasm_simd128.h>

#include "act_internal.h"

#define SK_ACT_U 4   /* active channels per step */

#define LD(p) wasm_v128_load(p)
#define ST(p, v) wasm_v128_store(p, v)
#define MADD(s, a, w) wasm_f32x4_add(s, wasm_f32x4_mul(a, w))

/* y[0:len] += sum_u a[u] * w[u][0:len] */
static void gemv_group(const float *const *w, const float *a, int64_t len, float *y) {
    const float *SK_RESTRICT w0 = w[0], *SK_RESTRICT w1 = w[1];
    const float *SK_RESTRICT w2 = w[2], *SK_RESTRICT w3 = w[3];
    const v128_t a0 = wasm_f32x4_splat(a[0]), a1 = wasm_f32x4_splat(a[1]);
    const v128_t a2 = wasm_f32x4_splat(a[2]), a3 = wasm_f32x4_splat(a[3]);
    int64_t j = 0;
    for (; j + 16 <= len; j += 16) {
        v128_t s0 = LD(y + j), s1 = LD(y + j + 4), s2 = LD(y + j + 8), s3 = LD(y + j + 12);
        s0 = MADD(s0, a0, LD(w0 + j));
        s1 = MADD(s1, a0, LD(w0 + j + 4));
        s2 = MADD(s2, a0, LD(w0 + j + 8));
        s3 = MADD(s3, a0, LD(w0 + j + 12));
        s0 = MADD(s0, a1, LD(w1 + j));
        s1 = MADD(s1, a1, LD(w1 + j + 4));
        s2 = MADD(s2, a1, LD(w1 + j + 8));
        s3 = MADD(s3, a1, LD(w1 + j + 12));
        s0 = MADD(s0, a2, LD(w2 + j));
        s1 = MADD(s1, a2, LD(w2 + j + 4));
        s2 = MADD(s2, a2, LD(w2 + j + 8));
        s3 = MADD(s3, a2, LD(w2 + j + 12));
        s0 = MADD(s0, a3, LD(w3 + j));
        s1 = MADD(s1, a3, LD(w3 + j + 4));
        s2 = MADD(s2, a3, LD(w3 + j + 8));
        s3 = MADD(s3, a3, LD(w3 + j + 12));
        ST(y + j, s0);
        ST(y + j + 4, s1);
        ST(y + j + 8, s2);
        ST(y + j + 12, s3);
    }
    for (; j + 4 <= len; j += 4) {
        v128_t s = LD(y + j);
        s = MADD(s, a0, LD(w0 + j));
        s = MADD(s, a1, LD(w1 + j));
        s = MADD(s, a2, LD(w2 + j));
        s = MADD(s, a3, LD(w3 + j));
        ST(y + j, s);
    }
    for (; j < len; ++j) y[j] += a[0] * w0[j] + a[1] * w1[j] + a[2] * w2[j] + a[3] * w3[j];
}

static void gemv_one(const float *SK_RESTRICT w0, float a, int64_t len, float *SK_RESTRICT y) {
    const v128_t a0 = wasm_f32x4_splat(a);
    int64_t j = 0;
    for (; j + 16 <= len; j += 16) {
        ST(y + j, MADD(LD(y + j), a0, LD(w0 + j)));
        ST(y + j + 4, MADD(LD(y + j + 4), a0, LD(w0 + j + 4)));
        ST(y + j + 8, MADD(LD(y + j + 8), a0, LD(w0 + j + 8)));
        ST(y + j + 12, MADD(LD(y + j + 12), a0, LD(w0 + j + 12)));
    }
    for (; j + 4 <= len; j += 4) ST(y + j, MADD(LD(y + j), a0, LD(w0 + j)));
    for (; j < len; ++j) y[j] += a * w0[j];
}

/* 4 rows of y += their coefficients times the group's 4 weight rows; c[u] holds the
 * coefficients of channel u for the 4 rows */
static void rows4(const float *const *w, const v128_t *c, int64_t len, float *y, int64_t ldy) {
    const float *SK_RESTRICT w0 = w[0], *SK_RESTRICT w1 = w[1];
    const float *SK_RESTRICT w2 = w[2], *SK_RESTRICT w3 = w[3];
    v128_t a[SK_ACT_U][4];
    for (int u = 0; u < SK_ACT_U; ++u) {
        a[u][0] = wasm_i32x4_shuffle(c[u], c[u], 0, 0, 0, 0);
        a[u][1] = wasm_i32x4_shuffle(c[u], c[u], 1, 1, 1, 1);
        a[u][2] = wasm_i32x4_shuffle(c[u], c[u], 2, 2, 2, 2);
        a[u][3] = wasm_i32x4_shuffle(c[u], c[u], 3, 3, 3, 3);
    }
    float *y0 = y, *y1 = y + ldy, *y2 = y + 2 * ldy, *y3 = y + 3 * ldy;
    int64_t j = 0;
#define SK_ROW_STEP(W, U)                 \
    s0 = MADD(s0, a[U][0], W);            \
    s1 = MADD(s1, a[U][1], W);            \
    s2 = MADD(s2, a[U][2], W);            \
    s3 = MADD(s3, a[U][3], W);
    for (; j + 4 <= len; j += 4) {
        v128_t s0 = LD(y0 + j), s1 = LD(y1 + j), s2 = LD(y2 + j), s3 = LD(y3 + j);
        v128_t wv = LD(w0 + j);
        SK_ROW_STEP(wv, 0)
        wv = LD(w1 + j);
        SK_ROW_STEP(wv, 1)
        wv = LD(w2 + j);
        SK_ROW_STEP(wv, 2)
        wv = LD(w3 + j);
        SK_ROW_STEP(wv, 3)
        ST(y0 + j, s0); ST(y1 + j, s1); ST(y2 + j, s2); ST(y3 + j, s3);
    }
#undef SK_ROW_STEP
    /* the last columns: each a vector over the 4 rows */
    for (; j < len; ++j) {
        v128_t s = wasm_f32x4_make(y0[j], y1[j], y2[j], y3[j]);
        s = MADD(s, c[0], wasm_f32x4_splat(w0[j]));
        s = MADD(s, c[1], wasm_f32x4_splat(w1[j]));
        s = MADD(s, c[2], wasm_f32x4_splat(w2[j]));
        s = MADD(s, c[3], wasm_f32x4_splat(w3[j]));
        y0[j] = wasm_f32x4_extract_lane(s, 0); y1[j] = wasm_f32x4_extract_lane(s, 1);
        y2[j] = wasm_f32x4_extract_lane(s, 2); y3[j] = wasm_f32x4_extract_lane(s, 3);
    }
}

/* n > 1: the rows of one group of channels (weights reloaded from cache per set of rows) */
static void batch_group(const float *const *w, const float *coef, int64_t n, int64_t len,
                        float *y, int64_t ldy) {
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        v128_t c[SK_ACT_U];
        v128_t nz = wasm_i32x4_splat(0);
        for (int u = 0; u < SK_ACT_U; ++u) {
            c[u] = LD(coef + u * n + i);
            nz = wasm_v128_or(nz, wasm_f32x4_ne(c[u], wasm_f32x4_splat(0.0f)));
        }
        if (!wasm_v128_any_true(nz)) continue;   /* all 16 coefficients are 0 */
        rows4(w, c, len, y + i * ldy, ldy);
    }
    for (; i < n; ++i) {
        float a[SK_ACT_U];
        int any = 0;
        for (int u = 0; u < SK_ACT_U; ++u) { a[u] = coef[u * n + i]; any |= a[u] != 0.0f; }
        if (any) gemv_group(w, a, len, y + i * ldy);
    }
}

void sk_f32_act_linear_wasmsimd(const float *wt, int64_t ldw, const int32_t *idx, const float *coef,
                                int64_t nact, int64_t n, int64_t len, float *y,
                                int64_t ldy) {
    int64_t c = 0;
    for (; c + SK_ACT_U <= nact; c += SK_ACT_U) {
        const float *w[SK_ACT_U];
        for (int u = 0; u < SK_ACT_U; ++u) w[u] = wt + (int64_t)idx[c + u] * ldw;
        if (n == 1)
            gemv_group(w, coef + c, len, y);
        else
            batch_group(w, coef + c * n, n, len, y, ldy);
    }
    for (; c < nact; ++c) {
        const float *w0 = wt + (int64_t)idx[c] * ldw;
        for (int64_t i = 0; i < n; ++i) {
            const float a = coef[c * n + i];
            if (n > 1 && a == 0.0f) continue;
            gemv_one(w0, a, len, y + i * ldy);
        }
    }
}
