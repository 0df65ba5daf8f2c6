/* The x86 N:M kernels (x86_avx2.c, x86_avx512.c), written once against
 * csrc/core/x86_vec.h (W = SK_VF_LANES floats per vector).
 *
 * n == 1: the row loop over the includer's batch-1 steps (each ISA picks the slots' x
 *   from windows of X with its own permutes). The includer defines, before this header,
 *   gemv_plan (with a member st: the sk_nm_step_plan for W lanes) and
 *     sk_vf gemv_step(const gemv_plan *, const uint8_t *meta, int64_t j0, int b,
 *                     const float *xg, const float *vals, sk_vf acc, NWIN, FULL, WORD,
 *                     DYN, NN, BB)
 *   (acc + the step's slots from slot j0, X of its first group at xg; WORD: the
 *   positions come from one word read, steps < st.nword), and anywhere in the file
 *   gemv_rows(w, r0, r1, x, bias, y, ldy), which makes the plan and picks gemv_rows_t's
 *   template arguments; and SK_NM_GEMV_LANES, the slots per step (its plan's lanes).
 * n > 1: one column tile of V vectors is computed in row blocks of SK_NM_RB rows; inside
 *   them K runs in blocks of SK_NM_KC_BYTES of X (L1-resident while the block's rows pass
 *   over it; Y is read back between K blocks); each slot broadcasts its weight and does
 *   one FMA per vector with the X row its position names, SK_NM_ROWS(V) rows at a time.
 *   The includer may define SK_NM_OWN_TILE(w, r, g0, g1, first, x, ldx, bias, y, ldy, V,
 *   MASKED, NN, BB): nonzero when its own tile computed rows r .. r + 3 (AVX-512's
 *   assembly one). */
#ifndef SK_NM_X86_BODY_H
#define SK_NM_X86_BODY_H

#include "x86_vec.h"
#include "nm_internal.h"

/* bytes of X per K block: 128 rows of a 64-column tile (AVX-512), 256 of a 32-column one */
#ifndef SK_NM_KC_BYTES
#define SK_NM_KC_BYTES 32768
#endif
#ifndef SK_NM_RB
#define SK_NM_RB 256
#endif
#ifndef SK_NM_PF_ROWS
#define SK_NM_PF_ROWS 8
#endif
/* vectors of the widest column tile (the rest of n: one tile of 1..SK_NM_TILE_V vectors) */
#define SK_NM_TILE_V 4
/* columns of W (rows of X) per K block of a tile of V vectors */
#define SK_NM_KC_COLS(V) (SK_NM_KC_BYTES / ((V) * SK_VF_LANES * 4))
/* N = 1, 2: slots per 16-byte load of weights (then splat in-lane) */
#define SK_NM_QUAD 4
#ifndef SK_NM_GEMV_LANES
#error "x86_body.h: define SK_NM_GEMV_LANES (the batch-1 plan's lanes) first"
#endif

/* ---------------------------------------------------------------- n == 1 */

/* the weight stream prefetched SK_NM_PF_DIST ahead, once per 64 bytes of values */
SK_INLINE void gemv_prefetch(const float *vals, int64_t j0) {
    sk_prefetch((const char *)(vals + j0) + SK_NM_PF_DIST);
}

SK_INLINE void gemv_rows_t(const sk_nm_f32 *w, const gemv_plan *p, int64_t r0, int64_t r1,
                           const float *x, const float *bias, float *y, int64_t ldy, const int NWIN,
                           const int FULL, const int DYN, const int NN, const int BB) {
    const int64_t slots = sk_nm_groups(w) * w->n;
    const int M = w->m, N = w->n, b = w->pos_bits, gs = p->st.gs;
    const int64_t nsteps = p->st.nsteps, nword = p->st.nword;
    for (int64_t r = r0; r < r1; ++r) {
        const float *vals = w->values + r * slots;
        const uint8_t *meta = w->meta + r * w->meta_stride;
        sk_vf a0 = sk_vf_zero(), a1 = sk_vf_zero();
        int64_t s = 0;
        for (; s + 2 <= nword; s += 2) {
            const int64_t g0 = s * gs;
            gemv_prefetch(vals, g0 * N);
            a0 = gemv_step(p, meta, g0 * N, b, x + g0 * M, vals, a0, NWIN, FULL, 1, DYN, NN, BB);
            if (SK_VF_LANES >= 16) gemv_prefetch(vals, (g0 + gs) * N);
            a1 = gemv_step(p, meta, (g0 + gs) * N, b, x + (g0 + gs) * M, vals, a1, NWIN, FULL, 1,
                           DYN, NN, BB);
        }
        for (; s < nsteps; ++s) {
            const int64_t g0 = s * gs;
            if (SK_VF_LANES >= 16 || s % 2 == 0) gemv_prefetch(vals, g0 * N);
            a0 = gemv_step(p, meta, g0 * N, b, x + g0 * M, vals, a0, NWIN, FULL, 0, DYN, NN, BB);
        }
        float acc = sk_vf_hsum(sk_vf_add(a0, a1));
        sk_nm_slots_scalar(w, r, s * gs * N, slots, x, 1, 1, &acc);
        y[r * ldy] = acc + (bias ? bias[r] : 0.0f);
    }
}

