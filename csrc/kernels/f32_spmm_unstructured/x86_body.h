/* The unstructured SpMM kernel of the x86 variants (x86_avx2.c, x86_avx512.c), written
 * once against csrc/core/x86_vec.h (W = SK_VF_LANES floats per vector).
 *   n == 1: per row, X gathered with scalar loads into 8-wide vectors, 16 nonzeros a step
 *           (8 lanes on both ISAs: wider gathers are slower on the CPUs measured, and
 *           scalar loads beat vgatherdps and a scalar FMA loop).
 *   n  > 1: per row, tiles of 4W/2W/W columns and a masked tail; each nonzero broadcasts
 *           its value and multiplies one row of X, U nonzeros in flight per step (into U
 *           sets of accumulators) so the FMA latency is hidden. With 32 registers (AVX-512) rows long enough run in
 *           quads (quad_tile: 4 rows x 4 vectors, 16 accumulators), and with the panel
 *           layout 4W-column blocks of X run panel_quads, or the includer's own kernel.
 * The includer may define SK_SPMM_U_OWN(w, r0, r1, x, n, ldx, bias, y, ldy): nonzero when
 * its own kernel computed the rows (AVX-512: the assembly panel kernel). */
#ifndef SK_SPMM_U_X86_BODY_H
#define SK_SPMM_U_X86_BODY_H

#include "x86_vec.h"
#include "x86_avx512_panels.h"

#ifndef SK_SPMM_U_OWN
#define SK_SPMM_U_OWN(w, r0, r1, x, n, ldx, bias, y, ldy) 0
#endif

/* 4 rows x 4 vectors: 16 accumulators, which spill with 16 registers */
#define SK_SPMM_U_QUADS (SK_VF_REGS >= 32)
#define SK_SPMM_U_QUAD_ROWS 4
/* rows run in quads when they hold at least this many nonzeros on average */
#define SK_SPMM_U_QUAD_MIN_NNZ 48
/* n > 1: column tiles of SK_SPMM_U_V vectors, then one of half as many, then one vector,
 * then a masked tail; a tile of V vectors takes SK_SPMM_U_ACC / V nonzeros per step (into
 * as many sets of accumulators), the masked tail SK_SPMM_U_ACC / 2 */
#define SK_SPMM_U_V 4
#define SK_SPMM_U_ACC 8
/* n == 1: nonzeros per step (gathered into two 8-wide vectors) */
#define SK_SPMM_U_GEMV_K 16

/* ---------------------------------------------------------------- n == 1 */

