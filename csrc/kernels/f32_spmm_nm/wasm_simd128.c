/* WebAssembly SIMD128 variant of the N:M SpMM (no FMA: multiply, then add).
 *   n == 1: the plan of simd128_plan.h; a window of 2 or 4 vectors is picked from with
 *           one i8x16.swizzle per vector, OR-ed (a swizzle index past its 16 bytes
 *           gives 0); the positions of up to 64 bits' worth of steps are read at once.
 *   n  > 1: one row of W at a time, tiles of 32/16/8/4 columns and a 1..3-column tail
 *           of lane loads; each slot broadcasts its weight and does one multiply-add per
 *           vector with the X row its position names. (NEON also has 64-column tiles;
 *           here 16 accumulators would spill on a 16-register x86-64 host.)
 * The same plan as arm_neon.c. */
#include <wasm_simd128.h>

#include "simd128_plan.h"

SK_INLINE v128_t madd(v128_t acc, v128_t a, v128_t b) {
    return wasm_f32x4_add(acc, wasm_f32x4_mul(a, b));
}

SK_INLINE float hsum(v128_t v) {
    return (wasm_f32x4_extract_lane(v, 0) + wasm_f32x4_extract_lane(v, 1)) +
           (wasm_f32x4_extract_lane(v, 2) + wasm_f32x4_extract_lane(v, 3));
}

/* ---------------------------------------------------------------- n == 1 */

typedef struct {
    const sk_nm_gemv_plan *p;
    v128_t shuf;
    v128_t mul;     /* 1 << (8 - shift): SIMD128 has no per-lane shift */
    v128_t pmask;
} quad_decoder;

/* positions of the 4 slots whose bits start at bit 0 of qb */
SK_INLINE v128_t quad_pos(const quad_decoder *d, uint64_t qb) {
    const v128_t two = wasm_i8x16_swizzle(wasm_u64x2_splat(qb), d->shuf);
    return wasm_v128_and(wasm_u32x4_shr(wasm_i32x4_mul(two, d->mul), 8), d->pmask);
}

SK_INLINE v128_t win_pick(const v128_t *xw, v128_t idx, const int NW) {
    v128_t r = wasm_i8x16_swizzle(xw[0], idx);
    for (int i = 1; i < NW; ++i) {
        const v128_t idx_i = wasm_i8x16_sub(idx, wasm_i8x16_splat((int8_t)(16 * i)));
        r = wasm_v128_or(r, wasm_i8x16_swizzle(xw[i], idx_i));
    }
    return r;
}

/* Step s of a row (window plan): bits holds its positions from bit 0. */
SK_INLINE void win_step(const quad_decoder *d, const v128_t *base, uint64_t bits, int b,
                        const float *xg, const float *vp, v128_t *acc, const int NV,
                        const int NW) {
    v128_t xw[4];
    for (int i = 0; i < NW; ++i) xw[i] = wasm_v128_load(xg + 4 * i);
    const v128_t four = wasm_i32x4_splat(0x04040404);
    for (int q = 0; q < NV; ++q) {
        const v128_t pos = quad_pos(d, bits >> (4 * q * b));
        const v128_t idx = wasm_i32x4_add(base[q], wasm_i32x4_mul(pos, four));
        acc[q & 1] = madd(acc[q & 1], wasm_v128_load(vp + 4 * q), win_pick(xw, idx, NW));
    }
}

/* KS: steps per position read (KS * v * pos_bits <= 64) */
SK_INLINE void gemv_win(const sk_nm_f32 *w, const quad_decoder *d, int64_t r0, int64_t r1,
                        const float *x, const float *bias, float *y, int64_t ldy, const int NV,
                        const int NW, const int KS) {
    const sk_nm_gemv_plan *p = d->p;
    const int b = w->pos_bits, V = 4 * NV, span = p->win;
    const int64_t slots = sk_nm_groups(w) * w->n, nsteps = (w->cols / w->m) / p->gs;
    v128_t base[3];
    for (int q = 0; q < NV; ++q) base[q] = wasm_v128_load(p->base[q]);
    for (int64_t r = r0; r < r1; ++r) {
        const float *vals = w->values + r * slots;
        const uint8_t *meta = w->meta + r * w->meta_stride;
        v128_t acc[2] = {wasm_f32x4_splat(0.0f), wasm_f32x4_splat(0.0f)};
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
        float a = hsum(wasm_f32x4_add(acc[0], acc[1]));
        sk_nm_slots_scalar(w, r, s * V, slots, x, 1, 1, &a);
        y[r * ldy] = a + (bias ? bias[r] : 0.0f);
    }
}

