/* The unstructured SpMM kernel shared by the 128-bit SIMD variants (arm_neon.c,
 * wasm_simd128.c), written against csrc/core/simd128.h; the plan of the x86 variants
 * with 4-wide vectors.
 *   n == 1: per row, X gathered 4 elements at a time into a vector and multiplied
 *           by 4 consecutive values, two accumulators, then a horizontal add.
 *   n  > 1: per row, tiles of 32/16/8/4 columns and a tail of 1-3 columns (partial
 *           loads and stores: nothing past a row of X or Y is touched); each step
 *           takes 4 nonzeros, loads their values as one vector and multiplies by lane
 *           (NEON: fmla by element; SIMD128: the lane splat by a shuffle, mul, add).
 * The includer defines SK_SPMM_U_FN, the name of the exported function, and
 * SK_SPMM_U_TILING, the name of its tiling (sparsekern.h: sk_tiling). */
#ifndef SK_SPMM_U_SIMD128_BODY_H
#define SK_SPMM_U_SIMD128_BODY_H

#include "simd128.h"

/* n > 1: vectors of the widest column tile (then half, a quarter, one vector, a tail) */
#define SK_SPMM_U_V 8
/* nonzeros per step: one vector of values, n > 1 (used by lane) and n == 1 (two vectors,
 * then one) */
#define SK_SPMM_U_K 4
#define SK_SPMM_U_GEMV_K 8

/* One row of W times V vectors of X columns, 4 nonzeros per step into S sets of
 * accumulators (S divides 4). When TAIL > 0 the last vector holds only TAIL columns.
 * X's rows are ldx_bytes apart. S * V <= 8 accumulators: with the X vectors GCC
 * loads ahead, 16 of them spill on NEON; 8 also fit the 16 registers of an x86-64
 * host running SIMD128. */
SK_INLINE void row_tile(const float *SK_RESTRICT values, const void *col, const int bits,
                        ptrdiff_t p, ptrdiff_t end, const float *x, ptrdiff_t ldx_bytes, float b,
                        float *yrow, const int V, const int S, const int TAIL) {
    sk_v4f acc[4][SK_SPMM_U_V];
    for (int s = 0; s < S; ++s)
        for (int v = 0; v < V; ++v) acc[s][v] = sk_v4f_splat(s == 0 ? b : 0.0f);
#define SK_LOAD_X(xr, v) \
    (TAIL && (v) == V - 1 ? sk_v4f_load_partial((xr) + 4 * (v), TAIL) : sk_v4f_load((xr) + 4 * (v)))
    /* nonzero p + u times X, its value in lane u of wv (a literal for the lane FMA) */
#define SK_NZ_STEP(u)                                                                            \
    do {                                                                                         \
        const float *xr = (const float *)((const char *)x +                                      \
                                          (ptrdiff_t)sk_col_at(col, bits, p + (u)) * ldx_bytes); \
        SK_OPAQUE(xr);                                                                           \
        for (int v = 0; v < V; ++v)                                                              \
            acc[(u) % S][v] = sk_v4f_fma_lane(acc[(u) % S][v], SK_LOAD_X(xr, v), wv, u);         \
    } while (0)
    for (; p + SK_SPMM_U_K <= end; p += SK_SPMM_U_K) {
        const sk_v4f wv = sk_v4f_load(values + p);
        SK_NZ_STEP(0);
        SK_NZ_STEP(1);
        SK_NZ_STEP(2);
        SK_NZ_STEP(3);
    }
    for (; p < end; ++p) {
        const sk_v4f wv = sk_v4f_load_splat(values + p);
        SK_NZ_STEP(0);
    }
#undef SK_NZ_STEP
#undef SK_LOAD_X
    for (int v = 0; v < V; ++v) {
        sk_v4f sum = acc[0][v];
        for (int s = 1; s < S; ++s) sum = sk_v4f_add(sum, acc[s][v]);
        if (TAIL && v == V - 1) sk_v4f_store_partial(yrow + 4 * v, sum, TAIL);
        else sk_v4f_store(yrow + 4 * v, sum);
    }
}

