/* AVX-512 variant of the direct sparse convolution. Compiled with its own flags.
 * Output rows are computed four at a time (R = 4) in chunks of up to 64 columns
 * (V = 4 vectors): every stored weight is decoded and broadcast once and multiplies the
 * matching input rows, so up to 16 independent accumulators hide the FMA latency and the
 * per-weight work is shared by 4 rows. Columns where a tap
 * falls into the padding are masked off (masked loads never fault). */
#include <immintrin.h>

#include "conv_internal.h"

SK_INLINE __mmask16 range_mask(int64_t lo, int64_t hi, int64_t start) {
    int64_t a = lo - start, b = hi - start;
    a = a < 0 ? 0 : (a > 16 ? 16 : a);
    b = b < 0 ? 0 : (b > 16 ? 16 : b);
    if (b <= a) return 0;
    return (__mmask16)(((1u << b) - 1u) & ~((1u << a) - 1u));
}

SK_INLINE void rows_chunk(const float *SK_RESTRICT values, const sk_conv_tap *SK_RESTRICT taps,
                          int64_t p0, int64_t p1, const float *xb, int64_t h, int64_t stride_h,
                          int64_t oy, int64_t w_out, int64_t c0, float b, float *y0, int64_t ystep,
                          const int V, const int R, __mmask16 tail) {
    __m512 acc[4][4];
    for (int r = 0; r < R; ++r)
        for (int v = 0; v < V; ++v) acc[r][v] = _mm512_set1_ps(b);
    const int64_t cend = c0 + 16 * (V - 1) + 16;   /* the chunk's end before the tail */
    for (int64_t p = p0; p < p1; ++p) {
        const sk_conv_tap *t = &taps[p];
        const int64_t iy0 = oy * stride_h + t->dy;
        int64_t lo, hi;
        sk_conv_tap_cols(t, w_out, &lo, &hi);
        if (hi <= lo) continue;
        const __m512 wv = _mm512_set1_ps(values[p]);
        const int full = lo <= c0 && hi >= (cend < w_out ? cend : w_out);
        __mmask16 mk[4];
        for (int v = 0; v < V; ++v)
            mk[v] = full ? (v == V - 1 ? tail : 0xffff)
                         : range_mask(lo, hi, c0 + 16 * v) & (v == V - 1 ? tail : 0xffff);
        for (int r = 0; r < R; ++r) {
            const int64_t iy = iy0 + r * stride_h;
            if (iy < 0 || iy >= h) continue;
            const float *xr = xb + t->off + iy * t->ld + t->dx + c0;
            if (full) {
                for (int v = 0; v < V; ++v) {
                    const __m512 xv = v == V - 1 ? _mm512_maskz_loadu_ps(tail, xr + 16 * v)
                                                 : _mm512_loadu_ps(xr + 16 * v);
                    acc[r][v] = _mm512_fmadd_ps(wv, xv, acc[r][v]);
                }
            } else {
                for (int v = 0; v < V; ++v) {
                    const __m512 xv = _mm512_maskz_loadu_ps(mk[v], xr + 16 * v);
                    acc[r][v] = _mm512_fmadd_ps(wv, xv, acc[r][v]);
                }
            }
        }
    }
    for (int r = 0; r < R; ++r)
        for (int v = 0; v < V; ++v) {
            if (v == V - 1) _mm512_mask_storeu_ps(y0 + r * ystep + c0 + 16 * v, tail, acc[r][v]);
            else _mm512_storeu_ps(y0 + r * ystep + c0 + 16 * v, acc[r][v]);
        }
}

SK_INLINE void rows_all(const float *values, const sk_conv_tap *taps, int64_t p0, int64_t p1,
                        const float *xb, int64_t h, int64_t stride_h, int64_t oy, int64_t w_out,
                        float b, float *y0, const int R) {
    int64_t c0 = 0;
    for (; c0 + 64 <= w_out; c0 += 64)
        rows_chunk(values, taps, p0, p1, xb, h, stride_h, oy, w_out, c0, b, y0, w_out, 4, R, 0xffff);
    const int64_t rest = w_out - c0;
    if (rest <= 0) return;
    const int V = (int)((rest + 15) / 16);
    const int64_t last = rest - 16 * (V - 1);
    const __mmask16 tail = (__mmask16)((1u << last) - 1u);
    switch (V) {
    case 1: rows_chunk(values, taps, p0, p1, xb, h, stride_h, oy, w_out, c0, b, y0, w_out, 1, R, tail); break;
    case 2: rows_chunk(values, taps, p0, p1, xb, h, stride_h, oy, w_out, c0, b, y0, w_out, 2, R, tail); break;
    case 3: rows_chunk(values, taps, p0, p1, xb, h, stride_h, oy, w_out, c0, b, y0, w_out, 3, R, tail); break;
    default: rows_chunk(values, taps, p0, p1, xb, h, stride_h, oy, w_out, c0, b, y0, w_out, 4, R, tail); break;
    }
}

void sk_f32_conv2d_sparse_avx512(const float *values, const int64_t *row_ptr,
                                 const sk_conv_tap *taps, int64_t co_begin, int64_t co_end,
                                 const float *xb, int64_t h, int64_t stride_h, int64_t h_out,
                                 int64_t w_out, const float *bias, float *y) {
    for (int64_t co = co_begin; co < co_end; ++co) {
        const float b = bias ? bias[co] : 0.0f;
        const int64_t p0 = row_ptr[co], p1 = row_ptr[co + 1];
        float *yc = y + co * h_out * w_out;
        int64_t oy = 0;
        if (w_out > 32 && p1 - p0 > 32)   /* measured: long channels of wide rows run faster
                                             * with 2 rows (8 accumulators) than with 4 */
            for (; oy + 2 <= h_out; oy += 2)
                rows_all(values, taps, p0, p1, xb, h, stride_h, oy, w_out, b, yc + oy * w_out, 2);
        for (; oy + 4 <= h_out; oy += 4)
            rows_all(values, taps, p0, p1, xb, h, stride_h, oy, w_out, b, yc + oy * w_out, 4);
        switch (h_out - oy) {
        case 3: rows_all(values, taps, p0, p1, xb, h, stride_h, oy, w_out, b, yc + oy * w_out, 3); break;
        case 2: rows_all(values, taps, p0, p1, xb, h, stride_h, oy, w_out, b, yc + oy * w_out, 2); break;
        case 1: rows_all(values, taps, p0, p1, xb, h, stride_h, oy, w_out, b, yc + oy * w_out, 1); break;
        default: break;
        }
    }
}
