/* NEON variant of the activation-sparse microkernel (see act_internal.h); the plan of
 * x86_avx512.c with 4-wide vectors.
 *
 * Batch 1: four active channels per step, y += a0*w0 + a1*w1 + a2*w2 + a3*w3 over 16
 * columns (4 q registers of y), so y is loaded and stored once per four weight rows
 * while the weight rows stream; the same columns of the next group's rows are
 * prefetched (their addresses are irregular, the hardware prefetchers cannot guess
 * them). Columns beyond the last multiple of 4 are done in scalar code: no access
 * past column len.
 * Batch n > 1 (union of the rows' channels): four rows at a time share every weight
 * load; their four coefficients of one channel are one q register (coef[c*n + i..i+3]
 * is contiguous) used by lane with vfmaq_laneq_f32. A set of rows whose 16
 * coefficients are all zero is skipped. */
#include <arm_neon.h>

#include "act_internal.h"

#define SK_ACT_U 4   /* active channels per step */

SK_INLINE void prefetch4(const float *const *next, int64_t j) {
    __builtin_prefetch(next[0] + j);
    __builtin_prefetch(next[1] + j);
    __builtin_prefetch(next[2] + j);
    __builtin_prefetch(next[3] + j);
}

/* y[0:len] += sum_u a[u] * w[u][0:len]; the same columns of next[] prefetched */
static void gemv_group(const float *const *w, const float *a, const float *const *next,
                       int64_t len, float *y) {
    const float *SK_RESTRICT w0 = w[0], *SK_RESTRICT w1 = w[1];
    const float *SK_RESTRICT w2 = w[2], *SK_RESTRICT w3 = w[3];
    const float32x4_t a0 = vdupq_n_f32(a[0]), a1 = vdupq_n_f32(a[1]);
    const float32x4_t a2 = vdupq_n_f32(a[2]), a3 = vdupq_n_f32(a[3]);
    int64_t j = 0;
    for (; j + 16 <= len; j += 16) {
        if (next) prefetch4(next, j);
        /* weights by ld1 of 4 registers: one instruction per 16 floats */
        float32x4_t s0 = vld1q_f32(y + j), s1 = vld1q_f32(y + j + 4);
        float32x4_t s2 = vld1q_f32(y + j + 8), s3 = vld1q_f32(y + j + 12);
        float32x4x4_t q = vld1q_f32_x4(w0 + j);
        s0 = vfmaq_f32(s0, a0, q.val[0]); s1 = vfmaq_f32(s1, a0, q.val[1]);
        s2 = vfmaq_f32(s2, a0, q.val[2]); s3 = vfmaq_f32(s3, a0, q.val[3]);
        q = vld1q_f32_x4(w1 + j);
        s0 = vfmaq_f32(s0, a1, q.val[0]); s1 = vfmaq_f32(s1, a1, q.val[1]);
        s2 = vfmaq_f32(s2, a1, q.val[2]); s3 = vfmaq_f32(s3, a1, q.val[3]);
        q = vld1q_f32_x4(w2 + j);
        s0 = vfmaq_f32(s0, a2, q.val[0]); s1 = vfmaq_f32(s1, a2, q.val[1]);
        s2 = vfmaq_f32(s2, a2, q.val[2]); s3 = vfmaq_f32(s3, a2, q.val[3]);
        q = vld1q_f32_x4(w3 + j);
        s0 = vfmaq_f32(s0, a3, q.val[0]); s1 = vfmaq_f32(s1, a3, q.val[1]);
        s2 = vfmaq_f32(s2, a3, q.val[2]); s3 = vfmaq_f32(s3, a3, q.val[3]);
        vst1q_f32(y + j, s0);
        vst1q_f32(y + j + 4, s1);
        vst1q_f32(y + j + 8, s2);
        vst1q_f32(y + j + 12, s3);
    }
    if (next && j < len) prefetch4(next, j);
    for (; j + 4 <= len; j += 4) {
        float32x4_t s = vld1q_f32(y + j);
        s = vfmaq_f32(s, a0, vld1q_f32(w0 + j));
        s = vfmaq_f32(s, a1, vld1q_f32(w1 + j));
        s = vfmaq_f32(s, a2, vld1q_f32(w2 + j));
        s = vfmaq_f32(s, a3, vld1q_f32(w3 + j));
        vst1q_f32(y + j, s);
    }
    for (; j < len; ++j) y[j] += a[0] * w0[j] + a[1] * w1[j] + a[2] * w2[j] + a[3] * w3[j];
}

