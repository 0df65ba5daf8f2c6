/* The direct sparse convolution of the x86 variants (x86_avx2.c, x86_avx512.c), written
 * once against csrc/core/x86_vec.h (W = SK_VF_LANES). Output rows are computed R at a
 * time (up to SK_CONV_ROWS) in chunks of up to 4 vectors: every stored weight is
 * broadcast once and multiplies the matching input rows, so 8-16 independent
 * accumulators hide the FMA latency and the per-weight work is shared by R rows.
 * Loads are masked to the tap's valid columns (padding columns and columns past the row
 * are never read):
 *   with mask registers (AVX-512) every load takes the operator's precomputed mask of the
 *   tap and vector (one kmov each), so the inner loop has no border logic at all;
 *   without (AVX2) a vector mask costs a compare per vector, so masks are computed only
 *   for taps that do not cover the whole chunk, the others load plainly. */
#ifndef SK_CONV_X86_BODY_H
#define SK_CONV_X86_BODY_H

#include "x86_vec.h"
#include "conv_internal.h"

/* output rows per step: 4 (16 accumulators) with 32 registers, 2 with 16 */
#define SK_CONV_ROWS (SK_VF_REGS >= 32 ? 4 : 2)
/* channels of more than SK_CONV_LONG taps whose rows are wider than SK_CONV_LONG columns
 * run SK_CONV_ROWS_LONG rows at a time (4 rows: slower) */
#define SK_CONV_LONG 32
#define SK_CONV_ROWS_LONG 2
/* vectors per chunk of a row: chunks of SK_CONV_V vectors, then one of 1..SK_CONV_V, the
 * last vector masked */
#define SK_CONV_V 4

/* Output rows oy .. oy + R - 1 (ystep floats apart from y0), columns [c0, c0 + cn) in V
 * vectors, the last one masked by tail. */
SK_INLINE void rows_chunk(const float *SK_RESTRICT values, const sk_conv_tap *SK_RESTRICT taps,
                          const uint16_t *SK_RESTRICT masks, int64_t nvec, int64_t p0, int64_t p1,
                          const float *xb, int64_t h, int64_t stride_h, int64_t oy, int64_t w_out,
                          int64_t c0, int64_t cn, float b, float *y0, int64_t ystep, const int V,
                          const int R, sk_vmask tail) {
    enum { W = SK_VF_LANES };
    sk_vf acc[4][4];
    for (int r = 0; r < R; ++r)
        for (int v = 0; v < V; ++v) acc[r][v] = sk_vf_splat(b);
    for (int64_t p = p0; p < p1; ++p) {
        const sk_conv_tap *t = &taps[p];
        sk_vmask mk[4];
#if SK_VF_MASK_REGS
        const uint16_t *row = masks + t->col * nvec + c0 / 16;
        for (int v = 0; v < V; ++v) mk[v] = sk_m16_from_bits(row[v]);
        enum { full = 0 };
#else
        int64_t lo, hi;
        sk_conv_tap_cols(t, w_out, &lo, &hi);
        if (hi <= lo) continue;
        const int full = lo <= c0 && hi >= c0 + cn;
        if (!full) {
            const int64_t hc = hi < c0 + cn ? hi : c0 + cn;
            for (int v = 0; v < V; ++v) mk[v] = sk_m8_range(lo - c0 - W * v, hc - c0 - W * v);
        }
#endif
        const int64_t iy0 = oy * stride_h + t->dy;
        const sk_vf wv = sk_vf_splat(values[p]);
        const float *xr0 = xb + t->off + t->dx + c0;
#define SK_CONV_ROW(r)                                                         \
    do {                                                                       \
        const float *xr = xr0 + (iy0 + (r) * stride_h) * t->ld;                \
        for (int v = 0; v < V; ++v) {                                          \
            const sk_vf xv = !full        ? sk_vf_load_mask(xr + W * v, mk[v]) \
                             : v == V - 1 ? sk_vf_load_mask(xr + W * v, tail)  \
                                          : sk_vf_load(xr + W * v);            \
            acc[r][v] = sk_vf_fma(acc[r][v], wv, xv);                          \
        }                                                                      \
    } while (0)
        if (iy0 >= 0 && iy0 + (R - 1) * stride_h < h) { /* every row inside: no checks */
            for (int r = 0; r < R; ++r) SK_CONV_ROW(r);
        } else {
            for (int r = 0; r < R; ++r) {
                const int64_t iy = iy0 + r * stride_h;
                if (iy >= 0 && iy < h) SK_CONV_ROW(r);
            }
        }
#undef SK_CONV_ROW
    }
    for (int r = 0; r < R; ++r)
        for (int v = 0; v < V; ++v) {
            if (v == V - 1) sk_vf_store_mask(y0 + r * ystep + c0 + W * v, tail, acc[r][v]);
            else sk_vf_store(y0 + r * ystep + c0 + W * v, acc[r][v]);
        }
}

