/* AVX-512 (F, BW, VL) variant. Compiled with its own flags; called only when the
 * CPU and OS support it.
 *   n == 1: x86_gemv.h (8-wide; wider gathers are slower on the CPUs measured).
 *   n  > 1: per row, tiles of 64/32/16 columns and a masked tail; each nonzero
 *           broadcasts its value and multiplies one row of X. Several nonzeros are
 *           in flight per step so the FMA latency is hidden (U accumulator sets).
 *           Rows long enough for quads run quad_tile64; with the panel layout,
 *           64-column blocks of X run x86_avx512_panels.c (assembly), other widths
 *           panel_quads64. */
#include <immintrin.h>

#include "internal.h"
#include "x86_gemv.h"
#include "x86_avx512_panels.h"

/* One row of W times V vectors of X columns (the last one masked by `tail` when
 * MASKED), U nonzeros per step. */
SK_INLINE void row_tile(const float *SK_RESTRICT values, const void *col, int wide, int64_t p,
                        int64_t end, const float *x, int64_t ldx, float b, float *yrow,
                        const int V, const int U, const int MASKED, __mmask16 tail) {
    __m512 acc[4][4];
    for (int u = 0; u < U; ++u)
        for (int v = 0; v < V; ++v) acc[u][v] = u == 0 ? _mm512_set1_ps(b) : _mm512_setzero_ps();
    for (; p + U <= end; p += U) {
        for (int u = 0; u < U; ++u) {
            const __m512 wv = _mm512_set1_ps(values[p + u]);
            const float *xr = x + sk_col_at(col, wide ? 32 : 16, p + u) * ldx;
            for (int v = 0; v < V; ++v) {
                const __m512 xv = MASKED && v == V - 1 ? _mm512_maskz_loadu_ps(tail, xr + 16 * v)
                                                       : _mm512_loadu_ps(xr + 16 * v);
                acc[u][v] = _mm512_fmadd_ps(wv, xv, acc[u][v]);
            }
        }
    }
    for (; p < end; ++p) {
        const __m512 wv = _mm512_set1_ps(values[p]);
        const float *xr = x + sk_col_at(col, wide ? 32 : 16, p) * ldx;
        for (int v = 0; v < V; ++v) {
            const __m512 xv = MASKED && v == V - 1 ? _mm512_maskz_loadu_ps(tail, xr + 16 * v)
                                                   : _mm512_loadu_ps(xr + 16 * v);
            acc[0][v] = _mm512_fmadd_ps(wv, xv, acc[0][v]);
        }
    }
    for (int v = 0; v < V; ++v) {
        __m512 s = acc[0][v];
        for (int u = 1; u < U; ++u) s = _mm512_add_ps(s, acc[u][v]);
        if (MASKED && v == V - 1) _mm512_mask_storeu_ps(yrow + 16 * v, tail, s);
        else _mm512_storeu_ps(yrow + 16 * v, s);
    }
}

/* Four rows of W times 64 columns of X: the rows' nonzeros are interleaved up to
 * the shortest row's length (16 independent accumulators keep both FMA pipes
 * busy while X rows arrive from L2), then each row finishes on its own. */
