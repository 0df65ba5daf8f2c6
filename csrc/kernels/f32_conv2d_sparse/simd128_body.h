/* The direct sparse convolution shared by the 128-bit SIMD variants (arm_neon.c,
 * wasm_simd128.c), written against csrc/core/simd128.h; the x86 AVX2 plan. Two
 * output rows at a time, each row in the fewest chunks of up to 4 * SK_CONV_V columns
 * (SK_CONV_V vectors per row: 8 on NEON's 32 registers, 4 for SIMD128 on a 16-register
 * x86-64 host; equal chunk widths so that no short chunk pays the per-tap cost for a
 * few columns), the accumulators held in registers across all the taps of the channel.
 * Per tap: when both input rows exist and hold all the chunk's columns, whole-vector
 * loads (NEON: 4 per ld1); at a padding edge (only the first and the last vector
 * partial) a window for each of those two: 4 valid consecutive inputs moved into place
 * with one byte table lookup and merged under a lane mask; otherwise (top/bottom rows,
 * short rows) vector by vector. No input outside the tap's valid columns [lo, hi) is
 * read, and a non-finite weight reaches no lane outside them. The last vector of a row
 * is stored lane by lane when partial.
 * The includer defines SK_CONV_FN, the name of the exported function, and SK_CONV_TILING,
 * the name of its tiling (sparsekern.h: sk_tiling). */
#ifndef SK_CONV_SIMD128_BODY_H
#define SK_CONV_SIMD128_BODY_H

#include "simd128.h"
#include "conv_internal.h"

#define SK_CONV_V (SK_V4_REGS / 4) /* vectors of 4 per row in a chunk */
#define SK_CONV_ROWS 2 /* output rows per step */
/* the accumulators stay in registers only when these loops are unrolled completely */
#define SK_UNROLL2 _Pragma("GCC unroll 2")
#define SK_UNROLL8 _Pragma("GCC unroll 8")

/* A window for the vector of output columns [cb, cb + 4) of a tap with valid columns
 * [lo, hi), hi - lo >= 4: the 4 valid inputs at s = clamp(cb, lo, hi - 4), moved to
 * their lanes by a byte table lookup (lane k takes element cb + k = s + (k + cb - s), so
 * the byte indices are shifted by 4*(cb - s)). The lanes that exist are exactly those
 * whose indices are in range (< 16; the others get 0 from the lookup), which gives the
 * mask. Works for a vector with no valid lane too (shift of +-16). */
typedef struct {
    int64_t s;
    sk_v16u8 ix;
} sk_window;

SK_INLINE sk_window window_at(int64_t cb, int64_t lo, int64_t hi) {
    sk_window wd;
    int64_t s = cb < lo ? lo : cb;
    if (s > hi - 4) s = hi - 4;
    wd.s = s;
    wd.ix = sk_v16u8_add(sk_v16u8_iota(), sk_v16u8_splat((uint8_t)(4 * (cb - s))));
    return wd;
}

/* acc + wv * window of the row xr (at output column 0) on the window's lanes */
SK_INLINE sk_v4f fma_window(sk_v4f acc, sk_v4f wv, const float *xr, sk_window wd) {
    const sk_v4f xv =
        sk_v16u8_as_v4f(sk_v16u8_lookup(sk_v4f_as_v16u8(sk_v4f_load(xr + wd.s)), wd.ix));
    const sk_v4u m = sk_v16u8_as_v4u(sk_v16u8_lt(wd.ix, sk_v16u8_splat(16)));
    return sk_v4f_select(m, sk_v4f_fma(acc, wv, xv), acc);
}

