/* The N:M SpMM kernel shared by the 128-bit SIMD variants (arm_neon.c, wasm_simd128.c),
 * written against csrc/core/simd128.h.
 *   n == 1: the plan of simd128_plan.h; the window lookups are sk_v4f_lookup_n (NEON:
 *           vqtbl2q/vqtbl4q_u8; SIMD128: one i8x16.swizzle per window vector, OR-ed);
 *           the positions of up to 64 bits' worth of steps are read at once.
 *   n  > 1: one row of W at a time, tiles of 64 (NEON only: SK_V4_REGS)/32/16/8/4
 *           columns and a 1..3-column tail of lane loads; each slot broadcasts its weight
 *           and does one FMA per vector with the X row its position names. Rows one at a
 *           time: with 4 rows (the AVX2 plan) GCC 12 kept the accumulator array in
 *           memory, and a row's 16 accumulators of 64 columns amortize the position
 *           decode best on NEON (42 vs 82 instructions per stored slot at n = 64); on a
 *           16-register x86-64 host running SIMD128, 16 accumulators would spill.
 * The includer defines SK_NM_FN, the name of the exported function, and SK_NM_TILING, the
 * name of its tiling (sparsekern.h: sk_tiling). */
#ifndef SK_NM_SIMD128_BODY_H
#define SK_NM_SIMD128_BODY_H

#include "simd128.h"
#include "simd128_plan.h"

/* ---------------------------------------------------------------- n == 1 */

typedef struct {
    const sk_nm_gemv_plan *p;
    sk_v16u8 shuf;
    sk_v4u_shifts shift;
    sk_v4u pmask;
} quad_decoder;

/* positions of the 4 slots whose bits start at bit 0 of qb (each lane: the two bytes
 * that hold its bits, < 2^16, shifted by 0..7) */
SK_INLINE sk_v4u quad_pos(const quad_decoder *d, uint64_t qb) {
    const sk_v4u two = sk_v16u8_as_v4u(sk_v16u8_lookup(sk_v16u8_splat_u64(qb), d->shuf));
    return sk_v4u_and(sk_v4u_shr_by(two, d->shift), d->pmask);
}

/* Step s of a row (window plan): bits holds its positions from bit 0. */
SK_INLINE void win_step(const quad_decoder *d, const sk_v4u *base, uint64_t bits, int b,
                        const float *xg, const float *vp, sk_v4f *acc, const int NV, const int NW) {
    sk_v4f xw[4];
    for (int i = 0; i < NW; ++i) xw[i] = sk_v4f_load(xg + 4 * i);
    const sk_v4u four = sk_v4u_splat(0x04040404u);
    for (int q = 0; q < NV; ++q) {
        const sk_v4u pos = quad_pos(d, bits >> (4 * q * b));
        const sk_v16u8 idx = sk_v4u_as_v16u8(sk_v4u_mla(base[q], pos, four));
        acc[q & 1] = sk_v4f_fma(acc[q & 1], sk_v4f_load(vp + 4 * q), sk_v4f_lookup_n(xw, idx, NW));
    }
}

/* KS: steps per position read (KS * v * pos_bits <= 64) */
SK_INLINE void gemv_win(const sk_nm_f32 *w, const quad_decoder *d, int64_t r0, int64_t r1,
                        const float *x, const float *bias, float *y, int64_t ldy, const int NV,
                        const int NW, const int KS) {
    const sk_nm_gemv_plan *p = d->p;
    const int b = w->pos_bits, V = 4 * NV, span = p->win;
    const int64_t slots = sk_nm_groups(w) * w->n, nsteps = (w->cols / w->m) / p->gs;
    sk_v4u base[3];
    for (int q = 0; q < NV; ++q) base[q] = sk_v4u_load(p->base[q]);
    for (int64_t r = r0; r < r1; ++r) {
        const float *vals = w->values + r * slots;
        const uint8_t *meta = w->meta + r * w->meta_stride;
        sk_v4f acc[2] = {sk_v4f_splat(0.0f), sk_v4f_splat(0.0f)};
        int64_t s = 0;
        for (; s + KS <= nsteps; s += KS) {
            const uint64_t bits = sk_nm_bits(meta, s * V * b, KS * V * b);
            for (int k = 0; k < KS; ++k)
                win_step(d, base, bits >> (k * V * b), b, x + (s + k) * span, vals + (s + k) * V,
                         acc, NV, NW);
        }
        for (; s < nsteps; ++s)
            win_step(d, base, sk_nm_bits(meta, s * V * b, V * b), b, x + s * span, vals + s * V,
                     acc, NV, NW);
        float a = sk_v4f_hsum(sk_v4f_add(acc[0], acc[1]));
        sk_nm_slots_scalar(w, r, s * V, slots, x, 1, 1, &a);
        y[r * ldy] = a + (bias ? bias[r] : 0.0f);
    }
}