SK_INLINE void gemv_rows(const sk_csr_f32 *w, int64_t r0, int64_t r1, const float *x,
                         const float *bias, float *y, int64_t ldy, int wide) {
    const float *SK_RESTRICT values = w->values;
    const void *col = w->col_idx;
#define SK_XG(i) x[sk_col_at(col, wide ? 32 : 16, p + (i))]
    /* x at the 16 columns from col[p] into X0, X1. 16-bit indices come four per 8-byte
     * load, split in general registers (the empty asm keeps GCC from narrowing that back
     * into a load per index): the gather is short of load slots, not of arithmetic. */
#define SK_X16(c, k) x[(uint16_t)((c) >> (16 * (k)))]
#define SK_GATHER16(X0, X1)                                                                        \
    do {                                                                                           \
        if (!wide) {                                                                               \
            uint64_t c0, c1, c2, c3;                                                               \
            memcpy(&c0, (const uint16_t *)col + p, 8);                                             \
            memcpy(&c1, (const uint16_t *)col + p + 4, 8);                                         \
            memcpy(&c2, (const uint16_t *)col + p + 8, 8);                                         \
            memcpy(&c3, (const uint16_t *)col + p + 12, 8);                                        \
            __asm__("" : "+r"(c0), "+r"(c1), "+r"(c2), "+r"(c3));                                  \
            X0 = sk_v8f_make(SK_X16(c0, 0), SK_X16(c0, 1), SK_X16(c0, 2), SK_X16(c0, 3),           \
                             SK_X16(c1, 0), SK_X16(c1, 1), SK_X16(c1, 2), SK_X16(c1, 3));          \
            X1 = sk_v8f_make(SK_X16(c2, 0), SK_X16(c2, 1), SK_X16(c2, 2), SK_X16(c2, 3),           \
                             SK_X16(c3, 0), SK_X16(c3, 1), SK_X16(c3, 2), SK_X16(c3, 3));          \
        } else {                                                                                   \
            X0 = sk_v8f_make(SK_XG(0), SK_XG(1), SK_XG(2), SK_XG(3), SK_XG(4), SK_XG(5), SK_XG(6), \
                             SK_XG(7));                                                            \
            X1 = sk_v8f_make(SK_XG(8), SK_XG(9), SK_XG(10), SK_XG(11), SK_XG(12), SK_XG(13),       \
                             SK_XG(14), SK_XG(15));                                                \
        }                                                                                          \
    } while (0)
    for (int64_t m = r0; m < r1; ++m) {
        int64_t p = w->row_ptr[m];
        const int64_t end = w->row_ptr[m + 1];
        sk_v8f a0 = sk_v8f_zero(), a1 = sk_v8f_zero();
        for (; p + SK_SPMM_U_GEMV_K <= end; p += SK_SPMM_U_GEMV_K) {
            sk_v8f x0, x1;
            SK_GATHER16(x0, x1);
            a0 = sk_v8f_fma(a0, sk_v8f_load(values + p), x0);
            a1 = sk_v8f_fma(a1, sk_v8f_load(values + p + 8), x1);
        }
        const int64_t rem = end - p; /* 0..15 left */
        if (rem > 0 && p + SK_SPMM_U_GEMV_K <= w->nnz) {
            /* Branch-free tail: two 8-wide steps whose lanes past the row's end are
             * masked off. The indices read there belong to the next rows (in bounds,
             * valid columns); their x lanes are zeroed so inf/NaN cannot leak in. */
            const sk_m8 k0 = sk_m8_first(rem), k1 = sk_m8_first(rem - 8);
            sk_v8f x0, x1;
            SK_GATHER16(x0, x1);
            a0 = sk_v8f_fma(a0, sk_v8f_load_mask(values + p, k0), sk_v8f_and_mask(x0, k0));
            a1 = sk_v8f_fma(a1, sk_v8f_load_mask(values + p + 8, k1), sk_v8f_and_mask(x1, k1));
            p = end;
        }
        float acc = sk_v8f_hsum(sk_v8f_add(a0, a1));
        for (; p < end; ++p) acc += values[p] * SK_XG(0);
        y[m * ldy] = acc + (bias ? bias[m] : 0.0f);
    }
#undef SK_GATHER16
#undef SK_X16
#undef SK_XG
}

/* ---------------------------------------------------------------- n > 1 */

/* One row of W times V vectors of X columns (the last one masked by `tail` when
 * MASKED), U nonzeros per step into U sets of accumulators (U = SK_SPMM_U_ACC: then one
 * step of half as many). */