SK_INLINE void quad_tile64(const float *SK_RESTRICT values, const void *col, int wide,
                           const int64_t *row_ptr, int64_t m, const float *x, int64_t ldx,
                           const float *bias, float *y, int64_t ldy) {
    const int bits = wide ? 32 : 16;
    int64_t p[4], e[4];
    __m512 acc[4][4];
    int64_t common = INT64_MAX;
    for (int r = 0; r < 4; ++r) {
        p[r] = row_ptr[m + r];
        e[r] = row_ptr[m + r + 1];
        if (e[r] - p[r] < common) common = e[r] - p[r];
        const __m512 b = _mm512_set1_ps(bias ? bias[m + r] : 0.0f);
        for (int v = 0; v < 4; ++v) acc[r][v] = b;
    }
    for (int64_t s = 0; s < common; ++s) {
        for (int r = 0; r < 4; ++r) {
            const __m512 wv = _mm512_set1_ps(values[p[r] + s]);
            const float *xr = x + sk_col_at(col, bits, p[r] + s) * ldx;
            for (int v = 0; v < 4; ++v) acc[r][v] = _mm512_fmadd_ps(wv, _mm512_loadu_ps(xr + 16 * v), acc[r][v]);
        }
    }
    for (int r = 0; r < 4; ++r) {
        __m512 t[4];
        for (int v = 0; v < 4; ++v) t[v] = _mm512_setzero_ps();
        int64_t q = p[r] + common;
        for (; q + 2 <= e[r]; q += 2) {
            const __m512 w0 = _mm512_set1_ps(values[q]), w1 = _mm512_set1_ps(values[q + 1]);
            const float *x0 = x + sk_col_at(col, bits, q) * ldx, *x1 = x + sk_col_at(col, bits, q + 1) * ldx;
            for (int v = 0; v < 4; ++v) {
                acc[r][v] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(x0 + 16 * v), acc[r][v]);
                t[v] = _mm512_fmadd_ps(w1, _mm512_loadu_ps(x1 + 16 * v), t[v]);
            }
        }
        if (q < e[r]) {
            const __m512 w0 = _mm512_set1_ps(values[q]);
            const float *x0 = x + sk_col_at(col, bits, q) * ldx;
            for (int v = 0; v < 4; ++v) acc[r][v] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(x0 + 16 * v), acc[r][v]);
        }
        float *yr = y + (m + r) * ldy;
        for (int v = 0; v < 4; ++v) _mm512_storeu_ps(yr + 16 * v, _mm512_add_ps(acc[r][v], t[v]));
    }
}

/* Quads [q0, q1) times one 64-column tile from the panel layout (sparsekern.h): panels
 * outermost, so each panel of X (128 rows x 64 columns = 32 KiB) stays in L1 while every
 * quad passes over it; Y is reloaded per panel. Padding (value 0) multiplies row 0. */
SK_INLINE void panel_quads64(const sk_csr_f32 *w, int64_t q0, int64_t q1, const float *x,
                             int64_t ldx, const float *bias, float *y, int64_t ldy) {
    const int64_t P = (w->cols + SK_PANEL_K - 1) / SK_PANEL_K;
    for (int64_t p = 0; p < P; ++p) {
        const float *xp = x + p * SK_PANEL_K * ldx;
        for (int64_t q = q0; q < q1; ++q) {
            const int64_t b0 = w->panel_off[q * P + p], b1 = w->panel_off[q * P + p + 1];
            __m512 acc[4][4];
            for (int r = 0; r < 4; ++r) {
                float *yr = y + (4 * q + r) * ldy;
                const __m512 b = _mm512_set1_ps(bias ? bias[4 * q + r] : 0.0f);
                for (int v = 0; v < 4; ++v) acc[r][v] = p == 0 ? b : _mm512_loadu_ps(yr + 16 * v);
            }
            for (int64_t e = b0; e < b1; e += 4) {
                for (int r = 0; r < 4; ++r) {
                    const float *xr = xp + (int64_t)w->panel_col[e + r] * ldx;
                    const __m512 wv = _mm512_set1_ps(w->panel_val[e + r]);
                    for (int v = 0; v < 4; ++v)
                        acc[r][v] = _mm512_fmadd_ps(wv, _mm512_loadu_ps(xr + 16 * v), acc[r][v]);
                }
            }
            for (int r = 0; r < 4; ++r) {
                float *yr = y + (4 * q + r) * ldy;
                for (int v = 0; v < 4; ++v) _mm512_storeu_ps(yr + 16 * v, acc[r][v]);
            }
        }
    }
}

