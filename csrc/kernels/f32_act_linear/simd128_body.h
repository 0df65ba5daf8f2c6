/* The activation-sparse microkernel (see act_internal.h) shared by the 128-bit SIMD
 * variants (arm_neon.c, wasm_simd128.c), written against csrc/core/simd128.h; the plan
 * of the x86 body (x86_body.h) with 4-wide vectors.
 *
 * Batch 1: four active channels per step, y += a0*w0 + a1*w1 + a2*w2 + a3*w3 over 16
 * columns (4 vectors of y), so y is loaded and stored once per four weight rows while
 * the weight rows stream (NEON: one ld1 of 4 registers per 16 floats); where there is a
 * prefetch (NEON: SK_V4_PREFETCH) the same columns of the next group's rows are
 * prefetched (their addresses are irregular, the hardware prefetchers cannot guess
 * them). Columns beyond the last multiple of 4 are done in scalar code: no access
 * past column len.
 * Batch n > 1 (union of the rows' channels): four rows at a time share every weight
 * load; their four coefficients of one channel are one vector (coef[c*n + i..i+3] is
 * contiguous) used by lane (NEON: fmla by element, 8 columns per step with 32
 * registers). A set of rows whose 16 coefficients are all zero is skipped.
 * The includer defines SK_ACT_FN, the name of the exported function, and SK_ACT_TILING,
 * the name of its tiling (sparsekern.h: sk_tiling). */
#ifndef SK_ACT_SIMD128_BODY_H
#define SK_ACT_SIMD128_BODY_H

#include "simd128.h"
#include "act_internal.h"

#define SK_ACT_U 4 /* active channels per step */
#define SK_ACT_ROWS 4 /* batch rows per step (a vector of coefficients per channel) */
#define SK_ACT_COLS1 16 /* batch 1: columns per step (4 vectors of y), then 4, then scalar */
/* batch: columns per step of SK_ACT_ROWS rows (with 32 registers 8: 8 accumulators), then
 * 4, then scalar */
#define SK_ACT_COLS (SK_V4_REGS >= 32 ? 8 : 4)

SK_INLINE void prefetch4(const float *const *next, int64_t j) {
    sk_prefetch(next[0] + j);
    sk_prefetch(next[1] + j);
    sk_prefetch(next[2] + j);
    sk_prefetch(next[3] + j);
}

/* y[0:len] += sum_u a[u] * w[u][0:len]; the same columns of next[] prefetched */
static void gemv_group(const float *const *w, const float *a, const float *const *next, int64_t len,
                       float *y) {
    const float *SK_RESTRICT w0 = w[0], *SK_RESTRICT w1 = w[1];
    const float *SK_RESTRICT w2 = w[2], *SK_RESTRICT w3 = w[3];
    const sk_v4f a0 = sk_v4f_splat(a[0]), a1 = sk_v4f_splat(a[1]);
    const sk_v4f a2 = sk_v4f_splat(a[2]), a3 = sk_v4f_splat(a[3]);
    int64_t j = 0;
#define SK_GROUP_ROW(A, W)            \
    q = sk_v4f_load_x4((W) + j);      \
    s0 = sk_v4f_fma(s0, A, q.val[0]); \
    s1 = sk_v4f_fma(s1, A, q.val[1]); \
    s2 = sk_v4f_fma(s2, A, q.val[2]); \
    s3 = sk_v4f_fma(s3, A, q.val[3])
    for (; j + SK_ACT_COLS1 <= len; j += SK_ACT_COLS1) {
        if (next) prefetch4(next, j);
        sk_v4f s0 = sk_v4f_load(y + j), s1 = sk_v4f_load(y + j + 4);
        sk_v4f s2 = sk_v4f_load(y + j + 8), s3 = sk_v4f_load(y + j + 12);
        sk_v4fx4 q;
        SK_GROUP_ROW(a0, w0);
        SK_GROUP_ROW(a1, w1);
        SK_GROUP_ROW(a2, w2);
        SK_GROUP_ROW(a3, w3);
        sk_v4f_store(y + j, s0);
        sk_v4f_store(y + j + 4, s1);
        sk_v4f_store(y + j + 8, s2);
        sk_v4f_store(y + j + 12, s3);
    }
#undef SK_GROUP_ROW
    if (next && j < len) prefetch4(next, j);
    for (; j + 4 <= len; j += 4) {
        sk_v4f s = sk_v4f_load(y + j);
        s = sk_v4f_fma(s, a0, sk_v4f_load(w0 + j));
        s = sk_v4f_fma(s, a1, sk_v4f_load(w1 + j));
        s = sk_v4f_fma(s, a2, sk_v4f_load(w2 + j));
        s = sk_v4f_fma(s, a3, sk_v4f_load(w3 + j));
        sk_v4f_store(y + j, s);
    }
    for (; j < len; ++j) y[j] += a[0] * w0[j] + a[1] * w1[j] + a[2] * w2[j] + a[3] * w3[j];
}