SK_INLINE void rows_all(const float *values, const sk_conv_tap *taps, const uint16_t *masks,
                        int64_t nvec, int64_t p0, int64_t p1, const float *xb, int64_t h,
                        int64_t stride_h, int64_t oy, int64_t w_out, float b, float *y0,
                        const int R) {
    enum { W = SK_VF_LANES };
    int64_t c0 = 0;
    for (; c0 + SK_CONV_V * W <= w_out; c0 += SK_CONV_V * W)
        rows_chunk(values, taps, masks, nvec, p0, p1, xb, h, stride_h, oy, w_out, c0, SK_CONV_V * W,
                   b, y0, w_out, SK_CONV_V, R, sk_vmask_first(W));
    const int64_t rest = w_out - c0;
    if (rest <= 0) return;
    const int V = (int)((rest + W - 1) / W);
    const sk_vmask tail = sk_vmask_first(rest - W * (V - 1));
#define SK_CONV_CHUNK(V)                                                                       \
    rows_chunk(values, taps, masks, nvec, p0, p1, xb, h, stride_h, oy, w_out, c0, rest, b, y0, \
               w_out, V, R, tail)
    switch (V) {
    case 1: SK_CONV_CHUNK(1); break;
    case 2: SK_CONV_CHUNK(2); break;
    case 3: SK_CONV_CHUNK(3); break;
    default: SK_CONV_CHUNK(4); break;
    }
#undef SK_CONV_CHUNK
}

void SK_VF_FN(sk_f32_conv2d_sparse)(const float *values, const int64_t *row_ptr,
                                    const sk_conv_tap *taps, int64_t co_begin, int64_t co_end,
                                    const float *xb, int64_t h, int64_t stride_h, int64_t oy_begin,
                                    int64_t oy_end, int64_t h_out, int64_t w_out, const float *bias,
                                    float *y, const uint16_t *masks, int64_t nvec) {
#define SK_CONV_ROWS_AT(R) \
    rows_all(values, taps, masks, nvec, p0, p1, xb, h, stride_h, oy, w_out, b, yc + oy * w_out, R)
    for (int64_t co = co_begin; co < co_end; ++co) {
        const float b = bias ? bias[co] : 0.0f;
        const int64_t p0 = row_ptr[co], p1 = row_ptr[co + 1];
        float *yc = y + co * h_out * w_out;
        int64_t oy = oy_begin;
        /* long channels of wide rows ran faster with 2 rows (8 accumulators) than with 4 */
        if (SK_CONV_ROWS >= 4 && !(w_out > SK_CONV_LONG && p1 - p0 > SK_CONV_LONG)) {
            for (; oy + 4 <= oy_end; oy += 4) SK_CONV_ROWS_AT(4);
            if (oy_end - oy == 3) {
                SK_CONV_ROWS_AT(3);
                oy += 3;
            }
        }
        for (; oy + SK_CONV_ROWS_LONG <= oy_end; oy += SK_CONV_ROWS_LONG)
            SK_CONV_ROWS_AT(SK_CONV_ROWS_LONG);
        if (oy < oy_end) SK_CONV_ROWS_AT(1);
    }
#undef SK_CONV_ROWS_AT
}

const sk_tiling SK_VF_FN(sk_f32_conv2d_sparse_tiling) = {
    .n_tiles = {SK_CONV_V * SK_VF_LANES, SK_VF_LANES},
    .k_step = 1,
    .k_step1 = 1,
    .k_block = SK_CONV_ROWS >= 4 ? SK_CONV_LONG : 0,
    .row_block = SK_CONV_ROWS,
    .row_block1 = SK_CONV_ROWS_LONG,
};

#endif
