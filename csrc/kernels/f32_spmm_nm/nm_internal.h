/* Internal declarations of the N:M family (operator and kernels). */
#ifndef SK_NM_INTERNAL_H
#define SK_NM_INTERNAL_H

#include <string.h>

#include "internal.h"

/* A microkernel computes rows [row_begin, row_end) of Y[:, 0:n] = W @ X[:, 0:n] (+ bias),
 * with the contract of sk_f32_spmm_unstructured_ukernel. */
typedef void sk_f32_spmm_nm_ukernel_fn(const sk_nm_f32 *w, int64_t row_begin, int64_t row_end,
                                       const float *x, int64_t n, int64_t ldx, const float *bias,
                                       float *y, int64_t ldy);
typedef sk_f32_spmm_nm_ukernel_fn *sk_f32_spmm_nm_ukernel;

sk_f32_spmm_nm_ukernel_fn sk_f32_spmm_nm_scalar;
extern const sk_tiling sk_f32_spmm_nm_tiling_scalar;
#if defined(SK_HAVE_AVX2)
sk_f32_spmm_nm_ukernel_fn sk_f32_spmm_nm_avx2;
extern const sk_tiling sk_f32_spmm_nm_tiling_avx2;
#endif
#if defined(SK_HAVE_NEON)
sk_f32_spmm_nm_ukernel_fn sk_f32_spmm_nm_neon;
extern const sk_tiling sk_f32_spmm_nm_tiling_neon;
#endif
#if defined(SK_HAVE_WASMSIMD)
sk_f32_spmm_nm_ukernel_fn sk_f32_spmm_nm_wasmsimd;
extern const sk_tiling sk_f32_spmm_nm_tiling_wasmsimd;
#endif
#if defined(SK_HAVE_AVX512)
sk_f32_spmm_nm_ukernel_fn sk_f32_spmm_nm_avx512;
extern const sk_tiling sk_f32_spmm_nm_tiling_avx512;
#endif

/* Small n: the same product with X given transposed, xt[n][ldxt] (column c of X is
 * xt + c * ldxt, contiguous); NULL for ISAs without one. */
#if defined(SK_HAVE_AVX512)
void sk_f32_spmm_nm_avx512_xt(const sk_nm_f32 *w, int64_t r0, int64_t r1, const float *xt,
                              int64_t n, int64_t ldxt, const float *bias, float *y, int64_t ldy);
#endif

SK_INLINE int64_t sk_nm_groups(const sk_nm_f32 *w) { return (w->cols + w->m - 1) / w->m; }

/* nbits (<= 64) bits of a row's position stream starting at bit `bitoff`, LSB first.
 * Reads only the 8-byte words that hold those bits (the row stride is a multiple of 8). */
SK_INLINE uint64_t sk_nm_bits(const uint8_t *row, int64_t bitoff, int nbits) {
    const int64_t wi = bitoff >> 6;
    const int sh = (int)(bitoff & 63);
    uint64_t lo;
    memcpy(&lo, row + 8 * wi, 8);
    uint64_t v = lo >> sh;
    if (sh + nbits > 64) {
        uint64_t hi;
        memcpy(&hi, row + 8 * (wi + 1), 8);
        v |= hi << (64 - sh);
    }
    return nbits >= 64 ? v : v & ((UINT64_C(1) << nbits) - 1);
}

/* Software prefetch distance (bytes) of the x86 batch-1 weight stream: the fastest of 1,
 * 4 and 8 KiB for cold 2:4 (AVX2 without it: 1.6x slower). */
#ifndef SK_NM_PF_DIST
#define SK_NM_PF_DIST 8192
#endif

/* Batch-1 steps of the x86 window kernels: a step covers gs = L / N whole groups (v =
 * gs * N <= L slots for L lanes), whose X span (span floats) is read as nwin windows of
 * WF floats; nsteps steps keep those windows inside X, and the first nword of them (full
 * steps only, v == L) can read their positions with one RB-byte read at byte
 * s * L * b / 8 inside the row. */
typedef struct {
    int gs, v, span, nwin;
    int64_t nsteps, nword;
} sk_nm_steps;

SK_INLINE sk_nm_steps sk_nm_step_plan(const sk_nm_f32 *w, int L, int WF, int RB) {
    sk_nm_steps p;
    p.gs = L / w->n;
    p.v = p.gs * w->n;
    p.span = p.gs * w->m;
    p.nwin = (p.span + WF - 1) / WF;
    const int64_t reach = (int64_t)p.nwin * WF;
    p.nsteps = p.gs && w->cols >= reach ? (w->cols - reach) / p.span + 1 : 0;
    const int64_t step_bytes = (int64_t)L * w->pos_bits / 8;
    p.nword = p.v == L && w->meta_stride >= RB ? (w->meta_stride - RB) / step_bytes + 1 : 0;
    if (p.nword > p.nsteps) p.nword = p.nsteps;
    return p;
}

/* Position of slot j of a row. */
SK_INLINE int sk_nm_pos(const uint8_t *row, int64_t j, int pos_bits) {
    return (int)sk_nm_bits(row, j * pos_bits, pos_bits);
}

/* Slots [j0, j1) of row r (any groups, padding skipped) added to y[0:n] (scalar; for
 * tails). */
SK_INLINE void sk_nm_slots_scalar(const sk_nm_f32 *w, int64_t r, int64_t j0, int64_t j1,
                                  const float *x, int64_t n, int64_t ldx, float *yrow) {
    const int64_t slots = sk_nm_groups(w) * w->n;
    const float *vals = w->values + r * slots;
    const uint8_t *meta = w->meta + r * w->meta_stride;
    for (int64_t j = j0; j < j1; ++j) {
        const int64_t col = (j / w->n) * w->m + sk_nm_pos(meta, j, w->pos_bits);
        if (col >= w->cols) continue;
        const float v = vals[j];
        const float *xr = x + col * ldx;
        for (int64_t c = 0; c < n; ++c) yrow[c] += v * xr[c];
    }
}

#endif