/* Row m, columns [j0, n): tiles of 64/32/16 and a masked tail. */
SK_INLINE void row_cols(const sk_csr_f32 *w, int64_t m, const float *x, int64_t j0, int64_t n,
                        int64_t ldx, const float *bias, float *y, int64_t ldy, int wide) {
    const float *values = w->values;
    const void *col = w->col_idx;
    const int64_t p = w->row_ptr[m], end = w->row_ptr[m + 1];
    const float b = bias ? bias[m] : 0.0f;
    float *yrow = y + m * ldy;
    int64_t j = j0;
    for (; j + 64 <= n; j += 64) row_tile(values, col, wide, p, end, x + j, ldx, b, yrow + j, 4, 2, 0, 0);
    if (j + 32 <= n) { row_tile(values, col, wide, p, end, x + j, ldx, b, yrow + j, 2, 4, 0, 0); j += 32; }
    if (j + 16 <= n) { row_tile(values, col, wide, p, end, x + j, ldx, b, yrow + j, 1, 4, 0, 0); j += 16; }
    if (j < n) {
        const __mmask16 tail = (__mmask16)((1u << (n - j)) - 1u);
        row_tile(values, col, wide, p, end, x + j, ldx, b, yrow + j, 1, 4, 1, tail);
    }
}

SK_INLINE void spmm_rows(const sk_csr_f32 *w, int64_t r0, int64_t r1, const float *x, int64_t n,
                         int64_t ldx, const float *bias, float *y, int64_t ldy, int wide) {
    const int64_t n64 = n / 64 * 64;
    int64_t m = r0;
    /* quads pay on long rows; on short ones (1x1 convolutions with few input channels)
     * their leftover loops cost more than the extra parallelism gains */
    if (n64 > 0 && w->panel_off) {
        const int64_t q0 = (r0 + 3) / 4, q1 = r1 / 4 < w->rows / 4 ? r1 / 4 : w->rows / 4;
        if (q0 < q1) {
            for (; m < 4 * q0; ++m) row_cols(w, m, x, 0, n, ldx, bias, y, ldy, wide);
            for (int64_t j = 0; j < n64; j += 64) panel_quads64(w, q0, q1, x + j, ldx, bias, y + j, ldy);
            if (n64 < n)
                for (int64_t r = 4 * q0; r < 4 * q1; ++r) row_cols(w, r, x, n64, n, ldx, bias, y, ldy, wide);
            m = 4 * q1;
        }
    } else if (n64 > 0 && w->nnz >= 48 * w->rows) {
        /* quads start at multiples of 4, and the operator splits rows between threads
         * there too: each row is then summed in the same order whatever the thread count */
        for (; m % 4 != 0 && m < r1; ++m) row_cols(w, m, x, 0, n, ldx, bias, y, ldy, wide);
        for (; m + 4 <= r1; m += 4) {
            for (int64_t j = 0; j < n64; j += 64)
                quad_tile64(w->values, w->col_idx, wide, w->row_ptr, m, x + j, ldx, bias, y + j, ldy);
            if (n64 < n)
                for (int64_t r = m; r < m + 4; ++r) row_cols(w, r, x, n64, n, ldx, bias, y, ldy, wide);
        }
    }
    for (; m < r1; ++m) row_cols(w, m, x, 0, n, ldx, bias, y, ldy, wide);
}

void sk_f32_spmm_unstructured_avx512(const sk_csr_f32 *w, int64_t r0, int64_t r1, const float *x,
                                     int64_t n, int64_t ldx, const float *bias, float *y, int64_t ldy) {
    const int wide = w->idx_bits == 32;
    if (n == 1 && ldx == 1) {
        if (wide) sk_x86_gemv_rows(w, r0, r1, x, bias, y, ldy, 1);
        else sk_x86_gemv_rows(w, r0, r1, x, bias, y, ldy, 0);
    } else {
#if defined(SK_HAVE_PANELS_ASM)
        if (n == 64 && ldx == 64 && w->panel_off) {
            sk_f32_unstructured_panels_rows_avx512(w, r0, r1, x, bias, y, ldy);
            return;
        }
#endif
        if (wide) spmm_rows(w, r0, r1, x, n, ldx, bias, y, ldy, 1);
        else spmm_rows(w, r0, r1, x, n, ldx, bias, y, ldy, 0);
    }
}
