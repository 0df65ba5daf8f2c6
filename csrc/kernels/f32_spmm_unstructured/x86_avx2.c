/* AVX2 + FMA variant; the same plan as the AVX-512 one with 8-wide vectors:
 * x86_gemv.h for n == 1, column tiles of 32/16/8 and a masked tail otherwise. */
#include <immintrin.h>

#include "internal.h"
#include "x86_gemv.h"

/* lane i of the result is all ones when i < r */
SK_INLINE __m256i tail_mask(int64_t r) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)r), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

SK_INLINE void row_tile(const float *SK_RESTRICT values, const void *col, int wide, int64_t p,
                        int64_t end, const float *x, int64_t ldx, float b, float *yrow,
                        const int V, const int U, const int MASKED, __m256i tail) {
    __m256 acc[4][4];
    for (int u = 0; u < U; ++u)
        for (int v = 0; v < V; ++v) acc[u][v] = u == 0 ? _mm256_set1_ps(b) : _mm256_setzero_ps();
    for (; p + U <= end; p += U) {
        for (int u = 0; u < U; ++u) {
            const __m256 wv = _mm256_set1_ps(values[p + u]);
            const float *xr = x + sk_col_at(col, wide ? 32 : 16, p + u) * ldx;
            for (int v = 0; v < V; ++v) {
                const __m256 xv = MASKED && v == V - 1 ? _mm256_maskload_ps(xr + 8 * v, tail)
                                                       : _mm256_loadu_ps(xr + 8 * v);
                acc[u][v] = _mm256_fmadd_ps(wv, xv, acc[u][v]);
            }
        }
    }
    for (; p < end; ++p) {
        const __m256 wv = _mm256_set1_ps(values[p]);
        const float *xr = x + sk_col_at(col, wide ? 32 : 16, p) * ldx;
        for (int v = 0; v < V; ++v) {
            const __m256 xv = MASKED && v == V - 1 ? _mm256_maskload_ps(xr + 8 * v, tail)
                                                   : _mm256_loadu_ps(xr + 8 * v);
            acc[0][v] = _mm256_fmadd_ps(wv, xv, acc[0][v]);
        }
    }
    for (int v = 0; v < V; ++v) {
        __m256 s = acc[0][v];
        for (int u = 1; u < U; ++u) s = _mm256_add_ps(s, acc[u][v]);
        if (MASKED && v == V - 1) _mm256_maskstore_ps(yrow + 8 * v, tail, s);
        else _mm256_storeu_ps(yrow + 8 * v, s);
    }
}

SK_INLINE void spmm_rows(const sk_csr_f32 *w, int64_t r0, int64_t r1, const float *x, int64_t n,
                         int64_t ldx, const float *bias, float *y, int64_t ldy, int wide) {
    const float *values = w->values;
    const void *col = w->col_idx;
    const __m256i zero_mask = _mm256_setzero_si256();
    for (int64_t m = r0; m < r1; ++m) {
        const int64_t p = w->row_ptr[m], end = w->row_ptr[m + 1];
        const float b = bias ? bias[m] : 0.0f;
        float *yrow = y + m * ldy;
        int64_t j = 0;
        for (; j + 32 <= n; j += 32) row_tile(values, col, wide, p, end, x + j, ldx, b, yrow + j, 4, 2, 0, zero_mask);
        if (j + 16 <= n) { row_tile(values, col, wide, p, end, x + j, ldx, b, yrow + j, 2, 4, 0, zero_mask); j += 16; }
        if (j + 8 <= n) { row_tile(values, col, wide, p, end, x + j, ldx, b, yrow + j, 1, 4, 0, zero_mask); j += 8; }
        if (j < n) row_tile(values, col, wide, p, end, x + j, ldx, b, yrow + j, 1, 4, 1, tail_mask(n - j));
    }
}

void sk_f32_spmm_unstructured_avx2(const sk_csr_f32 *w, int64_t r0, int64_t r1, const float *x,
                                   int64_t n, int64_t ldx, const float *bias, float *y, int64_t ldy) {
    const int wide = w->idx_bits == 32;
    if (n == 1 && ldx == 1) {
        if (wide) sk_x86_gemv_rows(w, r0, r1, x, bias, y, ldy, 1);
        else sk_x86_gemv_rows(w, r0, r1, x, bias, y, ldy, 0);
    } else {
        if (wide) spmm_rows(w, r0, r1, x, n, ldx, bias, y, ldy, 1);
        else spmm_rows(w, r0, r1, x, n, ldx, bias, y, ldy, 0);
    }
}
