/* The activation-sparse microkernel of the x86 variants (x86_avx2.c, x86_avx512.c; see
 * act_internal.h), written once against csrc/core/x86_vec.h (W = SK_VF_LANES).
 *
 * Batch 1: four active channels per step, y += a0*w0 + a1*w1 + a2*w2 + a3*w3, so y (in
 * L1) is loaded and stored once per four weight rows; the weight rows stream from
 * memory. Rows are skipped irregularly, so the hardware prefetchers see short streams
 * that start at unpredictable addresses: while a group of four rows is processed, the
 * same columns of the next group's rows are prefetched into L1 (one group ahead; into L2,
 * or 8 channels per step, was no faster on Zen 5).
 * Batch n > 1 (union of the rows' active channels): SK_ACT_ROWS rows at a time share
 * every weight vector load (4 * SK_ACT_ROWS coefficients in registers); a set of rows
 * whose coefficients are all zero is skipped. */
#ifndef SK_ACT_X86_BODY_H
#define SK_ACT_X86_BODY_H

#include "x86_vec.h"
#include "act_internal.h"

#define SK_ACT_U 4 /* active channels per step */
/* rows per batch step: 4 (16 coefficients, 1.5 loads per FMA instead of 2.5 for one row)
 * with 32 registers, 2 with 16 */
#define SK_ACT_ROWS (SK_VF_REGS >= 32 ? 4 : 2)
/* batch 1: vectors of y per step (the loop is written out for 2), then masked vectors */
#define SK_ACT_GEMV_V 2

/* the batch path's prefetch of the next group: into L2 with AVX-512, L1 with AVX2 */
SK_INLINE void batch_prefetch(const float *p) {
    if (SK_VF_LANES == 16) sk_prefetch_l2(p);
    else sk_prefetch(p);
}

/* y[j0:j1] += sum_u coef[u] * w[u][j0:j1]; the same columns of next[] prefetched */
static void gemv_group(const float *const *w, const float *coef, const float *const *next,
                       int64_t j0, int64_t j1, float *y) {
    enum { W = SK_VF_LANES };
    sk_vf a[SK_ACT_U];
    for (int u = 0; u < SK_ACT_U; ++u) a[u] = sk_vf_splat(coef[u]);
    int64_t j = j0;
    for (; j + SK_ACT_GEMV_V * W <= j1; j += SK_ACT_GEMV_V * W) {
        if (next)
            for (int u = 0; u < SK_ACT_U; ++u)
                for (int o = 0; o < SK_ACT_GEMV_V * W; o += 16) sk_prefetch(next[u] + j + o);
        sk_vf s0 = sk_vf_load(y + j), s1 = sk_vf_load(y + j + W);
        sk_vf t0 = sk_vf_mul(a[1], sk_vf_load(w[1] + j));
        sk_vf t1 = sk_vf_mul(a[1], sk_vf_load(w[1] + j + W));
        s0 = sk_vf_fma(s0, a[0], sk_vf_load(w[0] + j));
        s1 = sk_vf_fma(s1, a[0], sk_vf_load(w[0] + j + W));
        for (int u = 2; u < SK_ACT_U; u += 2) {
            s0 = sk_vf_fma(s0, a[u], sk_vf_load(w[u] + j));
            s1 = sk_vf_fma(s1, a[u], sk_vf_load(w[u] + j + W));
            t0 = sk_vf_fma(t0, a[u + 1], sk_vf_load(w[u + 1] + j));
            t1 = sk_vf_fma(t1, a[u + 1], sk_vf_load(w[u + 1] + j + W));
        }
        sk_vf_store(y + j, sk_vf_add(s0, t0));
        sk_vf_store(y + j + W, sk_vf_add(s1, t1));
    }
    for (; j < j1; j += W) { /* j1 - j < 2W: the first mask may be all lanes */
        const sk_vmask m = sk_vmask_first(j1 - j);
        sk_vf s = sk_vf_load_mask(y + j, m);
        sk_vf t = sk_vf_mul(a[1], sk_vf_load_mask(w[1] + j, m));
        s = sk_vf_fma(s, a[0], sk_vf_load_mask(w[0] + j, m));
        for (int u = 2; u < SK_ACT_U; u += 2) {
            s = sk_vf_fma(s, a[u], sk_vf_load_mask(w[u] + j, m));
            t = sk_vf_fma(t, a[u + 1], sk_vf_load_mask(w[u + 1] + j, m));
        }
        sk_vf_store_mask(y + j, m, sk_vf_add(s, t));
    }
}

static void gemv_one(const float *w0, float a, int64_t j0, int64_t j1, float *y) {
    enum { W = SK_VF_LANES };
    const sk_vf a0 = sk_vf_splat(a);
    int64_t j = j0;
    for (; j + W <= j1; j += W)
        sk_vf_store(y + j, sk_vf_fma(sk_vf_load(y + j), a0, sk_vf_load(w0 + j)));
    if (j < j1) {
        const sk_vmask m = sk_vmask_first(j1 - j);
        sk_vf_store_mask(y + j, m,
                         sk_vf_fma(sk_vf_load_mask(y + j, m), a0, sk_vf_load_mask(w0 + j, m)));
    }
}

