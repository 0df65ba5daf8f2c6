/* NEON variant (baseline on AArch64); the plan of the x86 variants with 4-wide vectors.
 *   n == 1: per row, X gathered 4 elements at a time into a vector and multiplied
 *           by 4 consecutive values, two accumulators, then a horizontal add.
 *   n  > 1: per row, tiles of 32/16/8/4 columns and a tail of 1-3 columns (partial
 *           loads and stores: nothing past a row of X or Y is touched); each step
 *           takes 4 nonzeros, loads their values as one vector and multiplies by lane. */
#include <arm_neon.h>
#include <stddef.h>

#include "internal.h"

/* Hides how a value was computed, so that GCC keeps the address of an X row as one
 * madd instead of splitting it into mul, shift and register-offset loads, which
 * cannot pair into ldp. */
#if defined(__GNUC__)
#define SK_OPAQUE(v) __asm__("" : "+r"(v))
#else
#define SK_OPAQUE(v) ((void)0)
#endif

/* Columns [0, r) of a row, r in 1..3, in lanes [0, r); the other lanes are never
 * stored, so they hold whatever is cheapest. */
SK_INLINE float32x4_t load_partial(const float *p, const int r) {
    if (r == 1) return vld1q_dup_f32(p);
    const float32x4_t lo = vcombine_f32(vld1_f32(p), vdup_n_f32(0.0f));
    return r == 2 ? lo : vld1q_lane_f32(p + 2, lo, 2);
}

SK_INLINE void store_partial(float *p, float32x4_t v, const int r) {
    if (r == 1) {
        vst1q_lane_f32(p, v, 0);
        return;
    }
    vst1_f32(p, vget_low_f32(v));
    if (r == 3) vst1q_lane_f32(p + 2, v, 2);
}

/* One row of W times V vectors of X columns, 4 nonzeros per step into S sets of
 * accumulators (S divides 4). When TAIL > 0 the last vector holds only TAIL columns.
 * X's rows are ldx_bytes apart. S * V <= 8 accumulators: with the X vectors GCC
 * loads ahead, 16 of them spill. */
SK_INLINE void row_tile(const float *SK_RESTRICT values, const void *col, const int bits,
                        ptrdiff_t p, ptrdiff_t end, const float *x, ptrdiff_t ldx_bytes, float b,
                        float *yrow, const int V, const int S, const int TAIL) {
    float32x4_t acc[4][8];
    for (int s = 0; s < S; ++s)
        for (int v = 0; v < V; ++v) acc[s][v] = vdupq_n_f32(s == 0 ? b : 0.0f);
#define SK_LOAD_X(xr, v) \
    (TAIL && (v) == V - 1 ? load_partial((xr) + 4 * (v), TAIL) : vld1q_f32((xr) + 4 * (v)))
    /* nonzero p + u times X, its value in lane u of wv (a literal: vfmaq_laneq_f32 needs one) */
#define SK_NZ_STEP(u)                                                                          \
    do {                                                                                       \
        const float *xr = (const float *)((const char *)x +                                    \
                                          (ptrdiff_t)sk_col_at(col, bits, p + (u)) * ldx_bytes); \
        SK_OPAQUE(xr);                                                                         \
        for (int v = 0; v < V; ++v)                                                            \
            acc[(u) % S][v] = vfmaq_laneq_f32(acc[(u) % S][v], SK_LOAD_X(xr, v), wv, u);        \
    } while (0)
    for (; p + 4 <= end; p += 4) {
        const float32x4_t wv = vld1q_f32(values + p);
        SK_NZ_STEP(0);
        SK_NZ_STEP(1);
        SK_NZ_STEP(2);
        SK_NZ_STEP(3);
    }
    for (; p < end; ++p) {
        const float32x4_t wv = vld1q_dup_f32(values + p);
        SK_NZ_STEP(0);
    }
#undef SK_NZ_STEP
#undef SK_LOAD_X
    for (int v = 0; v < V; ++v) {
        float32x4_t sum = acc[0][v];
        for (int s = 1; s < S; ++s) sum = vaddq_f32(sum, acc[s][v]);
        if (TAIL && v == V - 1) store_partial(yrow + 4 * v, sum, TAIL);
        else vst1q_f32(yrow + 4 * v, sum);
    }
}