static void gemv_rows(const sk_nm_f32 *w, int64_t r0, int64_t r1, const float *x, const float *bias,
                      float *y, int64_t ldy);

/* ---------------------------------------------------------------- n > 1 */

/* groups per row; BB: log2 M when known at compile time (a shift, not a division: these
 * run per row quad) */
SK_INLINE int64_t nm_groups_t(const sk_nm_f32 *w, const int BB) {
    return BB ? (w->cols + (1 << BB) - 1) >> BB : sk_nm_groups(w);
}

/* Prefetch row rn's weights and positions of groups [g0, g1) (rows of `slots` values): W
 * streams from memory in row x K-block pieces the hardware prefetcher does not predict. */
SK_INLINE void prefetch_k_block(const sk_nm_f32 *w, int64_t rn, int64_t slots, int64_t g0,
                                int64_t g1, int N, int b) {
    if (rn >= w->rows) return;
    const char *nv = (const char *)(w->values + rn * slots + g0 * N);
    const int64_t nbytes = (g1 - g0) * N * 4;
    for (int64_t o = 0; o < nbytes; o += 64) sk_prefetch(nv + o);
    sk_prefetch(w->meta + rn * w->meta_stride + ((g0 * N * b) >> 3));
}

/* Rows [r, r + R), groups [g0, g1), times V vectors of columns (the last masked by `tail`
 * when MASKED). FIRST: start from the bias, else from Y. */