/* x values of the quad of slots whose positions are the low bits of qb; off: the offsets
 * of their groups from xg */
SK_INLINE v128_t lane_quad(const float *xg, const int32_t *off, uint64_t qb, int b, uint64_t pm) {
    v128_t xs = wasm_f32x4_splat(0.0f);
    xs = wasm_v128_load32_lane(xg + off[0] + (qb & pm), xs, 0);
    xs = wasm_v128_load32_lane(xg + off[1] + ((qb >> b) & pm), xs, 1);
    xs = wasm_v128_load32_lane(xg + off[2] + ((qb >> 2 * b) & pm), xs, 2);
    xs = wasm_v128_load32_lane(xg + off[3] + ((qb >> 3 * b) & pm), xs, 3);
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
        v128_t acc = wasm_f32x4_splat(0.0f);
        for (int64_t s = 0; s < nsteps;) {
            if (ks) {
                const int cnt = nsteps - s < ks ? (int)(nsteps - s) : ks;
                const uint64_t bits = sk_nm_bits(meta, s * V * b, cnt * V * b);
                for (int k = 0; k < cnt; ++k, ++s)
                    for (int q = 0; q < p->nv; ++q) {
                        const uint64_t qb = bits >> ((k * V + 4 * q) * b);
                        const v128_t xs = lane_quad(x + s * span, p->off + 4 * q, qb, b, pm);
                        acc = madd(acc, wasm_v128_load(vals + s * V + 4 * q), xs);
                    }
            } else {
                for (int q = 0; q < p->nv; ++q) {
                    const int64_t j = s * V + 4 * q;
                    const uint64_t qb = sk_nm_bits(meta, j * b, 4 * b);
                    const v128_t xs = lane_quad(x + s * span, p->off + 4 * q, qb, b, pm);
                    acc = madd(acc, wasm_v128_load(vals + j), xs);
                }
                ++s;
            }
        }
        float a = hsum(acc);
        sk_nm_slots_scalar(w, r, nsteps * V, slots, x, 1, 1, &a);
        y[r * ldy] = a + (bias ? bias[r] : 0.0f);
    }
}

static void gemv_rows(const sk_nm_f32 *w, int64_t r0, int64_t r1, const float *x,
                      const float *bias, float *y, int64_t ldy) {
    sk_nm_gemv_plan p;
    sk_nm_gemv_plan_make(w, &p);
    if (!p.win) {
        gemv_lanes(w, &p, r0, r1, x, bias, y, ldy);
        return;
    }
    quad_decoder d;
    d.p = &p;
    d.shuf = wasm_v128_load(p.shuf);
    d.mul = wasm_i32x4_make(1 << (8 - p.shift[0]), 1 << (8 - p.shift[1]), 1 << (8 - p.shift[2]),
                            1 << (8 - p.shift[3]));
    d.pmask = wasm_i32x4_splat((1 << w->pos_bits) - 1);
    /* quads per step, window vectors, steps per position read */
    const int nv = p.nv, nw = p.win / 4, ks = 64 / (p.v * w->pos_bits);
    switch (nv * 1000 + nw * 100 + ks) {
    case 1208: gemv_win(w, &d, r0, r1, x, bias, y, ldy, 1, 2, 8); break;   /* 2:4 */
    case 1408: gemv_win(w, &d, r0, r1, x, bias, y, ldy, 1, 4, 8); break;   /* 1:4 */
    case 3402: gemv_win(w, &d, r0, r1, x, bias, y, ldy, 3, 4, 2); break;   /* 3:4 */
    case 1405: gemv_win(w, &d, r0, r1, x, bias, y, ldy, 1, 4, 5); break;   /* 2:8 */
    case 1205: gemv_win(w, &d, r0, r1, x, bias, y, ldy, 1, 2, 5); break;   /* 4:8 */
    case 1404: gemv_win(w, &d, r0, r1, x, bias, y, ldy, 1, 4, 4); break;   /* 4:16 */
    case 2402: gemv_win(w, &d, r0, r1, x, bias, y, ldy, 2, 4, 2); break;   /* 8:16 */
    default: gemv_win(w, &d, r0, r1, x, bias, y, ldy, 3, 4, 1); break;     /* 6:8, 12:16 */
    }
}

/* ---------------------------------------------------------------- n > 1 */