static void gemv_one(const float *SK_RESTRICT w0, float a, int64_t len, float *SK_RESTRICT y) {
    const sk_v4f a0 = sk_v4f_splat(a);
    int64_t j = 0;
    for (; j + SK_ACT_COLS1 <= len; j += SK_ACT_COLS1)
        for (int k = 0; k < SK_ACT_COLS1; k += 4)
            sk_v4f_store(y + j + k,
                         sk_v4f_fma(sk_v4f_load(y + j + k), a0, sk_v4f_load(w0 + j + k)));
    for (; j + 4 <= len; j += 4)
        sk_v4f_store(y + j, sk_v4f_fma(sk_v4f_load(y + j), a0, sk_v4f_load(w0 + j)));
    for (; j < len; ++j) y[j] += a * w0[j];
}

/* 4 rows of y += their coefficients times the group's 4 weight rows; c[u] holds the
 * coefficients of channel u for the 4 rows */
static void rows4(const float *const *w, const sk_v4f *c, int64_t len, float *y, int64_t ldy) {
    const float *SK_RESTRICT w0 = w[0], *SK_RESTRICT w1 = w[1];
    const float *SK_RESTRICT w2 = w[2], *SK_RESTRICT w3 = w[3];
    const sk_v4f c0 = c[0], c1 = c[1], c2 = c[2], c3 = c[3];
    float *y0 = y, *y1 = y + ldy, *y2 = y + 2 * ldy, *y3 = y + 3 * ldy;
    int64_t j = 0;
#define SK_ROW_STEP(S, W, CV)               \
    S##0 = sk_v4f_fma_lane(S##0, W, CV, 0); \
    S##1 = sk_v4f_fma_lane(S##1, W, CV, 1); \
    S##2 = sk_v4f_fma_lane(S##2, W, CV, 2); \
    S##3 = sk_v4f_fma_lane(S##3, W, CV, 3)
#if SK_ACT_COLS == 8
    /* 8 columns per step: 8 accumulators, 4 coefficient vectors, 2 weight vectors */
    for (; j + SK_ACT_COLS <= len; j += SK_ACT_COLS) {
        sk_v4f s0 = sk_v4f_load(y0 + j), s1 = sk_v4f_load(y1 + j);
        sk_v4f s2 = sk_v4f_load(y2 + j), s3 = sk_v4f_load(y3 + j);
        sk_v4f t0 = sk_v4f_load(y0 + j + 4), t1 = sk_v4f_load(y1 + j + 4);
        sk_v4f t2 = sk_v4f_load(y2 + j + 4), t3 = sk_v4f_load(y3 + j + 4);
        sk_v4f wa = sk_v4f_load(w0 + j), wb = sk_v4f_load(w0 + j + 4);
        SK_ROW_STEP(s, wa, c0);
        SK_ROW_STEP(t, wb, c0);
        wa = sk_v4f_load(w1 + j), wb = sk_v4f_load(w1 + j + 4);
        SK_ROW_STEP(s, wa, c1);
        SK_ROW_STEP(t, wb, c1);
        wa = sk_v4f_load(w2 + j), wb = sk_v4f_load(w2 + j + 4);
        SK_ROW_STEP(s, wa, c2);
        SK_ROW_STEP(t, wb, c2);
        wa = sk_v4f_load(w3 + j), wb = sk_v4f_load(w3 + j + 4);
        SK_ROW_STEP(s, wa, c3);
        SK_ROW_STEP(t, wb, c3);
        sk_v4f_store(y0 + j, s0);
        sk_v4f_store(y1 + j, s1);
        sk_v4f_store(y2 + j, s2);
        sk_v4f_store(y3 + j, s3);
        sk_v4f_store(y0 + j + 4, t0);
        sk_v4f_store(y1 + j + 4, t1);
        sk_v4f_store(y2 + j + 4, t2);
        sk_v4f_store(y3 + j + 4, t3);
    }
#endif
    for (; j + 4 <= len; j += 4) {
        sk_v4f s0 = sk_v4f_load(y0 + j), s1 = sk_v4f_load(y1 + j);
        sk_v4f s2 = sk_v4f_load(y2 + j), s3 = sk_v4f_load(y3 + j);
        sk_v4f wv = sk_v4f_load(w0 + j);
        SK_ROW_STEP(s, wv, c0);
        wv = sk_v4f_load(w1 + j);
        SK_ROW_STEP(s, wv, c1);
        wv = sk_v4f_load(w2 + j);
        SK_ROW_STEP(s, wv, c2);
        wv = sk_v4f_load(w3 + j);
        SK_ROW_STEP(s, wv, c3);
        sk_v4f_store(y0 + j, s0);
        sk_v4f_store(y1 + j, s1);
        sk_v4f_store(y2 + j, s2);
        sk_v4f_store(y3 + j, s3);
    }
#undef SK_ROW_STEP
    /* the last columns: each a vector over the 4 rows */
    for (; j < len; ++j) {
        sk_v4f s = sk_v4f_make(y0[j], y1[j], y2[j], y3[j]);
        s = sk_v4f_fma_n(s, c0, w0[j]);
        s = sk_v4f_fma_n(s, c1, w1[j]);
        s = sk_v4f_fma_n(s, c2, w2[j]);
        s = sk_v4f_fma_n(s, c3, w3[j]);
        y0[j] = sk_v4f_get_lane(s, 0);
        y1[j] = sk_v4f_get_lane(s, 1);
        y2[j] = sk_v4f_get_lane(s, 2);
        y3[j] = sk_v4f_get_lane(s, 3);
    }
}

