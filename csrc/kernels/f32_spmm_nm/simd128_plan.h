/* The batch-1 plan of the 128-bit SIMD kernel (simd128_body.h: arm_neon.c, wasm_simd128.c).
 *
 * A step covers gs whole groups, gs the smallest of 1, 2, 4 that makes its v = gs * n
 * slots whole quads (vectors of 4). Slot positions are decoded a quad at a time from
 * the low 4 * pos_bits bits of a 64-bit word: each 32-bit lane takes the two bytes that
 * hold its position, shifts and masks.
 *   win > 0 (the step's X span, gs * m floats, fits 16): the span is loaded as win / 4
 *           vectors and each quad's x values are picked from it by byte table lookups,
 *           index byte t of lane l = 4 * (base of the slot's group + position) + t.
 *   win == 0 (1:8, 1:16, ...: few slots per X value): one lane load per slot at its
 *           group's offset in the step + its position. */
#ifndef SK_NM_SIMD128_PLAN_H
#define SK_NM_SIMD128_PLAN_H

#include "nm_internal.h"

#define SK_NM_MAX_STEP_SLOTS 60 /* 4 groups of 15 */

typedef struct {
    int gs, v, nv, win;
    uint8_t shuf[16];
    int32_t shift[4];
    uint32_t base[3][4]; /* win > 0: per quad of the step */
    int32_t off[SK_NM_MAX_STEP_SLOTS]; /* win == 0: per slot of the step */
} sk_nm_gemv_plan;

SK_INLINE void sk_nm_gemv_plan_make(const sk_nm_f32 *w, sk_nm_gemv_plan *p) {
    const int N = w->n, M = w->m, b = w->pos_bits;
    p->gs = N % 4 == 0 ? 1 : N % 2 == 0 ? 2 : 4;
    p->v = p->gs * N;
    p->nv = p->v / 4;
    p->win = p->gs * M <= 16 ? p->gs * M : 0;
    for (int l = 0; l < 4; ++l) {
        const int bit = l * b;
        for (int t = 0; t < 4; ++t) p->shuf[4 * l + t] = t < 2 ? (uint8_t)(bit / 8 + t) : 0xff;
        p->shift[l] = bit % 8;
    }
    for (int i = 0; i < p->v; ++i) {
        const int goff = (i / N) * M;
        p->off[i] = goff;
        if (p->win) p->base[i / 4][i % 4] = (uint32_t)(4 * goff) * 0x01010101u + 0x03020100u;
    }
}

#endif
