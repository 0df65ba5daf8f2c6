/* WebAssembly SIMD128 variant; the plan of the NEON one (arm_neon.c). SIMD128 has no
 * fused multiply-add: each step is a mul and an add.
 *   n == 1: per row, X gathered 4 elements at a time into a vector and multiplied
 *           by 4 consecutive values, two accumulators, then a horizontal add.
 *   n  > 1: per row, tiles of 32/16/8/4 columns and a tail of 1-3 columns (partial
 *           loads and stores: nothing past a row of X or Y is touched); each step
 *           takes 4 nonzeros, each value broadcast straight from memory. */
#include <stddef.h>
#include <wasm_simd128.h>

#include "internal.h"

/* Columns [0, r) of a row, r in 1..3, in lanes [0, r); the other lanes are never
 * stored, so they hold whatever is cheapest. */
SK_INLINE v128_t load_partial(const float *p, const int r) {
    if (r == 1) return wasm_v128_load32_splat(p);
    const v128_t lo = wasm_v128_load64_zero(p);
    return r == 2 ? lo : wasm_v128_load32_lane(p + 2, lo, 2);
}

SK_INLINE void store_partial(float *p, v128_t v, const int r) {
    if (r == 1) {
        wasm_v128_store32_lane(p, v, 0);
        return;
    }
    wasm_v128_store64_lane(p, v, 0);
    if (r == 3) wasm_v128_store32_lane(p + 2, v, 2);
}

/* One row of W times V vectors of X columns, 4 nonzeros per step into S sets of
 * accumulators (S divides 4). When TAIL > 0 the last vector holds only TAIL columns.
 * S * V <= 8 accumulators, as on NEON; that also fits the 16 vector registers of an
 * x86-64 host. */
SK_INLINE void row_tile(const float *SK_RESTRICT values, const void *col, const int bits,
                        ptrdiff_t p, ptrdiff_t end, const float *x, ptrdiff_t ldx, float b,
                        float *yrow, const int V, const int S, const int TAIL) {
    v128_t acc[4][8];
    for (int s = 0; s < S; ++s)
        for (int v = 0; v < V; ++v) acc[s][v] = wasm_f32x4_splat(s == 0 ? b : 0.0f);
    for (; p + 4 <= end; p += 4) {
        for (int u = 0; u < 4; ++u) {
            const v128_t wv = wasm_v128_load32_splat(values + p + u);
            const float *xr = x + (ptrdiff_t)sk_col_at(col, bits, p + u) * ldx;
            for (int v = 0; v < V; ++v) {
                const v128_t xv = TAIL && v == V - 1 ? load_partial(xr + 4 * v, TAIL)
                                                     : wasm_v128_load(xr + 4 * v);
                acc[u % S][v] = wasm_f32x4_add(acc[u % S][v], wasm_f32x4_mul(wv, xv));
            }
        }
    }
    for (; p < end; ++p) {
        const v128_t wv = wasm_v128_load32_splat(values + p);
        const float *xr = x + (ptrdiff_t)sk_col_at(col, bits, p) * ldx;
        for (int v = 0; v < V; ++v) {
            const v128_t xv = TAIL && v == V - 1 ? load_partial(xr + 4 * v, TAIL)
                                                 : wasm_v128_load(xr + 4 * v);
            acc[0][v] = wasm_f32x4_add(acc[0][v], wasm_f32x4_mul(wv, xv));
        }
    }
    for (int v = 0; v < V; ++v) {
        v128_t sum = acc[0][v];
        for (int s = 1; s < S; ++s) sum = wasm_f32x4_add(sum, acc[s][v]);
        if (TAIL && v == V - 1) store_partial(yrow + 4 * v, sum, TAIL);
        else wasm_v128_store(yrow + 4 * v, sum);
    }
}

