/* AVX-512 variant of the direct sparse convolution. Compiled with its own flags.
 * Output rows are computed R at a time (R = 2 or 4) in chunks of up to 64 columns
 * (V = 4 vectors): every stored weight is broadcast once and multiplies the matching
 * input rows, so 8-16 independent accumulators hide the FMA latency and the per-weight
 * work is shared by R rows. Every load is masked with the operator's precomputed mask
 * of the tap and vector (columns in the padding or past the row are never read, and
 * masked loads never fault), so the inner loop has no border logic at all. */
#include <immintrin.h>

#include "conv_internal.h"

SK_INLINE void rows_chunk(const float *SK_RESTRICT values, const sk_conv_tap *SK_RESTRICT taps,
                          const uint16_t *SK_RESTRICT masks, int64_t nvec, int64_t p0, int64_t p1,
                          const float *xb, int64_t h, int64_t stride_h, int64_t oy, int64_t c0,
                          float b, float *y0, int64_t ystep, const int V, const int R,
                          __mmask16 tail) {
    __m512 acc[4][4];
    for (int r = 0; r < R; ++r)
        for (int v = 0; v < V; ++v) acc[r][v] = _mm512_set1_ps(b);
    const int64_t v0 = c0 / 16;
    for (int64_t p = p0; p < p1; ++p) {
        const sk_conv_tap *t = &taps[p];
        const int64_t iy0 = oy * stride_h + t->dy;
        const uint16_t *mk = masks + t->col * nvec + v0;
        const __m512 wv = _mm512_set1_ps(values[p]);
        const float *xr0 = xb + t->off + t->dx + c0;
        if (iy0 >= 0 && iy0 + (R - 1) * stride_h < h) {   /* every row inside: no checks */
            for (int r = 0; r < R; ++r) {
                const float *xr = xr0 + (iy0 + r * stride_h) * t->ld;
                for (int v = 0; v < V; ++v)
                    acc[r][v] = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps((__mmask16)mk[v], xr + 16 * v),
                                                acc[r][v]);
            }
        } else {
            for (int r = 0; r < R; ++r) {
                const int64_t iy = iy0 + r * stride_h;
                if (iy < 0 || iy >= h) continue;
                const float *xr = xr0 + iy * t->ld;
                for (int v = 0; v < V; ++v)
                    acc[r][v] = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps((__mmask16)mk[v], xr + 16 * v),
                                                acc[r][v]);
            }
        }
    }
    for (int r = 0; r < R; ++r)
        for (int v = 0; v < V; ++v) {
            if (v == V - 1) _mm512_mask_storeu_ps(y0 + r * ystep + c0 + 16 * v, tail, acc[r][v]);
            else _mm512_storeu_ps(y0 + r * ystep + c0 + 16 * v, acc[r][v]);
        }
}

SK_INLINE void rows_all(const float *values, const sk_conv_tap *taps, const uint16_t *masks,
                        int64_t nvec, int64_t p0, int64_t p1, const float *xb, int64_t h,
                        int64_t stride_h, int64_t oy, int64_t w_out, float b, float *y0,
                        const int R) {
    int64_t c0 = 0;
    for (; c0 + 64 <= w_out; c0 += 64)
        rows_chunk(values, taps, masks, nvec, p0, p1, xb, h, stride_h, oy, c0, b, y0, w_out, 4, R,
                   0xffff);
    const int64_t rest = w_out - c0;
    if (rest <= 0) return;
    const int V = (int)((rest + 15) / 16);
    const int64_t last = rest - 16 * (V - 1);
    const __mmask16 tail = (__mmask16)((1u << last) - 1u);
    switch (V) {
    case 1: rows_chunk(values, taps, masks, nvec, p0, p1, xb, h, stride_h, oy, c0, b, y0, w_out, 1, R, tail); break;
    case 2: rows_chunk(values, taps, masks, nvec, p0, p1, xb, h, stride_h, oy, c0, b, y0, w_out, 2, R, tail); break;
    case 3: rows_chunk(values, taps, masks, nvec, p0, p1, xb, h, stride_h, oy, c0, b, y0, w_out, 3, R, tail); break;
    default: rows_chunk(values, taps, masks, nvec, p0, p1, xb, h, stride_h, oy, c0, b, y0, w_out, 4, R, tail); break;
    }
}

void sk_f32_conv2d_sparse_avx512(const float *values, const int64_t *row_ptr,
                                 const sk_conv_tap *taps, int64_t co_begin, int64_t co_end,
                                 const float *xb, int64_t h, int64_t stride_h, int64_t oy_begin, int64_t oy_end, int64_t h_out,
                                 int64_t w_out, const float *bias, float *y,
    const uint16_t *masks, int64_t nvec) {
    for (int64_t co = co_begin; co < co_end; ++co) {
        const float b = bias ? bias[co] : 0.0f;
        const int64_t p0 = row_ptr[co], p1 = row_ptr[co + 1];
        float *yc = y + co * h_out * w_out;
        int64_t oy = oy_begin;
        if (w_out > 32 && p1 - p0 > 32)   /* measured: long channels of wide rows run faster
                                             * with 2 rows (8 accumulators) than with 4 */
            for (; oy + 2 <= oy_end; oy += 2)
                rows_all(values, taps, masks, nvec, p0, p1, xb, h, stride_h, oy, w_out, b,
                         yc + oy * w_out, 2);
        for (; oy + 4 <= oy_end; oy += 4)
            rows_all(values, taps, masks, nvec, p0, p1, xb, h, stride_h, oy, w_out, b,
                     yc + oy * w_out, 4);
        switch (oy_end - oy) {
        case 3: rows_all(values, taps, masks, nvec, p0, p1, xb, h, stride_h, oy, w_out, b, yc + oy * w_out, 3); break;
        case 2: rows_all(values, taps, masks, nvec, p0, p1, xb, h, stride_h, oy, w_out, b, yc + oy * w_out, 2); break;
        case 1: rows_all(values, taps, masks, nvec, p0, p1, xb, h, stride_h, oy, w_out, b, yc + oy * w_out, 1); break;
        default: break;
        }
    }
}

/* Nonzero when x[0:n] holds inf or NaN (exponent bits all ones). */
int sk_f32_conv2d_nonfinite_avx512(const float *x, int64_t n) {
    const __m512i e = _mm512_set1_epi32(0x7f800000);
    __mmask16 any = 0;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512i v = _mm512_and_si512(_mm512_loadu_si512((const void *)(x + i)), e);
        any |= _mm512_cmpeq_epi32_mask(v, e);
    }
    if (i < n) {
        const __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);
        const __m512i v = _mm512_and_si512(_mm512_maskz_loadu_epi32(m, x + i), e);
        any |= _mm512_mask_cmpeq_epi32_mask(m, v, e);
    }
    return any != 0;
}
