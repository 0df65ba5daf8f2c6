/* AVX2 + FMA variant of the N:M SpMM: the x86 body (x86_body.h) with 8-wide vectors,
 * and its batch-1 step.
 *
 * n == 1 (GEMV): a step is 8 slots (GS = 8 / N whole groups). The X span of its groups
 *   is loaded as 8-float windows and one vpermps per window picks each slot's x (index =
 *   group offset + the slot's position, decoded from the bit stream with one broadcast and
 *   a variable shift), blended by the window each lane reads: 2:4 two windows, 1:4 four,
 *   1:8 eight (still faster than assembling the 8 x from scalar loads as the unstructured
 *   batch-1 kernel does), 1:16 sixteen.
 * n > 1: the body's tiles, 3 rows x 32, 16 or 8 columns and a masked tail (3 x 32: 12
 *   accumulators, faster than 4 x 16; 4 x 32 spills); four weights per 16-byte load with
 *   in-lane splats. */
#define SK_X86_WIDTH 256
#include "x86_vec.h"
#include "nm_internal.h"

/* ---------------------------------------------------------------- n == 1 */

#define SK_NM_GEMV_LANES 8 /* slots per step: one ymm of values */

typedef struct {
    sk_nm_steps st; /* 8 lanes, windows of 8 floats, 4-byte position reads */
    __m256i base, shift, pmask, vmask, wmask[16];
} gemv_plan;

static void make_plan(const sk_nm_f32 *w, gemv_plan *p) {
    const int N = w->n, M = w->m, b = w->pos_bits;
    p->st = sk_nm_step_plan(w, SK_NM_GEMV_LANES, 8, 4);
    int32_t base[8], shift[8], vmask[8], wmask[16][8];
    for (int i = 0; i < 8; ++i) {
        base[i] = N ? (i / N) * M : 0;
        shift[i] = i * b;
        vmask[i] = i < p->st.v ? -1 : 0;
        for (int wi = 0; wi < 16; ++wi) wmask[wi][i] = base[i] / 8 == wi ? -1 : 0;
    }
    p->base = _mm256_loadu_si256((const __m256i *)base);
    p->shift = _mm256_loadu_si256((const __m256i *)shift);
    p->pmask = _mm256_set1_epi32((1 << b) - 1);
    p->vmask = _mm256_loadu_si256((const __m256i *)vmask);
    for (int wi = 0; wi < 16; ++wi) p->wmask[wi] = _mm256_loadu_si256((const __m256i *)wmask[wi]);
}

/* lane i of a vector that is -1 where COND(i) */
#define SK_NM_LANES(COND)                                                                     \
    _mm256_setr_epi32(-(COND(0)), -(COND(1)), -(COND(2)), -(COND(3)), -(COND(4)), -(COND(5)), \
                      -(COND(6)), -(COND(7)))

/* acc + the step's slots starting at slot j0 (X of its first group at xg). WORD: the
 * positions come from one 4-byte read. DYN (M = 16): a group spans two windows, so each
 * lane's window follows from its position; else it is fixed per lane. NN, BB: the
 * pattern's N and position bits when known at compile time (constant indices and masks,
 * which the compiler turns into immediate blends), else 0 (the plan's vectors). */
SK_INLINE sk_v8f gemv_step(const gemv_plan *p, const uint8_t *meta, int64_t j0, int b,
                           const float *xg, const float *vals, sk_v8f acc, const int NWIN,
                           const int FULL, const int WORD, const int DYN, const int NN,
                           const int BB) {
    uint32_t bits;
    if (WORD) memcpy(&bits, meta + (j0 >> 3) * b, 4);
    else bits = (uint32_t)sk_nm_bits(meta, j0 * b, p->st.v * b);
#define SK_NM_BASE(i) (((i) / NN) << BB)
#define SK_NM_SHIFT(i) ((i) * BB)
    const __m256i base =
        NN ? _mm256_setr_epi32(SK_NM_BASE(0), SK_NM_BASE(1), SK_NM_BASE(2), SK_NM_BASE(3),
                               SK_NM_BASE(4), SK_NM_BASE(5), SK_NM_BASE(6), SK_NM_BASE(7))
           : p->base;
    const __m256i shift =
        NN ? _mm256_setr_epi32(SK_NM_SHIFT(0), SK_NM_SHIFT(1), SK_NM_SHIFT(2), SK_NM_SHIFT(3),
                               SK_NM_SHIFT(4), SK_NM_SHIFT(5), SK_NM_SHIFT(6), SK_NM_SHIFT(7))
           : p->shift;
    const __m256i pmask = NN ? _mm256_set1_epi32((1 << BB) - 1) : p->pmask;
    const __m256i idx = _mm256_add_epi32(
        _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32((int)bits), shift), pmask), base);
    __m256 xs = _mm256_permutevar8x32_ps(_mm256_loadu_ps(xg), idx);
    const __m256i win = DYN ? _mm256_srli_epi32(idx, 3) : _mm256_setzero_si256();
    for (int wi = 1; wi < NWIN; ++wi) {
#define SK_NM_IN_WI(i) (SK_NM_BASE(i) / 8 == wi)
        const __m256i m = DYN  ? _mm256_cmpeq_epi32(win, _mm256_set1_epi32(wi))
                          : NN ? SK_NM_LANES(SK_NM_IN_WI)
                               : p->wmask[wi];
#undef SK_NM_IN_WI
        const __m256 t = _mm256_permutevar8x32_ps(_mm256_loadu_ps(xg + 8 * wi), idx);
        xs = _mm256_blendv_ps(xs, t, _mm256_castsi256_ps(m));
    }
#undef SK_NM_BASE
#undef SK_NM_SHIFT
    if (FULL) return sk_v8f_fma(acc, sk_v8f_load(vals + j0), xs);
    return sk_v8f_fma(acc, sk_v8f_load_mask(vals + j0, p->vmask), sk_v8f_and_mask(xs, p->vmask));
}

#include "x86_body.h"

static void gemv_rows(const sk_nm_f32 *w, int64_t r0, int64_t r1, const float *x, const float *bias,
                      float *y, int64_t ldy) {
    gemv_plan p;
    make_plan(w, &p);
    const int full = p.st.v == 8, dyn = w->m == 16, nm = w->n * 100 + w->m;
    if (nm == 204) gemv_rows_t(w, &p, r0, r1, x, bias, y, ldy, 2, 1, 0, 2, 2);
    else if (nm == 104) gemv_rows_t(w, &p, r0, r1, x, bias, y, ldy, 4, 1, 0, 1, 2);
    else if (nm == 108) gemv_rows_t(w, &p, r0, r1, x, bias, y, ldy, 8, 1, 0, 1, 3);
    else if (p.st.nwin == 1) gemv_rows_t(w, &p, r0, r1, x, bias, y, ldy, 1, full, 0, 0, 0);
    else if (p.st.nwin == 2) gemv_rows_t(w, &p, r0, r1, x, bias, y, ldy, 2, full, dyn, 0, 0);
    else if (p.st.nwin == 4) gemv_rows_t(w, &p, r0, r1, x, bias, y, ldy, 4, full, dyn, 0, 0);
    else
        gemv_rows_t(w, &p, r0, r1, x, bias, y, ldy, p.st.nwin, full, dyn, 0,
                    0); /* 2:16, 1:16; N > 8: no steps */
}