/* x values of the quad of slots whose positions are the low bits of qb; off: the offsets
 * of their groups from xg */
SK_INLINE sk_v4f lane_quad(const float *xg, const int32_t *off, uint64_t qb, int b, uint64_t pm) {
    sk_v4f xs = sk_v4f_splat(0.0f);
    xs = sk_v4f_load_lane(xg + off[0] + (qb & pm), xs, 0);
    xs = sk_v4f_load_lane(xg + off[1] + ((qb >> b) & pm), xs, 1);
    xs = sk_v4f_load_lane(xg + off[2] + ((qb >> 2 * b) & pm), xs, 2);
    xs = sk_v4f_load_lane(xg + off[3] + ((qb >> 3 * b) & pm), xs, 3);
    return xs;
}

static void gemv_lanes(const sk_nm_f32 *w, const sk_nm_gemv_plan *p, int64_t r0, int64_t r1,
                       const float *x, const float *bias, float *y, int64_t ldy) {
    const int b = w->pos_bits, V = p->v, span = p->gs * w->m;
    const uint64_t pm = (UINT64_C(1) << b) - 1;
    const int64_t slots = sk_nm_groups(w) * w->n, nsteps = (w->cols / w->m) / p->gs;
    /* steps per position read; 0: a read per quad (a step's positions exceed 64 bits) */
    const int ks = V * b <= 64 ? 64 / (V * b) : 0;
    for (int64_t r = r0; r < r1; ++r) {
        const float *vals = w->values + r * slots;
        const uint8_t *meta = w->meta + r * w->meta_stride;
        sk_v4f acc = sk_v4f_splat(0.0f);
        for (int64_t s = 0; s < nsteps;) {
            if (ks) {
                const int cnt = nsteps - s < ks ? (int)(nsteps - s) : ks;
                const uint64_t bits = sk_nm_bits(meta, s * V * b, cnt * V * b);
                for (int k = 0; k < cnt; ++k, ++s)
                    for (int q = 0; q < p->nv; ++q) {
                        const uint64_t qb = bits >> ((k * V + 4 * q) * b);
                        const sk_v4f xs = lane_quad(x + s * span, p->off + 4 * q, qb, b, pm);
                        acc = sk_v4f_fma(acc, sk_v4f_load(vals + s * V + 4 * q), xs);
                    }
            } else {
                for (int q = 0; q < p->nv; ++q) {
                    const int64_t j = s * V + 4 * q;
                    const uint64_t qb = sk_nm_bits(meta, j * b, 4 * b);
                    const sk_v4f xs = lane_quad(x + s * span, p->off + 4 * q, qb, b, pm);
                    acc = sk_v4f_fma(acc, sk_v4f_load(vals + j), xs);
                }
                ++s;
            }
        }
        float a = sk_v4f_hsum(acc);
        sk_nm_slots_scalar(w, r, nsteps * V, slots, x, 1, 1, &a);
        y[r * ldy] = a + (bias ? bias[r] : 0.0f);
    }
}