SK_INLINE void spmm_rows(const sk_csr_f32 *w, int64_t r0, int64_t r1, const float *x, int64_t n,
                         int64_t ldx, const float *bias, float *y, int64_t ldy, const int bits) {
    const float *values = w->values;
    const void *col = w->col_idx;
    enum { V0 = SK_SPMM_U_V };
    ptrdiff_t ldxb = (ptrdiff_t)ldx * (ptrdiff_t)sizeof(float);
    SK_OPAQUE(ldxb);
    for (int64_t m = r0; m < r1; ++m) {
        const ptrdiff_t p = (ptrdiff_t)w->row_ptr[m], end = (ptrdiff_t)w->row_ptr[m + 1];
        const float b = bias ? bias[m] : 0.0f;
        float *yrow = y + m * ldy;
        int64_t j = 0;
        for (; j + 4 * V0 <= n; j += 4 * V0)
            row_tile(values, col, bits, p, end, x + j, ldxb, b, yrow + j, V0, 1, 0);
        if (j + 2 * V0 <= n) {
            row_tile(values, col, bits, p, end, x + j, ldxb, b, yrow + j, V0 / 2, 2, 0);
            j += 2 * V0;
        }
        if (j + V0 <= n) {
            row_tile(values, col, bits, p, end, x + j, ldxb, b, yrow + j, V0 / 4, 4, 0);
            j += V0;
        }
        if (j + 4 <= n) {
            row_tile(values, col, bits, p, end, x + j, ldxb, b, yrow + j, 1, 4, 0);
            j += 4;
        }
        switch (n - j) {
        case 1: row_tile(values, col, bits, p, end, x + j, ldxb, b, yrow + j, 1, 4, 1); break;
        case 2: row_tile(values, col, bits, p, end, x + j, ldxb, b, yrow + j, 1, 4, 2); break;
        case 3: row_tile(values, col, bits, p, end, x + j, ldxb, b, yrow + j, 1, 4, 3); break;
        default: break;
        }
    }
}

/* x[col[p]], ..., x[col[p + 3]], X's rows ldx floats apart (sk_v4f_make: on NEON 4
 * register-offset ldr and 3 ins; a lane load would cost an add per lane) */
SK_INLINE sk_v4f gather4(const float *x, ptrdiff_t ldx, const void *col, const int bits,
                         ptrdiff_t p) {
    return sk_v4f_make(x[(ptrdiff_t)sk_col_at(col, bits, p) * ldx],
                       x[(ptrdiff_t)sk_col_at(col, bits, p + 1) * ldx],
                       x[(ptrdiff_t)sk_col_at(col, bits, p + 2) * ldx],
                       x[(ptrdiff_t)sk_col_at(col, bits, p + 3) * ldx]);
}

SK_INLINE void gemv_rows(const sk_csr_f32 *w, int64_t r0, int64_t r1, const float *x, ptrdiff_t ldx,
                         const float *bias, float *y, int64_t ldy, const int bits) {
    const float *SK_RESTRICT values = w->values;
    const void *col = w->col_idx;
    for (int64_t m = r0; m < r1; ++m) {
        ptrdiff_t p = (ptrdiff_t)w->row_ptr[m];
        const ptrdiff_t end = (ptrdiff_t)w->row_ptr[m + 1];
        sk_v4f a0 = sk_v4f_splat(0.0f), a1 = sk_v4f_splat(0.0f);
        for (; p + SK_SPMM_U_GEMV_K <= end; p += SK_SPMM_U_GEMV_K) {
            a0 = sk_v4f_fma(a0, sk_v4f_load(values + p), gather4(x, ldx, col, bits, p));
            a1 = sk_v4f_fma(a1, sk_v4f_load(values + p + 4), gather4(x, ldx, col, bits, p + 4));
        }
        if (p + 4 <= end) {
            a0 = sk_v4f_fma(a0, sk_v4f_load(values + p), gather4(x, ldx, col, bits, p));
            p += 4;
        }
        float acc = sk_v4f_hsum(sk_v4f_add(a0, a1));
        for (; p < end; ++p) acc += values[p] * x[(ptrdiff_t)sk_col_at(col, bits, p) * ldx];
        y[m * ldy] = acc + (bias ? bias[m] : 0.0f);
    }
}

void SK_SPMM_U_FN(const sk_csr_f32 *w, int64_t r0, int64_t r1, const float *x, int64_t n,
                  int64_t ldx, const float *bias, float *y, int64_t ldy) {
    const int wide = w->idx_bits == 32;
    if (n == 1) {
        /* ldx == 1 (a vector) gets its own copy, without the multiply per gathered element */
        if (ldx == 1) {
            if (wide) gemv_rows(w, r0, r1, x, 1, bias, y, ldy, 32);
            else gemv_rows(w, r0, r1, x, 1, bias, y, ldy, 16);
        } else {
            if (wide) gemv_rows(w, r0, r1, x, (ptrdiff_t)ldx, bias, y, ldy, 32);
            else gemv_rows(w, r0, r1, x, (ptrdiff_t)ldx, bias, y, ldy, 16);
        }
    } else {
        if (wide) spmm_rows(w, r0, r1, x, n, ldx, bias, y, ldy, 32);
        else spmm_rows(w, r0, r1, x, n, ldx, bias, y, ldy, 16);
    }
}

const sk_tiling SK_SPMM_U_TILING = {
    .n_tiles = {4 * SK_SPMM_U_V, 2 * SK_SPMM_U_V, SK_SPMM_U_V, 4},
    .k_step = SK_SPMM_U_K,
    .k_step1 = SK_SPMM_U_GEMV_K,
    .row_block = 1,
    .row_block1 = 1,
};

#endif