/* SK_ACT_ROWS rows of y += their coefficients (coef[u*n + r]) times the group's weight
 * rows; plain loads and stores but for the tail (masked stores are microcoded on AMD
 * cores) */
static void batch_rows(const float *const *w, const float *coef, int64_t n, int64_t j0, int64_t j1,
                       float *y, int64_t ldy) {
    enum { W = SK_VF_LANES, R = SK_ACT_ROWS };
    sk_vf a[SK_ACT_U][R];
    for (int u = 0; u < SK_ACT_U; ++u)
        for (int r = 0; r < R; ++r) a[u][r] = sk_vf_splat(coef[u * n + r]);
    int64_t j = j0;
    for (; j + W <= j1; j += W) {
        sk_vf s[R];
        for (int r = 0; r < R; ++r) s[r] = sk_vf_load(y + r * ldy + j);
        for (int u = 0; u < SK_ACT_U; ++u) {
            const sk_vf wv = sk_vf_load(w[u] + j);
            for (int r = 0; r < R; ++r) s[r] = sk_vf_fma(s[r], a[u][r], wv);
        }
        for (int r = 0; r < R; ++r) sk_vf_store(y + r * ldy + j, s[r]);
    }
    if (j < j1) {
        const sk_vmask m = sk_vmask_first(j1 - j);
        sk_vf s[R];
        for (int r = 0; r < R; ++r) s[r] = sk_vf_load_mask(y + r * ldy + j, m);
        for (int u = 0; u < SK_ACT_U; ++u) {
            const sk_vf wv = sk_vf_load_mask(w[u] + j, m);
            for (int r = 0; r < R; ++r) s[r] = sk_vf_fma(s[r], a[u][r], wv);
        }
        for (int r = 0; r < R; ++r) sk_vf_store_mask(y + r * ldy + j, m, s[r]);
    }
}

/* n > 1: the rows of one group of channels (weights reloaded from L1 per row step) */
static void batch_group(const float *const *w, const float *coef, int64_t n,
                        const float *const *next, int64_t j0, int64_t j1, float *y, int64_t ldy) {
    if (next)
        for (int64_t j = j0; j < j1; j += 16)
            for (int u = 0; u < SK_ACT_U; ++u) batch_prefetch(next[u] + j);
    int64_t i = 0;
    for (; i + SK_ACT_ROWS <= n; i += SK_ACT_ROWS) {
        int any = 0;
        for (int u = 0; u < SK_ACT_U; ++u)
            for (int r = 0; r < SK_ACT_ROWS; ++r) any |= coef[u * n + i + r] != 0.0f;
        if (any) batch_rows(w, coef + i, n, j0, j1, y + i * ldy, ldy);
    }
    for (; i < n; ++i) {
        float cc[SK_ACT_U];
        int any = 0;
        for (int u = 0; u < SK_ACT_U; ++u) {
            cc[u] = coef[u * n + i];
            any |= cc[u] != 0.0f;
        }
        if (any) gemv_group(w, cc, NULL, j0, j1, y + i * ldy);
    }
}

void SK_VF_FN(sk_f32_act_linear)(const float *wt, int64_t ldw, const int32_t *idx,
                                 const float *coef, int64_t nact, int64_t n, int64_t len, float *y,
                                 int64_t ldy) {
    int64_t c = 0;
    for (; c + SK_ACT_U <= nact; c += SK_ACT_U) {
        const float *w[SK_ACT_U], *nx[SK_ACT_U];
        for (int u = 0; u < SK_ACT_U; ++u) w[u] = wt + (int64_t)idx[c + u] * ldw;
        const int has_next = c + 2 * SK_ACT_U <= nact;
        if (has_next)
            for (int u = 0; u < SK_ACT_U; ++u) nx[u] = wt + (int64_t)idx[c + SK_ACT_U + u] * ldw;
        if (n == 1) gemv_group(w, coef + c, has_next ? nx : NULL, 0, len, y);
        else batch_group(w, coef + c * n, n, has_next ? nx : NULL, 0, len, y, ldy);
    }
    for (; c < nact; ++c) {
        const float *w0 = wt + (int64_t)idx[c] * ldw;
        for (int64_t i = 0; i < n; ++i) {
            const float a = coef[c * n + i];
            if (n > 1 && a == 0.0f) continue;
            gemv_one(w0, a, 0, len, y + i * ldy);
        }
    }
}

const sk_tiling SK_VF_FN(sk_f32_act_linear_tiling) = {
    .n_tiles = {SK_ACT_GEMV_V * SK_VF_LANES, SK_VF_LANES},
    .k_step = SK_ACT_U,
    .k_step1 = SK_ACT_U,
    .row_block = SK_ACT_ROWS,
    .row_block1 = 1,
};

#endif