SK_INLINE void row_tile(const float *SK_RESTRICT values, const void *col, int wide, int64_t p,
                        int64_t end, const float *x, int64_t ldx, float b, float *yrow, const int V,
                        const int U, const int MASKED, sk_vmask tail) {
    enum { W = SK_VF_LANES };
    sk_vf acc[SK_SPMM_U_ACC][SK_SPMM_U_V];
    for (int u = 0; u < U; ++u)
        for (int v = 0; v < V; ++v) acc[u][v] = u == 0 ? sk_vf_splat(b) : sk_vf_zero();
#define SK_XLOAD(xr, v) \
    (MASKED && (v) == V - 1 ? sk_vf_load_mask((xr) + W * (v), tail) : sk_vf_load((xr) + W * (v)))
    for (; p + U <= end; p += U) {
        for (int u = 0; u < U; ++u) {
            const sk_vf wv = sk_vf_splat(values[p + u]);
            const float *xr = x + sk_col_at(col, wide ? 32 : 16, p + u) * ldx;
            for (int v = 0; v < V; ++v) acc[u][v] = sk_vf_fma(acc[u][v], wv, SK_XLOAD(xr, v));
        }
    }
    if (U == SK_SPMM_U_ACC && p + U / 2 <= end) {
        for (int u = 0; u < U / 2; ++u) {
            const sk_vf wv = sk_vf_splat(values[p + u]);
            const float *xr = x + sk_col_at(col, wide ? 32 : 16, p + u) * ldx;
            for (int v = 0; v < V; ++v) acc[u][v] = sk_vf_fma(acc[u][v], wv, SK_XLOAD(xr, v));
        }
        p += U / 2;
    }
    for (; p < end; ++p) {
        const sk_vf wv = sk_vf_splat(values[p]);
        const float *xr = x + sk_col_at(col, wide ? 32 : 16, p) * ldx;
        for (int v = 0; v < V; ++v) acc[0][v] = sk_vf_fma(acc[0][v], wv, SK_XLOAD(xr, v));
    }
#undef SK_XLOAD
    for (int v = 0; v < V; ++v) {
        sk_vf s = acc[0][v];
        for (int u = 1; u < U; ++u) s = sk_vf_add(s, acc[u][v]);
        if (MASKED && v == V - 1) sk_vf_store_mask(yrow + W * v, tail, s);
        else sk_vf_store(yrow + W * v, s);
    }
}

/* Four rows of W times 4 vectors of X: the rows' nonzeros are interleaved up to the
 * shortest row's length (16 independent accumulators keep both FMA pipes busy while X
 * rows arrive from L2), then each row finishes on its own. */
SK_INLINE void quad_tile(const float *SK_RESTRICT values, const void *col, int wide,
                         const int64_t *row_ptr, int64_t m, const float *x, int64_t ldx,
                         const float *bias, float *y, int64_t ldy) {
    enum { W = SK_VF_LANES, Q = SK_SPMM_U_QUAD_ROWS };
    const int bits = wide ? 32 : 16;
    int64_t p[Q], e[Q];
    sk_vf acc[Q][4];
    int64_t common = INT64_MAX;
    for (int r = 0; r < Q; ++r) {
        p[r] = row_ptr[m + r];
        e[r] = row_ptr[m + r + 1];
        if (e[r] - p[r] < common) common = e[r] - p[r];
        const sk_vf b = sk_vf_splat(bias ? bias[m + r] : 0.0f);
        for (int v = 0; v < 4; ++v) acc[r][v] = b;
    }
    for (int64_t s = 0; s < common; ++s) {
        for (int r = 0; r < Q; ++r) {
            const sk_vf wv = sk_vf_splat(values[p[r] + s]);
            const float *xr = x + sk_col_at(col, bits, p[r] + s) * ldx;
            for (int v = 0; v < 4; ++v)
                acc[r][v] = sk_vf_fma(acc[r][v], wv, sk_vf_load(xr + W * v));
        }
    }
    for (int r = 0; r < Q; ++r) {
        sk_vf t[4];
        for (int v = 0; v < 4; ++v) t[v] = sk_vf_zero();
        int64_t q = p[r] + common;
        for (; q + 2 <= e[r]; q += 2) {
            const sk_vf w0 = sk_vf_splat(values[q]), w1 = sk_vf_splat(values[q + 1]);
            const float *x0 = x + sk_col_at(col, bits, q) * ldx,
                        *x1 = x + sk_col_at(col, bits, q + 1) * ldx;
            for (int v = 0; v < 4; ++v) {
                acc[r][v] = sk_vf_fma(acc[r][v], w0, sk_vf_load(x0 + W * v));
                t[v] = sk_vf_fma(t[v], w1, sk_vf_load(x1 + W * v));
            }
        }
        if (q < e[r]) {
            const sk_vf w0 = sk_vf_splat(values[q]);
            const float *x0 = x + sk_col_at(col, bits, q) * ldx;
            for (int v = 0; v < 4; ++v)
                acc[r][v] = sk_vf_fma(acc[r][v], w0, sk_vf_load(x0 + W * v));
        }
        float *yr = y + (m + r) * ldy;
        for (int v = 0; v < 4; ++v) sk_vf_store(yr + W * v, sk_vf_add(acc[r][v], t[v]));
    }
}