static void gemv_rows(const sk_nm_f32 *w, int64_t r0, int64_t r1, const float *x, const float *bias,
                      float *y, int64_t ldy) {
    sk_nm_gemv_plan p;
    sk_nm_gemv_plan_make(w, &p);
    if (!p.win) {
        gemv_lanes(w, &p, r0, r1, x, bias, y, ldy);
        return;
    }
    quad_decoder d;
    d.p = &p;
    d.shuf = sk_v16u8_load(p.shuf);
    d.shift = sk_v4u_shifts_make(p.shift);
    d.pmask = sk_v4u_splat((1u << w->pos_bits) - 1);
    /* quads per step, window vectors, steps per position read */
    const int nv = p.nv, nw = p.win / 4, ks = 64 / (p.v * w->pos_bits);
    switch (nv * 1000 + nw * 100 + ks) {
    case 1208: gemv_win(w, &d, r0, r1, x, bias, y, ldy, 1, 2, 8); break; /* 2:4 */
    case 1408: gemv_win(w, &d, r0, r1, x, bias, y, ldy, 1, 4, 8); break; /* 1:4 */
    case 3402: gemv_win(w, &d, r0, r1, x, bias, y, ldy, 3, 4, 2); break; /* 3:4 */
    case 1405: gemv_win(w, &d, r0, r1, x, bias, y, ldy, 1, 4, 5); break; /* 2:8 */
    case 1205: gemv_win(w, &d, r0, r1, x, bias, y, ldy, 1, 2, 5); break; /* 4:8 */
    case 1404: gemv_win(w, &d, r0, r1, x, bias, y, ldy, 1, 4, 4); break; /* 4:16 */
    case 2402: gemv_win(w, &d, r0, r1, x, bias, y, ldy, 2, 4, 2); break; /* 8:16 */
    default: gemv_win(w, &d, r0, r1, x, bias, y, ldy, 3, 4, 1); break; /* 6:8, 12:16 */
    }
}

/* ---------------------------------------------------------------- n > 1 */

/* widest tile: half the vector registers as accumulators */
#define SK_NM_TILE_V (SK_V4_REGS / 2)

/* Row r times V vectors of columns, the last one TC (1..3) columns when TC > 0 (lane
 * loads and stores, nothing past them touched). NN, BB: the pattern's n and pos_bits
 * when known at compile time, else 0. */
SK_INLINE void row_tile(const sk_nm_f32 *w, int64_t r, const float *x, int64_t ldx,
                        const float *bias, float *y, const int V, const int TC, const int NN,
                        const int BB) {
    const int N = NN ? NN : w->n, b = BB ? BB : w->pos_bits, M = BB ? 1 << BB : w->m;
    const int64_t G = sk_nm_groups(w), slots = G * N, gfull = w->cols / M;
    const uint64_t pmask = (UINT64_C(1) << b) - 1;
    const int gc = 64 / (N * b); /* groups whose positions fit one 64-bit read */
    const float *vals = w->values + r * slots;
    const uint8_t *meta = w->meta + r * w->meta_stride;
    sk_v4f acc[SK_NM_TILE_V];
#define SK_XLOAD(p, v) \
    (TC && (v) == V - 1 ? sk_v4f_load_partial((p) + 4 * (v), TC) : sk_v4f_load((p) + 4 * (v)))
    const sk_v4f b0 = sk_v4f_splat(bias ? bias[r] : 0.0f);
    for (int v = 0; v < V; ++v) acc[v] = b0;
    for (int64_t g = 0; g < gfull; g += gc) {
        const int cnt = gfull - g < gc ? (int)(gfull - g) : gc;
        uint64_t bits = sk_nm_bits(meta, g * N * b, cnt * N * b);
        for (int gg = 0; gg < cnt; ++gg) {
            const float *xg = x + (g + gg) * M * ldx;
            const float *vg = vals + (g + gg) * N;
            for (int s = 0; s < N; ++s) {
                const int64_t pos = (int64_t)(bits & pmask);
                bits >>= b;
                const sk_v4f wv = sk_v4f_load_splat(vg + s);
                const float *xr = xg + pos * ldx;
                for (int v = 0; v < V; ++v) acc[v] = sk_v4f_fma(acc[v], wv, SK_XLOAD(xr, v));
            }
        }
    }
    for (int64_t j = gfull * N; j < slots; ++j) { /* the padded last group */
        const int64_t col = gfull * M + sk_nm_pos(meta, j, b);
        if (col >= w->cols) continue;
        const sk_v4f wv = sk_v4f_load_splat(vals + j);
        const float *xr = x + col * ldx;
        for (int v = 0; v < V; ++v) acc[v] = sk_v4f_fma(acc[v], wv, SK_XLOAD(xr, v));
    }
#undef SK_XLOAD
    for (int v = 0; v < V; ++v) {
        if (TC && v == V - 1) sk_v4f_store_partial(y + 4 * v, acc[v], TC);
        else sk_v4f_store(y + 4 * v, acc[v]);
    }
}