SK_INLINE void spmm_rows(const sk_csr_f32 *w, int64_t r0, int64_t r1, const float *x, int64_t n,
                         int64_t ldx, const float *bias, float *y, int64_t ldy, const int bits) {
    const float *values = w->values;
    const void *col = w->col_idx;
    ptrdiff_t ldxb = (ptrdiff_t)ldx * (ptrdiff_t)sizeof(float);
    SK_OPAQUE(ldxb);
    for (int64_t m = r0; m < r1; ++m) {
        const ptrdiff_t p = (ptrdiff_t)w->row_ptr[m], end = (ptrdiff_t)w->row_ptr[m + 1];
        const float b = bias ? bias[m] : 0.0f;
        float *yrow = y + m * ldy;
        int64_t j = 0;
        for (; j + 32 <= n; j += 32) row_tile(values, col, bits, p, end, x + j, ldxb, b, yrow + j, 8, 1, 0);
        if (j + 16 <= n) { row_tile(values, col, bits, p, end, x + j, ldxb, b, yrow + j, 4, 2, 0); j += 16; }
        if (j + 8 <= n) { row_tile(values, col, bits, p, end, x + j, ldxb, b, yrow + j, 2, 4, 0); j += 8; }
        if (j + 4 <= n) { row_tile(values, col, bits, p, end, x + j, ldxb, b, yrow + j, 1, 4, 0); j += 4; }
        switch (n - j) {
        case 1: row_tile(values, col, bits, p, end, x + j, ldxb, b, yrow + j, 1, 4, 1); break;
        case 2: row_tile(values, col, bits, p, end, x + j, ldxb, b, yrow + j, 1, 4, 2); break;
        case 3: row_tile(values, col, bits, p, end, x + j, ldxb, b, yrow + j, 1, 4, 3); break;
        default: break;
        }
    }
}

/* x[col[p]], ..., x[col[p + 3]], X's rows ldx floats apart. Written as an initializer,
 * GCC makes it 4 register-offset ldr and 3 ins; vld1q_lane_f32 costs an add per lane. */
SK_INLINE float32x4_t gather4(const float *x, ptrdiff_t ldx, const void *col, const int bits,
                              ptrdiff_t p) {
    const float32x4_t v = {x[(ptrdiff_t)sk_col_at(col, bits, p) * ldx],
                           x[(ptrdiff_t)sk_col_at(col, bits, p + 1) * ldx],
                           x[(ptrdiff_t)sk_col_at(col, bits, p + 2) * ldx],
                           x[(ptrdiff_t)sk_col_at(col, bits, p + 3) * ldx]};
    return v;
}

SK_INLINE void gemv_rows(const sk_csr_f32 *w, int64_t r0, int64_t r1, const float *x,
                         ptrdiff_t ldx, const float *bias, float *y, int64_t ldy, const int bits) {
    const float *SK_RESTRICT values = w->values;
    const void *col = w->col_idx;
    for (int64_t m = r0; m < r1; ++m) {
        ptrdiff_t p = (ptrdiff_t)w->row_ptr[m];
        const ptrdiff_t end = (ptrdiff_t)w->row_ptr[m + 1];
        float32x4_t a0 = vdupq_n_f32(0.0f), a1 = vdupq_n_f32(0.0f);
        for (; p + 8 <= end; p += 8) {
            a0 = vfmaq_f32(a0, vld1q_f32(values + p), gather4(x, ldx, col, bits, p));
            a1 = vfmaq_f32(a1, vld1q_f32(values + p + 4), gather4(x, ldx, col, bits, p + 4));
        }
        if (p + 4 <= end) {
            a0 = vfmaq_f32(a0, vld1q_f32(values + p), gather4(x, ldx, col, bits, p));
            p += 4;
        }
        float acc = vaddvq_f32(vaddq_f32(a0, a1));
        for (; p < end; ++p) acc += values[p] * x[(ptrdiff_t)sk_col_at(col, bits, p) * ldx];
        y[m * ldy] = acc + (bias ? bias[m] : 0.0f);
    }
}

void sk_f32_spmm_unstructured_neon(const sk_csr_f32 *w, int64_t r0, int64_t r1, const float *x,
                                   int64_t n, int64_t ldx, const float *bias, float *y, int64_t ldy) {
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