/* Quads [q0, q1) times one 4-vector tile from the panel layout (sparsekern.h): panels
 * outermost, so each panel of X (SK_PANEL_K rows of the tile) stays in L1 while every
 * quad passes over it; Y is reloaded per panel. Padding (value 0) multiplies row 0. */
SK_INLINE void panel_quads(const sk_csr_f32 *w, int64_t q0, int64_t q1, const float *x, int64_t ldx,
                           const float *bias, float *y, int64_t ldy) {
    enum { W = SK_VF_LANES };
    const int64_t P = (w->cols + SK_PANEL_K - 1) / SK_PANEL_K;
    for (int64_t p = 0; p < P; ++p) {
        const float *xp = x + p * SK_PANEL_K * ldx;
        for (int64_t q = q0; q < q1; ++q) {
            const int64_t b0 = w->panel_off[q * P + p], b1 = w->panel_off[q * P + p + 1];
            sk_vf acc[4][4];
            for (int r = 0; r < 4; ++r) {
                float *yr = y + (4 * q + r) * ldy;
                const sk_vf b = sk_vf_splat(bias ? bias[4 * q + r] : 0.0f);
                for (int v = 0; v < 4; ++v) acc[r][v] = p == 0 ? b : sk_vf_load(yr + W * v);
            }
            for (int64_t e = b0; e < b1; e += 4) {
                for (int r = 0; r < 4; ++r) {
                    const float *xr = xp + (int64_t)w->panel_col[e + r] * ldx;
                    const sk_vf wv = sk_vf_splat(w->panel_val[e + r]);
                    for (int v = 0; v < 4; ++v)
                        acc[r][v] = sk_vf_fma(acc[r][v], wv, sk_vf_load(xr + W * v));
                }
            }
            for (int r = 0; r < 4; ++r) {
                float *yr = y + (4 * q + r) * ldy;
                for (int v = 0; v < 4; ++v) sk_vf_store(yr + W * v, acc[r][v]);
            }
        }
    }
}

/* Row m, columns [j0, n): tiles of 4W/2W/W columns and a masked tail. */
SK_INLINE void row_cols(const sk_csr_f32 *w, int64_t m, const float *x, int64_t j0, int64_t n,
                        int64_t ldx, const float *bias, float *y, int64_t ldy, int wide) {
    enum { W = SK_VF_LANES, V0 = SK_SPMM_U_V, V1 = SK_SPMM_U_V / 2, A = SK_SPMM_U_ACC };
    const float *values = w->values;
    const void *col = w->col_idx;
    const int64_t p = w->row_ptr[m], end = w->row_ptr[m + 1];
    const float b = bias ? bias[m] : 0.0f;
    float *yrow = y + m * ldy;
    const sk_vmask none = sk_vmask_none();
    int64_t j = j0;
    for (; j + V0 * W <= n; j += V0 * W)
        row_tile(values, col, wide, p, end, x + j, ldx, b, yrow + j, V0, A / V0, 0, none);
    if (j + V1 * W <= n) {
        row_tile(values, col, wide, p, end, x + j, ldx, b, yrow + j, V1, A / V1, 0, none);
        j += V1 * W;
    }
    /* one vector: 8 sets of accumulators (with 4 the FMA latency bounds the loop) */
    if (j + W <= n) {
        row_tile(values, col, wide, p, end, x + j, ldx, b, yrow + j, 1, A, 0, none);
        j += W;
    }
    if (j < n)
        row_tile(values, col, wide, p, end, x + j, ldx, b, yrow + j, 1, A / 2, 1,
                 sk_vmask_first(n - j));
}

