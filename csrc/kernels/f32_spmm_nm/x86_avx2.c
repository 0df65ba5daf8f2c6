/* AVX2 + FMA variant of the N:M SpMM.
 *
 * n == 1 (GEMV): a step is 8 slots (GS = 8 / N whole groups). The X span of its groups
 *   is loaded as 8-float windows and one vpermps per window picks each slot's x (index =
 *   group offset + the slot's position, decoded from the bit stream with one broadcast and
 *   a variable shift), blended by the window each lane reads: 2:4 two windows, 1:4 four,
 *   1:8 eight (still faster than assembling the 8 x from scalar loads as x86_gemv.h does:
 *   cold 4096^2 1:8 on Zen 5, 450 vs 470-600 us), 1:16 sixteen. The weights are
 *   prefetched as in x86_avx512.c (cold 2:4: 1549 -> 952 us).
 * n > 1: the tiles of x86_spmm_body.h, 3 rows x 32, 16 or 8 columns and a masked tail
 *   (3 x 32: 12 accumulators; 4 x 16 ran 2:4 4096^2 n=64 at 15.8 ms on Zen 5, 3 x 32 at
 *   13.0 ms, 2 x 32 about the same, 4 x 32 spills; four weights per 16-byte load with
 *   in-lane splats instead of a broadcast load each: 12.0 ms). */
#include <immintrin.h>

#include "nm_internal.h"

/* ---------------------------------------------------------------- n == 1 */

typedef struct {
    sk_nm_steps st;    /* 8 lanes, windows of 8 floats, 4-byte position reads */
    __m256i base, shift, pmask, vmask, wmask[16];
} gemv_plan;

static void make_plan(const sk_nm_f32 *w, gemv_plan *p) {
    const int N = w->n, M = w->m, b = w->pos_bits;
    p->st = sk_nm_step_plan(w, 8, 8, 4);
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
#define SK_NM_LANES(COND)                                                              \
    _mm256_setr_epi32(-(COND(0)), -(COND(1)), -(COND(2)), -(COND(3)), -(COND(4)),      \
                      -(COND(5)), -(COND(6)), -(COND(7)))

/* acc + the step's slots starting at slot j0 (X of its first group at xg). WORD: the
 * positions come from one 4-byte read. DYN (M = 16): a group spans two windows, so each
 * lane's window follows from its position; else it is fixed per lane. NN, BB: the
 * pattern's N and position bits when known at compile time (constant indices and masks,
 * which the compiler turns into immediate blends), else 0 (the plan's vectors). */
SK_INLINE __m256 window_step(const gemv_plan *p, const uint8_t *meta, int64_t j0, int b,
                             const float *xg, const float *vals, __m256 acc, const int NWIN,
                             const int FULL, const int WORD, const int DYN, const int NN,
                             const int BB) {
    uint32_t bits;
    if (WORD) memcpy(&bits, meta + (j0 >> 3) * b, 4);
    else bits = (uint32_t)sk_nm_bits(meta, j0 * b, p->st.v * b);
#define SK_NM_BASE(i) (((i) / NN) << BB)
#define SK_NM_SHIFT(i) ((i) * BB)
    const __m256i base = NN ? _mm256_setr_epi32(SK_NM_BASE(0), SK_NM_BASE(1), SK_NM_BASE(2), SK_NM_BASE(3),
                                                 SK_NM_BASE(4), SK_NM_BASE(5), SK_NM_BASE(6), SK_NM_BASE(7))
                            : p->base;
    const __m256i shift = NN ? _mm256_setr_epi32(SK_NM_SHIFT(0), SK_NM_SHIFT(1), SK_NM_SHIFT(2), SK_NM_SHIFT(3),
                                                  SK_NM_SHIFT(4), SK_NM_SHIFT(5), SK_NM_SHIFT(6), SK_NM_SHIFT(7))
                             : p->shift;
    const __m256i pmask = NN ? _mm256_set1_epi32((1 << BB) - 1) : p->pmask;
    const __m256i idx = _mm256_add_epi32(
        _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32((int)bits), shift), pmask), base);
    __m256 xs = _mm256_permutevar8x32_ps(_mm256_loadu_ps(xg), idx);
    const __m256i win = DYN ? _mm256_srli_epi32(idx, 3) : _mm256_setzero_si256();
    for (int wi = 1; wi < NWIN; ++wi) {
#define SK_NM_IN_WI(i) (SK_NM_BASE(i) / 8 == wi)
        const __m256i m = DYN ? _mm256_cmpeq_epi32(win, _mm256_set1_epi32(wi))
                        : NN  ? SK_NM_LANES(SK_NM_IN_WI)
                              : p->wmask[wi];
#undef SK_NM_IN_WI
        const __m256 t = _mm256_permutevar8x32_ps(_mm256_loadu_ps(xg + 8 * wi), idx);
        xs = _mm256_blendv_ps(xs, t, _mm256_castsi256_ps(m));
    }