static void gemv_one(const float *SK_RESTRICT w0, float a, int64_t len, float *SK_RESTRICT y) {
    const float32x4_t a0 = vdupq_n_f32(a);
    int64_t j = 0;
    for (; j + 16 <= len; j += 16) {
        vst1q_f32(y + j, vfmaq_f32(vld1q_f32(y + j), a0, vld1q_f32(w0 + j)));
        vst1q_f32(y + j + 4, vfmaq_f32(vld1q_f32(y + j + 4), a0, vld1q_f32(w0 + j + 4)));
        vst1q_f32(y + j + 8, vfmaq_f32(vld1q_f32(y + j + 8), a0, vld1q_f32(w0 + j + 8)));
        vst1q_f32(y + j + 12, vfmaq_f32(vld1q_f32(y + j + 12), a0, vld1q_f32(w0 + j + 12)));
    }
    for (; j + 4 <= len; j += 4) vst1q_f32(y + j, vfmaq_f32(vld1q_f32(y + j), a0, vld1q_f32(w0 + j)));
    for (; j < len; ++j) y[j] += a * w0[j];
}

/* 4 rows of y += their coefficients times the group's 4 weight rows; c[u] holds the
 * coefficients of channel u for the 4 rows */
static void rows4(const float *const *w, const float32x4_t *c, int64_t len, float *y,
                  int64_t ldy) {
    const float *SK_RESTRICT w0 = w[0], *SK_RESTRICT w1 = w[1];
    const float *SK_RESTRICT w2 = w[2], *SK_RESTRICT w3 = w[3];
    const float32x4_t c0 = c[0], c1 = c[1], c2 = c[2], c3 = c[3];
    float *y0 = y, *y1 = y + ldy, *y2 = y + 2 * ldy, *y3 = y + 3 * ldy;
    int64_t j = 0;
#define SK_ROW_STEP(S, W, CV)                  \
    S##0 = vfmaq_laneq_f32(S##0, W, CV, 0);    \
    S##1 = vfmaq_laneq_f32(S##1, W, CV, 1);    \
    S##2 = vfmaq_laneq_f32(S##2, W, CV, 2);    \
    S##3 = vfmaq_laneq_f32(S##3, W, CV, 3);
    for (; j + 8 <= len; j += 8) {
        float32x4_t s0 = vld1q_f32(y0 + j), s1 = vld1q_f32(y1 + j);
        float32x4_t s2 = vld1q_f32(y2 + j), s3 = vld1q_f32(y3 + j);
        float32x4_t t0 = vld1q_f32(y0 + j + 4), t1 = vld1q_f32(y1 + j + 4);
        float32x4_t t2 = vld1q_f32(y2 + j + 4), t3 = vld1q_f32(y3 + j + 4);
        float32x4_t wa = vld1q_f32(w0 + j), wb = vld1q_f32(w0 + j + 4);
        SK_ROW_STEP(s, wa, c0) SK_ROW_STEP(t, wb, c0)
        wa = vld1q_f32(w1 + j), wb = vld1q_f32(w1 + j + 4);
        SK_ROW_STEP(s, wa, c1) SK_ROW_STEP(t, wb, c1)
        wa = vld1q_f32(w2 + j), wb = vld1q_f32(w2 + j + 4);
        SK_ROW_STEP(s, wa, c2) SK_ROW_STEP(t, wb, c2)
        wa = vld1q_f32(w3 + j), wb = vld1q_f32(w3 + j + 4);
        SK_ROW_STEP(s, wa, c3) SK_ROW_STEP(t, wb, c3)
        vst1q_f32(y0 + j, s0); vst1q_f32(y1 + j, s1);
        vst1q_f32(y2 + j, s2); vst1q_f32(y3 + j, s3);
        vst1q_f32(y0 + j + 4, t0); vst1q_f32(y1 + j + 4, t1);
        vst1q_f32(y2 + j + 4, t2); vst1q_f32(y3 + j + 4, t3);
    }
    for (; j + 4 <= len; j += 4) {
        float32x4_t s0 = vld1q_f32(y0 + j), s1 = vld1q_f32(y1 + j);
        float32x4_t s2 = vld1q_f32(y2 + j), s3 = vld1q_f32(y3 + j);
        SK_ROW_STEP(s, vld1q_f32(w0 + j), c0)
        SK_ROW_STEP(s, vld1q_f32(w1 + j), c1)
        SK_ROW_STEP(s, vld1q_f32(w2 + j), c2)
        SK_ROW_STEP(s, vld1q_f32(w3 + j), c3)
        vst1q_f32(y0 + j, s0); vst1q_f32(y1 + j, s1);
        vst1q_f32(y2 + j, s2); vst1q_f32(y3 + j, s3);
    }
#undef SK_ROW_STEP
    /* the last columns: each a vector over the 4 rows */
    for (; j < len; ++j) {
        float32x4_t s = {y0[j], y1[j], y2[j], y3[j]};
        s = vfmaq_n_f32(s, c0, w0[j]);
        s = vfmaq_n_f32(s, c1, w1[j]);
        s = vfmaq_n_f32(s, c2, w2[j]);
        s = vfmaq_n_f32(s, c3, w3[j]);
        y0[j] = vgetq_lane_f32(s, 0); y1[j] = vgetq_lane_f32(s, 1);
        y2[j] = vgetq_lane_f32(s, 2); y3[j] = vgetq_lane_f32(s, 3);
    }
}