SK_INLINE void spmm_rows(const sk_csr_f32 *w, int64_t r0, int64_t r1, const float *x, int64_t n,
                         int64_t ldx, const float *bias, float *y, int64_t ldy, int wide) {
    enum { T = 4 * SK_VF_LANES };
    const int64_t nt = n / T * T;
    int64_t m = r0;
    if (SK_SPMM_U_QUADS && nt > 0 && w->panel_off) {
        const int64_t q0 = (r0 + 3) / 4, q1 = r1 / 4 < w->rows / 4 ? r1 / 4 : w->rows / 4;
        if (q0 < q1) {
            for (; m < 4 * q0; ++m) row_cols(w, m, x, 0, n, ldx, bias, y, ldy, wide);
            for (int64_t j = 0; j < nt; j += T)
                panel_quads(w, q0, q1, x + j, ldx, bias, y + j, ldy);
            if (nt < n)
                for (int64_t r = 4 * q0; r < 4 * q1; ++r)
                    row_cols(w, r, x, nt, n, ldx, bias, y, ldy, wide);
            m = 4 * q1;
        }
    } else if (SK_SPMM_U_QUADS && nt > 0 && w->nnz >= SK_SPMM_U_QUAD_MIN_NNZ * w->rows) {
        /* quads pay on long rows; on short ones (1x1 convolutions with few input channels)
         * their leftover loops cost more than the extra parallelism gains. They start at
         * multiples of 4, and the operator splits rows between threads there too: each
         * row is then summed in the same order whatever the thread count. */
        enum { Q = SK_SPMM_U_QUAD_ROWS };
        for (; m % Q != 0 && m < r1; ++m) row_cols(w, m, x, 0, n, ldx, bias, y, ldy, wide);
        for (; m + Q <= r1; m += Q) {
            for (int64_t j = 0; j < nt; j += T)
                quad_tile(w->values, w->col_idx, wide, w->row_ptr, m, x + j, ldx, bias, y + j, ldy);
            if (nt < n)
                for (int64_t r = m; r < m + Q; ++r)
                    row_cols(w, r, x, nt, n, ldx, bias, y, ldy, wide);
        }
    }
    for (; m < r1; ++m) row_cols(w, m, x, 0, n, ldx, bias, y, ldy, wide);
}

/* the batch-1 kernel in functions of its own: inlined next to the tiles, its gather loop
 * spilled registers */
SK_NOINLINE void gemv_rows16(const sk_csr_f32 *w, int64_t r0, int64_t r1, const float *x,
                             const float *bias, float *y, int64_t ldy) {
    gemv_rows(w, r0, r1, x, bias, y, ldy, 0);
}
SK_NOINLINE void gemv_rows32(const sk_csr_f32 *w, int64_t r0, int64_t r1, const float *x,
                             const float *bias, float *y, int64_t ldy) {
    gemv_rows(w, r0, r1, x, bias, y, ldy, 1);
}

void SK_VF_FN(sk_f32_spmm_unstructured)(const sk_csr_f32 *w, int64_t r0, int64_t r1, const float *x,
                                        int64_t n, int64_t ldx, const float *bias, float *y,
                                        int64_t ldy) {
    const int wide = w->idx_bits == 32;
    if (n == 1 && ldx == 1) {
        if (wide) gemv_rows32(w, r0, r1, x, bias, y, ldy);
        else gemv_rows16(w, r0, r1, x, bias, y, ldy);
        return;
    }
    if (SK_SPMM_U_OWN(w, r0, r1, x, n, ldx, bias, y, ldy)) return;
    if (wide) spmm_rows(w, r0, r1, x, n, ldx, bias, y, ldy, 1);
    else spmm_rows(w, r0, r1, x, n, ldx, bias, y, ldy, 0);
}

const sk_tiling SK_VF_FN(sk_f32_spmm_unstructured_tiling) = {
    .n_tiles = {SK_SPMM_U_V * SK_VF_LANES, SK_SPMM_U_V / 2 * SK_VF_LANES, SK_VF_LANES},
    .k_step = SK_SPMM_U_ACC,
    .k_step1 = SK_SPMM_U_GEMV_K,
    .k_block = SK_SPMM_U_QUADS ? SK_SPMM_U_QUAD_MIN_NNZ : 0,
    .row_block = SK_SPMM_U_QUADS ? SK_SPMM_U_QUAD_ROWS : 1,
    .row_block1 = 1,
};

#endif
