/* AVX2 variant of the direct sparse convolution (see x86_avx512.c): two output rows
 * at a time in chunks of up to 32 columns (4 vectors of 8), padding columns masked
 * with vmaskmovps (masked lanes are never read). */
#include <immintrin.h>

#include "conv_internal.h"

SK_INLINE __m256i range_mask(int64_t lo, int64_t hi, int64_t start) {
    const __m256i idx = _mm256_add_epi32(_mm256_set1_epi32((int)(start - lo)),
                                         _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    /* lane valid when 0 <= start + i - lo < hi - lo */
    const __m256i ge = _mm256_cmpgt_epi32(idx, _mm256_set1_epi32(-1));
    const __m256i lt = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(hi - lo)), idx);
    return _mm256_and_si256(ge, lt);
}

SK_INLINE void rows_chunk(const float *SK_RESTRICT values, const sk_conv_tap *SK_RESTRICT taps,
                          int64_t p0, int64_t p1, const float *xb, int64_t h, int64_t stride_h,
                          int64_t oy, int64_t w_out, int64_t c0, float b, float *y0, int64_t ystep,
                          const int V, const int R, int64_t cn) {
    __m256 acc[2][4];
    for (int r = 0; r < R; ++r)
        for (int v = 0; v < V; ++v) acc[r][v] = _mm256_set1_ps(b);
    const __m256i tailm = range_mask(0, cn - 8 * (V - 1), 0);
    for (int64_t p = p0; p < p1; ++p) {
        const sk_conv_tap *t = &taps[p];
        const int64_t iy0 = oy * stride_h + t->dy;
        int64_t lo, hi;
        sk_conv_tap_cols(t, w_out, &lo, &hi);
        if (hi <= lo) continue;
        const __m256 wv = _mm256_set1_ps(values[p]);
        const int full = lo <= c0 && hi >= c0 + cn;
        __m256i mk[4];
        if (!full) {
            const int64_t hc = hi < c0 + cn ? hi : c0 + cn;
            for (int v = 0; v < V; ++v) mk[v] = range_mask(lo, hc, c0 + 8 * v);
        }
        for (int r = 0; r < R; ++r) {
            const int64_t iy = iy0 + r * stride_h;
            if (iy < 0 || iy >= h) continue;
            const float *xr = xb + t->off + iy * t->ld + t->dx + c0;
            if (full) {
                for (int v = 0; v < V; ++v) {
                    const __m256 xv = v == V - 1 ? _mm256_maskload_ps(xr + 8 * v, tailm)
                                                 : _mm256_loadu_ps(xr + 8 * v);
                    acc[r][v] = _mm256_fmadd_ps(wv, xv, acc[r][v]);
                }
            } else {
                for (int v = 0; v < V; ++v) {
                    const __m256 xv = _mm256_maskload_ps(xr + 8 * v, mk[v]);
                    acc[r][v] = _mm256_fmadd_ps(wv, xv, acc[r][v]);
                }
            }
        }
    }
    for (int r = 0; r < R; ++r)
        for (int v = 0; v < V; ++v) {
            if (v == V - 1) _mm256_maskstore_ps(y0 + r * ystep + c0 + 8 * v, tailm, acc[r][v]);
            else _mm256_storeu_ps(y0 + r * ystep + c0 + 8 * v, acc[r][v]);
        }
}

SK_INLINE void rows_all(const float *values, const sk_conv_tap *taps, int64_t p0, int64_t p1,
                        const float *xb, int64_t h, int64_t stride_h, int64_t oy, int64_t w_out,
                        float b, float *y0, const int R) {
    int64_t c0 = 0;
    for (; c0 + 32 <= w_out; c0 += 32)
        rows_chunk(values, taps, p0, p1, xb, h, stride_h, oy, w_out, c0, b, y0, w_out, 4, R, 32);
    const int64_t rest = w_out - c0;
    if (rest <= 0) return;
    const int V = (int)((rest + 7) / 8);
    switch (V) {
    case 1: rows_chunk(values, taps, p0, p1, xb, h, stride_h, oy, w_out, c0, b, y0, w_out, 1, R, rest); break;
    case 2: rows_chunk(values, taps, p0, p1, xb, h, stride_h, oy, w_out, c0, b, y0, w_out, 2, R, rest); break;
    case 3: rows_chunk(values, taps, p0, p1, xb, h, stride_h, oy, w_out, c0, b, y0, w_out, 3, R, rest); break;
    default: rows_chunk(values, taps, p0, p1, xb, h, stride_h, oy, w_out, c0, b, y0, w_out, 4, R, rest); break;
    }
}

void sk_f32_conv2d_sparse_avx2(const float *values, const int64_t *row_ptr,
                               const sk_conv_tap *taps, int64_t co_begin, int64_t co_end,
                               const float *xb, int64_t h, int64_t stride_h, int64_t oy_begin, int64_t oy_end, int64_t h_out,
                               int64_t w_out, const float *bias, float *y,
    const uint16_t *masks, int64_t nvec) {
    for (int64_t co = co_begin; co < co_end; ++co) {
        const float b = bias ? bias[co] : 0.0f;
        const int64_t p0 = row_ptr[co], p1 = row_ptr[co + 1];
        float *yc = y + co * h_out * w_out;
        int64_t oy = oy_begin;
        for (; oy + 2 <= oy_end; oy += 2)
            rows_all(values, taps, p0, p1, xb, h, stride_h, oy, w_out, b, yc + oy * w_out, 2);
        if (oy < oy_end)
            rows_all(values, taps, p0, p1, xb, h, stride_h, oy, w_out, b, yc + oy * w_out, 1);
    }
}