/* acc + w * x[cb + k] on the lanes k with lo <= cb + k < hi (at least one); acc elsewhere */
static sk_v4f fma_part(sk_v4f acc, float w, const float *xr, int64_t cb, int64_t lo, int64_t hi) {
    if (hi - lo >= 4) return fma_window(acc, sk_v4f_splat(w), xr, window_at(cb, lo, hi));
    float t[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (int k = 0; k < 4; ++k)
        if (cb + k >= lo && cb + k < hi) t[k] = xr[cb + k];
    const sk_v4u m = sk_v4u_lt(sk_v4u_add(sk_v4u_splat((uint32_t)(cb - lo)), sk_v4u_iota()),
                               sk_v4u_splat((uint32_t)(hi - lo)));
    return sk_v4f_select(m, sk_v4f_fma_n(acc, sk_v4f_load(t), w), acc);
}

/* acc + w * x[cb + k] on the lanes k with lo <= cb + k < hi (none, some or all) */
SK_INLINE sk_v4f fma_vec(sk_v4f acc, sk_v4f wv, float w, const float *xr, int64_t cb, int64_t lo,
                         int64_t hi) {
    if (cb >= lo && cb + 4 <= hi) return sk_v4f_fma(acc, wv, sk_v4f_load(xr + cb));
    if (cb < hi && cb + 4 > lo) return fma_part(acc, w, xr, cb, lo, hi);
    return acc;
}

/* the first cnt (1..4) lanes of v to p */
SK_INLINE void store_part(float *p, sk_v4f v, int64_t cnt) {
    if (cnt >= 4) sk_v4f_store(p, v);
    else sk_v4f_store_partial(p, v, (int)cnt);
}

/* output columns [c0, c0 + cn) (cn <= 4V) of R rows oy, oy + 1 of one channel;
 * hb = h - (R-1)*stride_h clamped at 0: iy0 < hb (unsigned) when all R input rows exist */
SK_INLINE void rows_chunk(const float *SK_RESTRICT values, const sk_conv_tap *SK_RESTRICT taps,
                          int64_t p0, int64_t p1, const float *xb, int64_t h, int64_t hb,
                          int64_t stride_h, int64_t oy, int64_t w_out, int64_t c0, float b,
                          float *y0, const int V, const int R, int64_t cn) {
    sk_v4f acc[SK_CONV_ROWS][SK_CONV_V];
    SK_UNROLL2 for (int r = 0; r < R; ++r) SK_UNROLL8 for (int v = 0; v < V; ++v) acc[r][v] =
        sk_v4f_splat(b);
    for (int64_t p = p0; p < p1; ++p) {
        const sk_conv_tap *t = &taps[p];
        const int64_t iy0 = oy * stride_h + t->dy;
        const int64_t s = c0 + t->dx; /* input column of output column c0 */
        const float w = values[p];
        const sk_v4f wv = sk_v4f_splat(w);
        const int rows_ok = (uint64_t)iy0 < (uint64_t)hb;
        /* common case: every row exists and the input row holds all 4V columns (those
         * past cn are read but never stored) */
        if (rows_ok && s >= 0 && s + 4 * V <= t->width) {
            const float *xr = xb + t->off + iy0 * t->ld + s;
            const int64_t rs = R > 1 ? stride_h * t->ld : 0; /* R > 1: stride_h < h */
            SK_UNROLL2 for (int r = 0; r < R; ++r) {
                const float *xv = xr + r * rs;
                int v = 0;
                SK_UNROLL8 for (; v + 4 <= V; v += 4) { /* NEON: one ld1 loads 4 vectors */
                    const sk_v4fx4 q = sk_v4f_load_x4(xv + 4 * v);
                    acc[r][v] = sk_v4f_fma(acc[r][v], wv, q.val[0]);
                    acc[r][v + 1] = sk_v4f_fma(acc[r][v + 1], wv, q.val[1]);
                    acc[r][v + 2] = sk_v4f_fma(acc[r][v + 2], wv, q.val[2]);
                    acc[r][v + 3] = sk_v4f_fma(acc[r][v + 3], wv, q.val[3]);
                }
                SK_UNROLL8 for (; v < V; ++v) acc[r][v] =
                    sk_v4f_fma(acc[r][v], wv, sk_v4f_load(xv + 4 * v));
            }
            continue;
        }
        int64_t lo, hi;
        sk_conv_tap_cols(t, w_out, &lo, &hi);
        if (hi <= c0 || lo >= c0 + cn || hi <= lo) continue;
        if (V > 2 && rows_ok && lo <= c0 + 4 && hi >= c0 + 4 * V - 4) {
            /* a padding edge: only the first and the last vector can be partial (then
             * hi - lo >= 4V - 8 >= 4: windows for both, the same for every row) */
            const float *xr = xb + t->off + iy0 * t->ld + t->dx; /* at output column 0 */
            const int64_t rs = R > 1 ? stride_h * t->ld : 0;
            const sk_window wa = window_at(c0, lo, hi), wz = window_at(c0 + 4 * (V - 1), lo, hi);
            SK_UNROLL2 for (int r = 0; r < R; ++r) {
                const float *xv = xr + r * rs;
                acc[r][0] = fma_window(acc[r][0], wv, xv, wa);
                SK_UNROLL8 for (int v = 1; v < V - 1; ++v) acc[r][v] =
                    sk_v4f_fma(acc[r][v], wv, sk_v4f_load(xv + c0 + 4 * v));
                acc[r][V - 1] = fma_window(acc[r][V - 1], wv, xv, wz);
            }
            continue;
        }
        SK_UNROLL2 for (int r = 0; r < R; ++r) {
            const int64_t iy = iy0 + r * stride_h;
            if ((uint64_t)iy >= (uint64_t)h) continue;
            const float *xr = xb + t->off + iy * t->ld + t->dx;
            SK_UNROLL8 for (int v = 0; v < V; ++v) acc[r][v] =
                fma_vec(acc[r][v], wv, w, xr, c0 + 4 * v, lo, hi);
        }
    }
    SK_UNROLL2 for (int r = 0; r < R; ++r) {
        float *yr = y0 + r * w_out + c0;
        SK_UNROLL8 for (int v = 0; v < V - 1; ++v) sk_v4f_store(yr + 4 * v, acc[r][v]);
        store_part(yr + 4 * (V - 1), acc[r][V - 1], cn - 4 * (V - 1));
    }
}

/* the row in chunks of 4V columns; with several, the last one ends at w_out and
 * overlaps the one before (those columns are computed twice, identically); a single
 * chunk is w_out (> 4V - 4) wide */
SK_INLINE void rows_span(const float *values, const sk_conv_tap *taps, int64_t p0, int64_t p1,
                         const float *xb, int64_t h, int64_t hb, int64_t stride_h, int64_t oy,
                         int64_t w_out, float b, float *y0, const int V, const int R) {
    if (w_out <= 4 * V) {
        rows_chunk(values, taps, p0, p1, xb, h, hb, stride_h, oy, w_out, 0, b, y0, V, R, w_out);
        return;
    }
    for (int64_t c0 = 0; c0 < w_out; c0 += 4 * V)
        rows_chunk(values, taps, p0, p1, xb, h, hb, stride_h, oy, w_out,
                   c0 + 4 * V <= w_out ? c0 : w_out - 4 * V, b, y0, V, R, 4 * V);
}

/* The row in the fewest chunks of up to 4 * SK_CONV_V columns, of equal widths
 * (multiples of 4): no short chunk paying the per-tap cost for a few columns. */
SK_INLINE void rows_all(const float *values, const sk_conv_tap *taps, int64_t p0, int64_t p1,
                        const float *xb, int64_t h, int64_t stride_h, int64_t oy, int64_t w_out,
                        float b, float *y0, const int R) {
    const int64_t hb = h - (R - 1) * stride_h > 0 ? h - (R - 1) * stride_h : 0;
    const int64_t nch = (w_out + 4 * SK_CONV_V - 1) / (4 * SK_CONV_V);
    const int64_t cw = ((w_out + nch - 1) / nch + 3) / 4; /* vectors per chunk, 1..SK_CONV_V */
#define SK_SPAN(V) rows_span(values, taps, p0, p1, xb, h, hb, stride_h, oy, w_out, b, y0, V, R)
    switch (cw) {
    case 1: SK_SPAN(1); break;
    case 2: SK_SPAN(2); break;
    case 3: SK_SPAN(3); break;
#if SK_CONV_V >= 8
    case 4: SK_SPAN(4); break;
    case 5: SK_SPAN(5); break;
    case 6: SK_SPAN(6); break;
    case 7: SK_SPAN(7); break;
    default: SK_SPAN(8); break;
#else
    default: SK_SPAN(4); break;
#endif
    }
#undef SK_SPAN
}

void SK_CONV_FN(const float *values, const int64_t *row_ptr, const sk_conv_tap *taps,
                int64_t co_begin, int64_t co_end, const float *xb, int64_t h, int64_t stride_h,
                int64_t oy_begin, int64_t oy_end, int64_t h_out, int64_t w_out, const float *bias,
                float *y, const uint16_t *masks, int64_t nvec) {
    (void)masks;
    (void)nvec;
    for (int64_t co = co_begin; co < co_end; ++co) {
        const float b = bias ? bias[co] : 0.0f;
        const int64_t p0 = row_ptr[co], p1 = row_ptr[co + 1];
        float *yc = y + co * h_out * w_out;
        int64_t oy = oy_begin;
        for (; oy + SK_CONV_ROWS <= oy_end; oy += SK_CONV_ROWS)
            rows_all(values, taps, p0, p1, xb, h, stride_h, oy, w_out, b, yc + oy * w_out,
                     SK_CONV_ROWS);
        if (oy < oy_end)
            rows_all(values, taps, p0, p1, xb, h, stride_h, oy, w_out, b, yc + oy * w_out, 1);
    }
}

/* chunks of up to 4 * SK_CONV_V columns, of equal widths (multiples of one vector) */
const sk_tiling SK_CONV_TILING = {
    .n_tiles = {4 * SK_CONV_V, 4},
    .k_step = 1,
    .k_step1 = 1,
    .row_block = SK_CONV_ROWS,
    .row_block1 = SK_CONV_ROWS,
};

#endif