/* the common patterns (2:4, 1:4, 1:8) get NN, BB */
SK_INLINE void spmm_rows(const sk_nm_f32 *w, int64_t r0, int64_t r1, const float *x, int64_t n,
                         int64_t ldx, const float *bias, float *y, int64_t ldy, const int NN,
                         const int BB) {
    for (int64_t r = r0; r < r1; ++r) {
        float *yrow = y + r * ldy;
        int64_t j = 0;
        for (; j + 4 * SK_NM_TILE_V <= n; j += 4 * SK_NM_TILE_V)
            row_tile(w, r, x + j, ldx, bias, yrow + j, SK_NM_TILE_V, 0, NN, BB);
#if SK_NM_TILE_V >= 16
        if (j + 2 * SK_NM_TILE_V <= n) {
            row_tile(w, r, x + j, ldx, bias, yrow + j, SK_NM_TILE_V / 2, 0, NN, BB);
            j += 2 * SK_NM_TILE_V;
        }
#endif
        if (j + 16 <= n) {
            row_tile(w, r, x + j, ldx, bias, yrow + j, 4, 0, NN, BB);
            j += 16;
        }
        if (j + 8 <= n) {
            row_tile(w, r, x + j, ldx, bias, yrow + j, 2, 0, NN, BB);
            j += 8;
        }
        if (j + 4 <= n) {
            row_tile(w, r, x + j, ldx, bias, yrow + j, 1, 0, NN, BB);
            j += 4;
        }
        switch (n - j) {
        case 1: row_tile(w, r, x + j, ldx, bias, yrow + j, 1, 1, NN, BB); break;
        case 2: row_tile(w, r, x + j, ldx, bias, yrow + j, 1, 2, NN, BB); break;
        case 3: row_tile(w, r, x + j, ldx, bias, yrow + j, 1, 3, NN, BB); break;
        default: break;
        }
    }
}

void SK_NM_FN(const sk_nm_f32 *w, int64_t r0, int64_t r1, const float *x, int64_t n, int64_t ldx,
              const float *bias, float *y, int64_t ldy) {
    if (n == 1 && ldx == 1) {
        gemv_rows(w, r0, r1, x, bias, y, ldy);
        return;
    }
    const int nm = w->n * 100 + w->m;
    if (nm == 204) spmm_rows(w, r0, r1, x, n, ldx, bias, y, ldy, 2, 2);
    else if (nm == 104) spmm_rows(w, r0, r1, x, n, ldx, bias, y, ldy, 1, 2);
    else if (nm == 108) spmm_rows(w, r0, r1, x, n, ldx, bias, y, ldy, 1, 3);
    else spmm_rows(w, r0, r1, x, n, ldx, bias, y, ldy, 0, 0);
}

/* batch 1: quads of slots (a step is whole groups and whole quads) */
const sk_tiling SK_NM_TILING = {
#if SK_NM_TILE_V >= 16
    .n_tiles = {4 * SK_NM_TILE_V, 2 * SK_NM_TILE_V, 4 * 4, 4 * 2, 4},
#else
    .n_tiles = {4 * SK_NM_TILE_V, 4 * 4, 4 * 2, 4},
#endif
    .k_step = 1,
    .k_step1 = 4,
    .row_block = 1,
    .row_block1 = 1,
};

#endif