SK_INLINE void block_tile(const sk_nm_f32 *w, int64_t r, int64_t g0, int64_t g1, int first,
                          const float *x, int64_t ldx, const float *bias, float *y, int64_t ldy,
                          const int R, const int V, const int MASKED, sk_vmask tail, const int NN,
                          const int BB) {
    enum { PF = 1, W = SK_VF_LANES };
    /* NN, BB: the pattern's N and position bits when known at compile time, else 0 */
    const int N = NN ? NN : w->n, b = BB ? BB : w->pos_bits, M = BB ? 1 << BB : w->m;
    const int64_t G = nm_groups_t(w, BB), slots = G * N, gfull = w->cols / M;
    const uint64_t pmask = (UINT64_C(1) << b) - 1;
    const int gc = 64 / (N * b); /* groups whose positions fit one 64-bit read */
    const int64_t gend = g1 < gfull ? g1 : gfull;
    const float *vals[8];
    const uint8_t *meta[8];
    sk_vf acc[8][4];
#define SK_XLOAD(p, v) \
    (MASKED && (v) == V - 1 ? sk_vf_load_mask((p) + W * (v), tail) : sk_vf_load((p) + W * (v)))
    for (int u = 0; u < R; ++u) {
        vals[u] = w->values + (r + u) * slots;
        meta[u] = w->meta + (r + u) * w->meta_stride;
        if (PF) prefetch_k_block(w, r + u + R, slots, g0, g1, N, b); /* the next row block's */
        const float *yrow = y + (r + u) * ldy;
        const sk_vf b0 = sk_vf_splat(bias ? bias[r + u] : 0.0f);
        for (int v = 0; v < V; ++v) acc[u][v] = first ? b0 : SK_XLOAD(yrow, v);
    }
    /* NN = 1, 2: four slots of a row take one 16-byte load and in-lane splats */
    const int GQ = NN == 1 || NN == 2 ? SK_NM_QUAD / NN : 0;
    for (int64_t g = g0; g < gend; g += gc) {
        const int cnt = gend - g < gc ? (int)(gend - g) : gc;
        uint64_t bits[8];
        for (int u = 0; u < R; ++u) bits[u] = sk_nm_bits(meta[u], g * N * b, cnt * N * b);
        int gg = 0;
        for (; GQ && gg + GQ <= cnt; gg += GQ) {
            const int64_t j = (g + gg) * N;
            sk_vf wq[8];
            for (int u = 0; u < R; ++u) wq[u] = sk_vf_bcast4(vals[u] + j);
#define SK_NM_QSLOT(T)                                                                     \
    for (int u = 0; u < R; ++u) {                                                          \
        const float *xr = x + ((g + gg + (T) / N) * M + (int)(bits[u] & pmask)) * ldx;     \
        bits[u] >>= b;                                                                     \
        const sk_vf wv = sk_vf_splat_lane4(wq[u], T);                                      \
        for (int v = 0; v < V; ++v) acc[u][v] = sk_vf_fma(acc[u][v], wv, SK_XLOAD(xr, v)); \
    }
            SK_NM_QSLOT(0) SK_NM_QSLOT(1) SK_NM_QSLOT(2) SK_NM_QSLOT(3)
#undef SK_NM_QSLOT
        }
        for (; gg < cnt; ++gg) {
            const float *xg = x + (g + gg) * M * ldx;
            const int64_t j = (g + gg) * N;
            for (int s = 0; s < N; ++s) {
                for (int u = 0; u < R; ++u) {
                    const int pos = (int)(bits[u] & pmask);
                    bits[u] >>= b;
                    const sk_vf wv = sk_vf_splat(vals[u][j + s]);
                    const float *xr = xg + pos * ldx;
                    for (int v = 0; v < V; ++v)
                        acc[u][v] = sk_vf_fma(acc[u][v], wv, SK_XLOAD(xr, v));
                }
            }
        }
    }
    if (g1 == G && gfull < G) { /* the padded last group: skip the slots past the last column */
        for (int u = 0; u < R; ++u) {
            for (int64_t j = gfull * N; j < slots; ++j) {
                const int64_t col = gfull * M + sk_nm_pos(meta[u], j, b);
                if (col >= w->cols) continue;
                const sk_vf wv = sk_vf_splat(vals[u][j]);
                const float *xr = x + col * ldx;
                for (int v = 0; v < V; ++v) acc[u][v] = sk_vf_fma(acc[u][v], wv, SK_XLOAD(xr, v));
            }
        }
    }
#undef SK_XLOAD
    for (int u = 0; u < R; ++u) {
        float *yrow = y + (r + u) * ldy;
        for (int v = 0; v < V; ++v) {
            if (MASKED && v == V - 1) sk_vf_store_mask(yrow + W * v, tail, acc[u][v]);
            else sk_vf_store(yrow + W * v, acc[u][v]);
        }
    }
}

/* rows per tile of V vectors: one-vector tiles take 8 rows (independent FMA chains to
 * cover the FMA latency); wider ones 4 with 32 registers, 3 with 16 (4 x 4 accumulators
 * spill) */
#define SK_NM_ROWS(V) ((V) == 1 ? 8 : SK_VF_REGS >= 32 ? 4 : 3)
#ifndef SK_NM_OWN_TILE
#define SK_NM_OWN_TILE(w, r, g0, g1, first, x, ldx, bias, y, ldy, V, MASKED, NN, BB) 0
#endif

/* One column tile (V vectors) of rows [r0, r1): row blocks of SK_NM_RB rows outside, K
 * blocks inside them, tiles of SK_NM_ROWS(V) rows innermost. Each row block's Y stays in
 * cache across its K blocks and W is read in row-block pieces. */
SK_INLINE void col_tile_t(const sk_nm_f32 *w, int64_t r0, int64_t r1, const float *x, int64_t ldx,
                          const float *bias, float *y, int64_t ldy, const int V, const int MASKED,
                          sk_vmask tail, const int NN, const int BB) {
    const int64_t G = sk_nm_groups(w);
    int64_t kc = SK_NM_KC_COLS(V) / w->m;
    /* >= 32 slots per row and K block, so reloading Y between blocks stays cheap */
    if (kc * w->n < 32) kc = (32 + w->n - 1) / w->n;
    if (G == 0) kc = 1;
    for (int64_t rb0 = r0; rb0 < r1; rb0 += SK_NM_RB) {
        const int64_t rb1 = rb0 + SK_NM_RB < r1 ? rb0 + SK_NM_RB : r1;
        for (int64_t g0 = 0; g0 < G || g0 == 0; g0 += kc) {
            const int64_t g1 = g0 + kc < G ? g0 + kc : G;
            const int first = g0 == 0;
            int64_t r = rb0;
            for (; r + SK_NM_ROWS(V) <= rb1; r += SK_NM_ROWS(V))
                if (!SK_NM_OWN_TILE(w, r, g0, g1, first, x, ldx, bias, y, ldy, V, MASKED, NN, BB))
                    block_tile(w, r, g0, g1, first, x, ldx, bias, y, ldy, SK_NM_ROWS(V), V, MASKED,
                               tail, NN, BB);
            for (; r < rb1; ++r)
                block_tile(w, r, g0, g1, first, x, ldx, bias, y, ldy, 1, V, MASKED, tail, NN, BB);
            if (G == 0) break;
        }
    }
}