/* Tail of TC (1..3) columns: lane loads and stores, nothing past them touched. */
SK_INLINE v128_t load_tail(const float *p, const int TC) {
    if (TC == 1) return wasm_v128_load32_zero(p);
    const v128_t v = wasm_v128_load64_zero(p);
    return TC == 2 ? v : wasm_v128_load32_lane(p + 2, v, 2);
}

SK_INLINE void store_tail(float *p, v128_t v, const int TC) {
    if (TC == 1) { wasm_v128_store32_lane(p, v, 0); return; }
    wasm_v128_store64_lane(p, v, 0);
    if (TC == 3) wasm_v128_store32_lane(p + 2, v, 2);
}

/* Row r times V vectors of columns, the last one TC columns when TC > 0. NN, BB: the
 * pattern's n and pos_bits when known at compile time, else 0. */
SK_INLINE void row_tile(const sk_nm_f32 *w, int64_t r, const float *x, int64_t ldx,
                        const float *bias, float *y, const int V, const int TC, const int NN,
                        const int BB) {
    const int N = NN ? NN : w->n, b = BB ? BB : w->pos_bits, M = BB ? 1 << BB : w->m;
    const int64_t G = sk_nm_groups(w), slots = G * N, gfull = w->cols / M;
    const uint64_t pmask = (UINT64_C(1) << b) - 1;
    const int gc = 64 / (N * b);   /* groups whose positions fit one 64-bit read */
    const float *vals = w->values + r * slots;
    const uint8_t *meta = w->meta + r * w->meta_stride;
    v128_t acc[8];
#define SK_XLOAD(p, v) \
    (TC && (v) == V - 1 ? load_tail((p) + 4 * (v), TC) : wasm_v128_load((p) + 4 * (v)))
    const v128_t b0 = wasm_f32x4_splat(bias ? bias[r] : 0.0f);
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
                const v128_t wv = wasm_v128_load32_splat(vg + s);
                const float *xr = xg + pos * ldx;
                for (int v = 0; v < V; ++v) acc[v] = madd(acc[v], wv, SK_XLOAD(xr, v));
            }
        }
    }
    for (int64_t j = gfull * N; j < slots; ++j) {   /* the padded last group */
        const int64_t col = gfull * M + sk_nm_pos(meta, j, b);
        if (col >= w->cols) continue;
        const v128_t wv = wasm_v128_load32_splat(vals + j);
        const float *xr = x + col * ldx;
        for (int v = 0; v < V; ++v) acc[v] = madd(acc[v], wv, SK_XLOAD(xr, v));
    }
#undef SK_XLOAD
    for (int v = 0; v < V; ++v) {
        if (TC && v == V - 1) store_tail(y + 4 * v, acc[v], TC);
        else wasm_v128_store(y + 4 * v, acc[v]);
    }
}

/* the common patterns (2:4, 1:4, 1:8) get NN, BB */
SK_INLINE void spmm_rows(const sk_nm_f32 *w, int64_t r0, int64_t r1, const float *x, int64_t n,
                         int64_t ldx, const float *bias, float *y, int64_t ldy, const int NN,
                         const int BB) {
    for (int64_t r = r0; r < r1; ++r) {
        float *yrow = y + r * ldy;
        int64_t j = 0;
        for (; j + 32 <= n; j += 32) row_tile(w, r, x + j, ldx, bias, yrow + j, 8, 0, NN, BB);
        if (j + 16 <= n) { row_tile(w, r, x + j, ldx, bias, yrow + j, 4, 0, NN, BB); j += 16; }
        if (j + 8 <= n) { row_tile(w, r, x + j, ldx, bias, yrow + j, 2, 0, NN, BB); j += 8; }
        if (j + 4 <= n) { row_tile(w, r, x + j, ldx, bias, yrow + j, 1, 0, NN, BB); j += 4; }
        switch (n - j) {
        case 1: row_tile(w, r, x + j, ldx, bias, yrow + j, 1, 1, NN, BB); break;
        case 2: row_tile(w, r, x + j, ldx, bias, yrow + j, 1, 2, NN, BB); break;
        case 3: row_tile(w, r, x + j, ldx, bias, yrow + j, 1, 3, NN, BB); break;
        default: break;
        }
    }
}

void sk_f32_spmm_nm_wasmsimd(const sk_nm_f32 *w, int64_t r0, int64_t r1, const float *x,
                             int64_t n, int64_t ldx, const float *bias, float *y, int64_t ldy) {
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