SK_INLINE void spmm_rows(const sk_csr_f32 *w, int64_t r0, int64_t r1, const float *x, int64_t n,
                         ptrdiff_t ldx, const float *bias, float *y, int64_t ldy, const int bits) {
    const float *values = w->values;
    const void *col = w->col_idx;
    for (int64_t m = r0; m < r1; ++m) {
        const ptrdiff_t p = (ptrdiff_t)w->row_ptr[m], end = (ptrdiff_t)w->row_ptr[m + 1];
        const float b = bias ? bias[m] : 0.0f;
        float *yrow = y + m * ldy;
        int64_t j = 0;
        for (; j + 32 <= n; j += 32) row_tile(values, col, bits, p, end, x + j, ldx, b, yrow + j, 8, 1, 0);
        if (j + 16 <= n) { row_tile(values, col, bits, p, end, x + j, ldx, b, yrow + j, 4, 2, 0); j += 16; }
        if (j + 8 <= n) { row_tile(values, col, bits, p, end, x + j, ldx, b, yrow + j, 2, 4, 0); j += 8; }
        if (j + 4 <= n) { row_tile(values, col, bits, p, end, x + j, ldx, b, yrow + j, 1, 4, 0); j += 4; }
        switch (n - j) {
        case 1: row_tile(values, col, bits, p, end, x + j, ldx, b, yrow + j, 1, 4, 1); break;
        case 2: row_tile(values, col, bits, p, end, x + j, ldx, b, yrow + j, 1, 4, 2); break;
        case 3: row_tile(values, col, bits, p, end, x + j, ldx, b, yrow + j, 1, 4, 3); break;
        default: break;
        }
    }
}

/* x[col[p]], ..., x[col[p + 3]], X's rows ldx floats apart */
SK_INLINE v128_t gather4(const float *x, ptrdiff_t ldx, const void *col, const int bits,
                         ptrdiff_t p) {
    return wasm_f32x4_make(x[(ptrdiff_t)sk_col_at(col, bits, p) * ldx],
                           x[(ptrdiff_t)sk_col_at(col, bits, p + 1) * ldx],
                           x[(ptrdiff_t)sk_col_at(col, bits, p + 2) * ldx],
                           x[(ptrdiff_t)sk_col_at(col, bits, p + 3) * ldx]);
}

SK_INLINE float horizontal_sum(v128_t v) {
    v = wasm_f32x4_add(v, wasm_i32x4_shuffle(v, v, 2, 3, 0, 1));
    v = wasm_f32x4_add(v, wasm_i32x4_shuffle(v, v, 1, 0, 3, 2));
    return wasm_f32x4_extract_lane(v, 0);
}

SK_INLINE void gemv_rows(const sk_csr_f32 *w, int64_t r0, int64_t r1, const float *x,
                         ptrdiff_t ldx, const float *bias, float *y, int64_t ldy, const int bits) {
    const float *SK_RESTRICT values = w->values;
    const void *col = w->col_idx;
    for (int64_t m = r0; m < r1; ++m) {
        ptrdiff_t p = (ptrdiff_t)w->row_ptr[m];
        const ptrdiff_t end = (ptrdiff_t)w->row_ptr[m + 1];
        v128_t a0 = wasm_f32x4_splat(0.0f), a1 = wasm_f32x4_splat(0.0f);
        for (; p + 8 <= end; p += 8) {
            a0 = wasm_f32x4_add(a0, wasm_f32x4_mul(wasm_v128_load(values + p), gather4(x, ldx, col, bits, p)));
            a1 = wasm_f32x4_add(a1, wasm_f32x4_mul(wasm_v128_load(values + p + 4), gather4(x, ldx, col, bits, p + 4)));
        }
        if (p + 4 <= end) {
            a0 = wasm_f32x4_add(a0, wasm_f32x4_mul(wasm_v128_load(values + p), gather4(x, ldx, col, bits, p)));
            p += 4;
        }
        float acc = horizontal_sum(wasm_f32x4_add(a0, a1));
        for (; p < end; ++p) acc += values[p] * x[(ptrdiff_t)sk_col_at(col, bits, p) * ldx];
        y[m * ldy] = acc + (bias ? bias[m] : 0.0f);
    }
}

void sk_f32_spmm_unstructured_wasmsimd(const sk_csr_f32 *w, int64_t r0, int64_t r1, const float *x,
                                       int64_t n, int64_t ldx, const float *bias, float *y,
                                       int64_t ldy) {
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
        if (wide) spmm_rows(w, r0, r1, x, n, (ptrdiff_t)ldx, bias, y, ldy, 32);
        else spmm_rows(w, r0, r1, x, n, (ptrdiff_t)ldx, bias, y, ldy, 16);
    }
}