/* the common patterns with N and M known at compile time */
SK_INLINE void col_tile(const sk_nm_f32 *w, int64_t r0, int64_t r1, const float *x, int64_t ldx,
                        const float *bias, float *y, int64_t ldy, const int V, const int MASKED,
                        sk_vmask tail) {
    const int nm = w->n * 100 + w->m;
    if (nm == 204) col_tile_t(w, r0, r1, x, ldx, bias, y, ldy, V, MASKED, tail, 2, 2);
    else if (nm == 104) col_tile_t(w, r0, r1, x, ldx, bias, y, ldy, V, MASKED, tail, 1, 2);
    else if (nm == 108) col_tile_t(w, r0, r1, x, ldx, bias, y, ldy, V, MASKED, tail, 1, 3);
    else col_tile_t(w, r0, r1, x, ldx, bias, y, ldy, V, MASKED, tail, 0, 0);
}

/* Y[:, 0:n] for rows [r0, r1): column tiles of 4 vectors, then the rest in one tile of 1-4
 * vectors whose last is masked (one more pass over W, not one per vector width) */
static void spmm_rows(const sk_nm_f32 *w, int64_t r0, int64_t r1, const float *x, int64_t n,
                      int64_t ldx, const float *bias, float *y, int64_t ldy) {
    enum { W = SK_VF_LANES };
    const sk_vmask none = sk_vmask_none();
    int64_t j = 0;
    for (; j + SK_NM_TILE_V * W <= n; j += SK_NM_TILE_V * W)
        col_tile(w, r0, r1, x + j, ldx, bias, y + j, ldy, SK_NM_TILE_V, 0, none);
    const int rem = (int)(n - j), V = (rem + W - 1) / W, k = rem - (V - 1) * W;
    x += j;
    y += j;
    if (rem == 0) return;
    if (k == W) { /* whole vectors */
        if (V == 1) col_tile(w, r0, r1, x, ldx, bias, y, ldy, 1, 0, none);
        else if (V == 2) col_tile(w, r0, r1, x, ldx, bias, y, ldy, 2, 0, none);
        else col_tile(w, r0, r1, x, ldx, bias, y, ldy, 3, 0, none);
        return;
    }
    const sk_vmask tail = sk_vmask_first(k);
    if (V == 1) col_tile(w, r0, r1, x, ldx, bias, y, ldy, 1, 1, tail);
    else if (V == 2) col_tile(w, r0, r1, x, ldx, bias, y, ldy, 2, 1, tail);
    else if (V == 3) col_tile(w, r0, r1, x, ldx, bias, y, ldy, 3, 1, tail);
    else col_tile(w, r0, r1, x, ldx, bias, y, ldy, 4, 1, tail);
}

void SK_VF_FN(sk_f32_spmm_nm)(const sk_nm_f32 *w, int64_t r0, int64_t r1, const float *x, int64_t n,
                              int64_t ldx, const float *bias, float *y, int64_t ldy) {
    if (n == 1 && ldx == 1) {
        gemv_rows(w, r0, r1, x, bias, y, ldy);
        return;
    }
    spmm_rows(w, r0, r1, x, n, ldx, bias, y, ldy);
}

const sk_tiling SK_VF_FN(sk_f32_spmm_nm_tiling) = {
    .n_tiles = {SK_NM_TILE_V * SK_VF_LANES, SK_VF_LANES},
    .k_step = SK_NM_QUAD,
    .k_step1 = SK_NM_GEMV_LANES,
    .k_block = SK_NM_KC_COLS(SK_NM_TILE_V),
    .row_block = SK_NM_ROWS(SK_NM_TILE_V),
    .row_block1 = SK_NM_ROWS(1),
    .row_group = SK_NM_RB,
};

#endif