/* n > 1: the rows of one group of channels (weights reloaded from L1 per set of rows) */
static void batch_group(const float *const *w, const float *coef, int64_t n,
                        const float *const *next, int64_t len, float *y, int64_t ldy) {
    if (SK_V4_PREFETCH && next)
        for (int64_t j = 0; j < len; j += 16) prefetch4(next, j);
    int64_t i = 0;
    for (; i + SK_ACT_ROWS <= n; i += SK_ACT_ROWS) {
        sk_v4f c[SK_ACT_U];
        sk_v4u zero = sk_v4u_splat(~0u);
        for (int u = 0; u < SK_ACT_U; ++u) {
            c[u] = sk_v4f_load(coef + u * n + i);
            zero = sk_v4u_and(zero, sk_v4f_eqz(c[u]));
        }
        if (sk_v4u_all(zero)) continue; /* all 16 coefficients are 0 */
        rows4(w, c, len, y + i * ldy, ldy);
    }
    for (; i < n; ++i) {
        float a[SK_ACT_U];
        int any = 0;
        for (int u = 0; u < SK_ACT_U; ++u) {
            a[u] = coef[u * n + i];
            any |= a[u] != 0.0f;
        }
        if (any) gemv_group(w, a, NULL, len, y + i * ldy);
    }
}

void SK_ACT_FN(const float *wt, int64_t ldw, const int32_t *idx, const float *coef, int64_t nact,
               int64_t n, int64_t len, float *y, int64_t ldy) {
    int64_t c = 0;
    for (; c + SK_ACT_U <= nact; c += SK_ACT_U) {
        const float *w[SK_ACT_U], *nx[SK_ACT_U];
        for (int u = 0; u < SK_ACT_U; ++u) w[u] = wt + (int64_t)idx[c + u] * ldw;
        /* the next group's rows, for the prefetches (none without SK_V4_PREFETCH) */
        const int has_next = SK_V4_PREFETCH && c + 2 * SK_ACT_U <= nact;
        if (has_next)
            for (int u = 0; u < SK_ACT_U; ++u) nx[u] = wt + (int64_t)idx[c + SK_ACT_U + u] * ldw;
        if (n == 1) gemv_group(w, coef + c, has_next ? nx : NULL, len, y);
        else batch_group(w, coef + c * n, n, has_next ? nx : NULL, len, y, ldy);
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

const sk_tiling SK_ACT_TILING = {
    .n_tiles = {SK_ACT_COLS1, SK_ACT_COLS, SK_ACT_COLS > 4 ? 4 : 0},
    .k_step = SK_ACT_U,
    .k_step1 = SK_ACT_U,
    .row_block = SK_ACT_ROWS,
    .row_block1 = 1,
};

#endif