#undef SK_NM_BASE
#undef SK_NM_SHIFT
    if (FULL) return _mm256_fmadd_ps(_mm256_loadu_ps(vals + j0), xs, acc);
    const __m256 wv = _mm256_maskload_ps(vals + j0, p->vmask);
    return _mm256_fmadd_ps(wv, _mm256_and_ps(xs, _mm256_castsi256_ps(p->vmask)), acc);
}

SK_INLINE float hsum(__m256 a) {
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}

SK_INLINE void gemv_rows_t(const sk_nm_f32 *w, const gemv_plan *p, int64_t r0, int64_t r1,
                           const float *x, const float *bias, float *y, int64_t ldy,
                           const int NWIN, const int FULL, const int DYN, const int NN,
                           const int BB) {
    const int64_t slots = sk_nm_groups(w) * w->n;
    const int M = w->m, N = w->n, b = w->pos_bits, gs = p->st.gs;
    const int64_t nsteps = p->st.nsteps, nword = p->st.nword;
    for (int64_t r = r0; r < r1; ++r) {
        const float *vals = w->values + r * slots;
        const uint8_t *meta = w->meta + r * w->meta_stride;
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
        int64_t s = 0;
        for (; s + 2 <= nword; s += 2) {
            const int64_t g0 = s * gs;
            _mm_prefetch((const char *)(vals + g0 * N) + SK_NM_PF_DIST, _MM_HINT_T0);
            a0 = window_step(p, meta, g0 * N, b, x + g0 * M, vals, a0, NWIN, FULL, 1, DYN, NN, BB);
            a1 = window_step(p, meta, (g0 + gs) * N, b, x + (g0 + gs) * M, vals, a1, NWIN, FULL, 1, DYN, NN, BB);
        }
        for (; s < nsteps; ++s) {
            const int64_t g0 = s * gs;
            a0 = window_step(p, meta, g0 * N, b, x + g0 * M, vals, a0, NWIN, FULL, 0, DYN, NN, BB);
        }
        float acc = hsum(_mm256_add_ps(a0, a1));
        sk_nm_slots_scalar(w, r, s * gs * N, slots, x, 1, 1, &acc);
        y[r * ldy] = acc + (bias ? bias[r] : 0.0f);
    }
}

static void gemv_rows(const sk_nm_f32 *w, int64_t r0, int64_t r1, const float *x,
                      const float *bias, float *y, int64_t ldy) {
    gemv_plan p;
    make_plan(w, &p);
    const int full = p.st.v == 8, dyn = w->m == 16, nm = w->n * 100 + w->m;
    if (nm == 204) gemv_rows_t(w, &p, r0, r1, x, bias, y, ldy, 2, 1, 0, 2, 2);
    else if (nm == 104) gemv_rows_t(w, &p, r0, r1, x, bias, y, ldy, 4, 1, 0, 1, 2);
    else if (nm == 108) gemv_rows_t(w, &p, r0, r1, x, bias, y, ldy, 8, 1, 0, 1, 3);
    else if (p.st.nwin == 1) gemv_rows_t(w, &p, r0, r1, x, bias, y, ldy, 1, full, 0, 0, 0);
    else if (p.st.nwin == 2) gemv_rows_t(w, &p, r0, r1, x, bias, y, ldy, 2, full, dyn, 0, 0);
    else if (p.st.nwin == 4) gemv_rows_t(w, &p, r0, r1, x, bias, y, ldy, 4, full, dyn, 0, 0);
    else gemv_rows_t(w, &p, r0, r1, x, bias, y, ldy, p.st.nwin, full, dyn, 0, 0);  /* 2:16, 1:16; N > 8: no steps */
}

/* ---------------------------------------------------------------- n > 1 */

#define SK_NM_VEC __m256
#define SK_NM_VW 8
#define SK_NM_TAIL __m256i
#define SK_NM_LOAD(p) _mm256_loadu_ps(p)
#define SK_NM_LOAD_TAIL(p, tail) _mm256_maskload_ps(p, tail)
#define SK_NM_STORE(p, v) _mm256_storeu_ps(p, v)
#define SK_NM_STORE_TAIL(p, tail, v) _mm256_maskstore_ps(p, tail, v)
#define SK_NM_SET1(f) _mm256_set1_ps(f)
#define SK_NM_FMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define SK_NM_TAIL_MASK(k) _mm256_cmpgt_epi32(_mm256_set1_epi32(k), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
#define SK_NM_NO_TAIL _mm256_setzero_si256()
#define SK_NM_BCAST4(p) _mm256_broadcast_ps((const __m128 *)(p))
#define SK_NM_SPLAT(v, imm) _mm256_permute_ps(v, imm)
#define SK_NM_ROWS(V) ((V) == 1 ? 8 : 3)
#include "x86_spmm_body.h"

void sk_f32_spmm_nm_avx2(const sk_nm_f32 *w, int64_t r0, int64_t r1, const float *x, int64_t n,
                         int64_t ldx, const float *bias, float *y, int64_t ldy) {
    if (n == 1 && ldx == 1) {
        gemv_rows(w, r0, r1, x, bias, y, ldy);
        return;
    }
    spmm_rows(w, r0, r1, x, n, ldx, bias, y, ldy);
}