/* n > 1: the rows of one group of channels (weights reloaded from L1 per set of rows) */
static void batch_group(const float *const *w, const float *coef, int64_t n,
                        const float *const *next, int64_t len, float *y, int64_t ldy) {
    if (next)
        for (int64_t j = 0; j < len; j += 16) prefetch4(next, j);
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        float32x4_t c[SK_ACT_U];
        uint32x4_t zero = vdupq_n_u32(~0u);
        for (int u = 0; u < SK_ACT_U; ++u) {
            c[u] = vld1q_f32(coef + u * n + i);
            zero = vandq_u32(zero, vceqzq_f32(c[u]));
        }
        if (vminvq_u32(zero)) continue;   /* all 16 coefficients are 0 */
        rows4(w, c, len, y + i * ldy, ldy);
    }
    for (; i < n; ++i) {
        float a[SK_ACT_U];
        int any = 0;
        for (int u = 0; u < SK_ACT_U; ++u) { a[u] = coef[u * n + i]; any |= a[u] != 0.0f; }
        if (any) gemv_group(w, a, NULL, len, y + i * ldy);
    }
}

void sk_f32_act_linear_neon(const float *wt, int64_t ldw, const int32_t *idx, const float *coef,
                            int64_t nact, int64_t n, int64_t len, float *y,
                            int64_t ldy) {
    int64_t c = 0;
    for (; c + SK_ACT_U <= nact; c += SK_ACT_U) {
        const float *w[SK_ACT_U], *nx[SK_ACT_U];
        for (int u = 0; u < SK_ACT_U; ++u) w[u] = wt + (int64_t)idx[c + u] * ldw;
        const int has_next = c + 2 * SK_ACT_U <= nact;
        if (has_next)
            for (int u = 0; u < SK_ACT_U; ++u) nx[u] = wt + (int64_t)idx[c + SK_ACT_U + u] * ldw;
        if (n == 1)
            gemv_group(w, coef + c, has_next ? nx : NULL, len, y);
        else
            batch_group(w, coef + c * n, n, has_next ? nx : NULL, len, y, ldy);
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
