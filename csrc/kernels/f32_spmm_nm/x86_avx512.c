/* AVX-512 (F, CD, BW, DQ, VL; with AVX2 + FMA + F16C) variant of the N:M SpMM: the x86
 * body (x86_body.h) with 16-wide vectors, its batch-1 step, the small-n kernel and the
 * assembly tile.
 *
 * n == 1 (GEMV): no gathers. A step covers GS = 16 / N whole groups (V = GS * N <= 16
 *   slots, one vector of values). The X span of those groups, GS * M floats, is loaded
 *   as 32-float windows; one vpermt2ps per window picks each slot's x from its group
 *   (index = group offset within the window + the slot's position, decoded from the
 *   bit stream with one 8-byte read, a byte shuffle and a variable shift), and one FMA
 *   per step. 2:4 is one window (32 x, 8 groups, 16 slots) per step, 1:4 two, 1:8 four.
 * small n (sk_f32_spmm_nm_avx512_xt, 2 <= n <= 4 or 8 by pattern, see the operator): the
 *   same plan on X transposed, 2 rows at a time; each step decodes positions and loads
 *   values once and then permutes and multiplies every column's X windows.
 * larger n (SpMM): the body's tiles, 64-column tiles, then one tile of 16-64 columns
 *   with its last vector masked, 4 rows (8 for one-vector tiles); 64-column tiles of 2:4,
 *   1:4 and 1:8 run nm_tile64 (inline assembly, load-bound). The operator hands these
 *   kernels 64-byte aligned X rows (split loads cost 1.6x). */
#define SK_X86_WIDTH 512
#include "x86_vec.h"
#include "nm_internal.h"
#include "x86_asm.h"

/* ---------------------------------------------------------------- n == 1 */

#define SK_NM_GEMV_LANES 16 /* slots per step: one zmm of values */

typedef struct {
    sk_nm_steps st; /* 16 lanes, windows of 32 floats, 8-byte position reads */
    __mmask16 vmask, wmask[8];
    __m512i idxbase, shuf, shift, pmask;
} gemv_plan;

static void make_plan(const sk_nm_f32 *w, gemv_plan *p) {
    const int N = w->n, M = w->m, b = w->pos_bits;
    p->st = sk_nm_step_plan(w, SK_NM_GEMV_LANES, 32, 8);
    int32_t idxbase[16], shift[16];
    uint8_t shuf[64];
    for (int w8 = 0; w8 < 8; ++w8) p->wmask[w8] = 0;
    p->vmask = 0;
    for (int i = 0; i < 16; ++i) {
        idxbase[i] = 0;
        shift[i] = 0;
        for (int t = 0; t < 4; ++t) shuf[4 * i + t] = 0x80;
        if (i >= p->st.v) continue;
        const int base = (i / N) * M;
        idxbase[i] = base % 32;
        p->wmask[base / 32] |= (__mmask16)(1u << i);
        p->vmask |= (__mmask16)(1u << i);
        const int bit = i * b;
        shift[i] = bit % 8;
        for (int t = 0; t < 4; ++t)
            shuf[4 * i + t] =
                (uint8_t)(bit / 8 + t); /* bytes of the 64-bit word, repeated per 128-bit lane */
    }
    p->idxbase = _mm512_loadu_si512(idxbase);
    p->shift = _mm512_loadu_si512(shift);
    p->shuf = _mm512_loadu_si512(shuf);
    p->pmask = _mm512_set1_epi32((1 << b) - 1);
}

SK_INLINE sk_v16f gemv_step(const gemv_plan *p, const uint8_t *meta, int64_t j0, int b,
                            const float *xg, const float *vals, sk_v16f acc, const int NWIN,
                            const int FULL, const int WORD, const int DYN, const int NN,
                            const int BB) {
    /* a full step starts on a byte (16 * b bits per step): one unaligned 8-byte read
     * when it stays inside the row (WORD), else the exact read */
    uint64_t bits;
    if (FULL && WORD) memcpy(&bits, meta + ((j0 * b) >> 3), 8);
    else bits = sk_nm_bits(meta, j0 * b, p->st.v * b);
    const __m512i word = _mm512_set1_epi64((long long)bits);
    const __m512i pos =
        _mm512_and_si512(_mm512_srlv_epi32(_mm512_shuffle_epi8(word, p->shuf), p->shift), p->pmask);
    const __m512i idx = _mm512_add_epi32(pos, p->idxbase);
    __m512 xs;
    if (NWIN == 1) {
        xs = _mm512_permutex2var_ps(_mm512_loadu_ps(xg), idx, _mm512_loadu_ps(xg + 16));
    } else {
        xs = _mm512_setzero_ps();
        for (int wi = 0; wi < NWIN; ++wi) {
            const __m512 t = _mm512_permutex2var_ps(_mm512_loadu_ps(xg + 32 * wi), idx,
                                                    _mm512_loadu_ps(xg + 32 * wi + 16));
            xs = _mm512_mask_blend_ps(p->wmask[wi], xs, t);
        }
    }
    if (FULL) return sk_v16f_fma(acc, sk_v16f_load(vals + j0), xs);
    const __m512 wv = _mm512_maskz_loadu_ps(p->vmask, vals + j0);
    return _mm512_mask3_fmadd_ps(wv, xs, acc, p->vmask);
}

/* ------------------------------------------------- small n, X transposed */

/* The batch-1 plan run for NC columns at once on Xt[NC][ldxt] (X transposed): each
 * step decodes the positions and loads the values once and then permutes and
 * multiplies each column's X windows. */
SK_INLINE void xt_rows_t(const sk_nm_f32 *w, const gemv_plan *p, int64_t r0, int64_t r1,
                         const float *xt, int64_t ldxt, const float *bias, float *y, int64_t ldy,
                         const int NC, const int NWIN, const int FULL, const int R) {
    /* R rows at a time share each column's X window loads (X is L2-resident) */
    const int64_t slots = sk_nm_groups(w) * w->n;
    const int M = w->m, N = w->n, b = w->pos_bits, gs = p->st.gs;
    const int64_t nsteps = p->st.nsteps, nword = p->st.nword;
    for (int64_t r = r0; r + R <= r1; r += R) {
        const float *vals[2];
        const uint8_t *meta[2];
        __m512 acc[2][8];
        for (int u = 0; u < R; ++u) {
            vals[u] = w->values + (r + u) * slots;
            meta[u] = w->meta + (r + u) * w->meta_stride;
            for (int c = 0; c < NC; ++c) acc[u][c] = _mm512_setzero_ps();
        }
        int64_t s = 0;
        for (; s < nsteps; ++s) {
            const int64_t g0 = s * gs, j0 = g0 * N;
            __m512i idx[2];
            __m512 wv[2];
            for (int u = 0; u < R; ++u) {
                uint64_t bits;
                if (FULL && s < nword) memcpy(&bits, meta[u] + ((j0 * b) >> 3), 8);
                else bits = sk_nm_bits(meta[u], j0 * b, p->st.v * b);
                _mm_prefetch((const char *)(vals[u] + j0) + SK_NM_PF_DIST, _MM_HINT_T0);
                const __m512i word = _mm512_set1_epi64((long long)bits);
                idx[u] = _mm512_add_epi32(
                    _mm512_and_si512(
                        _mm512_srlv_epi32(_mm512_shuffle_epi8(word, p->shuf), p->shift), p->pmask),
                    p->idxbase);
                wv[u] = FULL ? _mm512_loadu_ps(vals[u] + j0)
                             : _mm512_maskz_loadu_ps(p->vmask, vals[u] + j0);
            }
            for (int c = 0; c < NC; ++c) {
                const float *xg = xt + c * ldxt + g0 * M;
                if (NWIN == 1) {
                    const __m512 xa = _mm512_loadu_ps(xg), xb = _mm512_loadu_ps(xg + 16);
                    for (int u = 0; u < R; ++u) {
                        const __m512 xs = _mm512_permutex2var_ps(xa, idx[u], xb);
                        if (FULL) acc[u][c] = _mm512_fmadd_ps(wv[u], xs, acc[u][c]);
                        else acc[u][c] = _mm512_mask3_fmadd_ps(wv[u], xs, acc[u][c], p->vmask);
                    }
                } else {
                    __m512 xs[2];
                    for (int u = 0; u < R; ++u) xs[u] = _mm512_setzero_ps();
                    for (int wi = 0; wi < NWIN; ++wi) {
                        const __m512 xa = _mm512_loadu_ps(xg + 32 * wi),
                                     xb = _mm512_loadu_ps(xg + 32 * wi + 16);
                        for (int u = 0; u < R; ++u)
                            xs[u] = _mm512_mask_blend_ps(p->wmask[wi], xs[u],
                                                         _mm512_permutex2var_ps(xa, idx[u], xb));
                    }
                    for (int u = 0; u < R; ++u) {
                        if (FULL) acc[u][c] = _mm512_fmadd_ps(wv[u], xs[u], acc[u][c]);
                        else acc[u][c] = _mm512_mask3_fmadd_ps(wv[u], xs[u], acc[u][c], p->vmask);
                    }
                }
            }
        }
        for (int u = 0; u < R; ++u) {
            const float b0 = bias ? bias[r + u] : 0.0f;
            for (int c = 0; c < NC; ++c) {
                float a = _mm512_reduce_add_ps(acc[u][c]);
                sk_nm_slots_scalar(w, r + u, s * gs * N, slots, xt + c * ldxt, 1, 1, &a);
                y[(r + u) * ldy + c] = a + b0;
            }
        }
    }
}

SK_INLINE void xt_rows(const sk_nm_f32 *w, const gemv_plan *p, int64_t r0, int64_t r1,
                       const float *xt, int64_t ldxt, const float *bias, float *y, int64_t ldy,
                       const int NC, const int NWIN, const int FULL) {
    const int64_t rm = r0 + (r1 - r0) / 2 * 2;
    xt_rows_t(w, p, r0, rm, xt, ldxt, bias, y, ldy, NC, NWIN, FULL, 2);
    xt_rows_t(w, p, rm, r1, xt, ldxt, bias, y, ldy, NC, NWIN, FULL, 1);
}

SK_INLINE void xt_cols(const sk_nm_f32 *w, const gemv_plan *p, int64_t r0, int64_t r1,
                       const float *xt, int64_t ldxt, int64_t n, const float *bias, float *y,
                       int64_t ldy, const int NWIN, const int FULL) {
    int64_t c = 0;
    for (; c + 8 <= n; c += 8)
        xt_rows(w, p, r0, r1, xt + c * ldxt, ldxt, bias, y + c, ldy, 8, NWIN, FULL);
    if (c + 4 <= n) {
        xt_rows(w, p, r0, r1, xt + c * ldxt, ldxt, bias, y + c, ldy, 4, NWIN, FULL);
        c += 4;
    }
    if (c + 2 <= n) {
        xt_rows(w, p, r0, r1, xt + c * ldxt, ldxt, bias, y + c, ldy, 2, NWIN, FULL);
        c += 2;
    }
    if (c < n) xt_rows(w, p, r0, r1, xt + c * ldxt, ldxt, bias, y + c, ldy, 1, NWIN, FULL);
}

void sk_f32_spmm_nm_avx512_xt(const sk_nm_f32 *w, int64_t r0, int64_t r1, const float *xt,
                              int64_t n, int64_t ldxt, const float *bias, float *y, int64_t ldy) {
    gemv_plan p;
    make_plan(w, &p);
    const int full = p.st.v == 16;
    if (full && p.st.nwin == 1) xt_cols(w, &p, r0, r1, xt, ldxt, n, bias, y, ldy, 1, 1);
    else if (full && p.st.nwin == 2) xt_cols(w, &p, r0, r1, xt, ldxt, n, bias, y, ldy, 2, 1);
    else if (full && p.st.nwin == 4) xt_cols(w, &p, r0, r1, xt, ldxt, n, bias, y, ldy, 4, 1);
    else if (full) xt_cols(w, &p, r0, r1, xt, ldxt, n, bias, y, ldy, p.st.nwin, 1);
    else xt_cols(w, &p, r0, r1, xt, ldxt, n, bias, y, ldy, p.st.nwin, 0);
}

/* ---------------------------------------------------------------- n > 1 */

#if defined(__GNUC__)
SK_INLINE int nm_tile4(const sk_nm_f32 *w, int64_t r, int64_t g0, int64_t g1, int first,
                       const float *x, int64_t ldx, const float *bias, float *y, int64_t ldy,
                       const int V, const int MASKED, const int NN, const int BB);
#define SK_NM_OWN_TILE nm_tile4
#endif
#include "x86_body.h"

/* n == 1: the step specialized by window count */
static void gemv_rows(const sk_nm_f32 *w, int64_t r0, int64_t r1, const float *x, const float *bias,
                      float *y, int64_t ldy) {
    gemv_plan p;
    make_plan(w, &p);
    const int full = p.st.v == 16;
    if (full && p.st.nwin == 1) gemv_rows_t(w, &p, r0, r1, x, bias, y, ldy, 1, 1, 0, 0, 0);
    else if (full && p.st.nwin == 2) gemv_rows_t(w, &p, r0, r1, x, bias, y, ldy, 2, 1, 0, 0, 0);
    else if (full && p.st.nwin == 4) gemv_rows_t(w, &p, r0, r1, x, bias, y, ldy, 4, 1, 0, 0, 0);
    else if (full) gemv_rows_t(w, &p, r0, r1, x, bias, y, ldy, p.st.nwin, 1, 0, 0, 0);
    else gemv_rows_t(w, &p, r0, r1, x, bias, y, ldy, p.st.nwin, 0, 0, 0, 0);
}

#if defined(__GNUC__)
/* 64 bits of a row's position stream from bit `bit`, zeros past the row's end. */
SK_INLINE uint64_t nm_window(const sk_nm_f32 *w, const uint8_t *row, int64_t bit) {
    const int64_t left = w->meta_stride * 8 - bit;
    return left <= 0 ? 0 : sk_nm_bits(row, bit, left < 64 ? (int)left : 64);
}

/* X offset (bytes, rows of 64 floats) of the position in the low bits of `src` */
#define SK_NM_ASM_DECODE(dst, src, PM)    \
    "movl %k[" #src "], %k[" #dst "]\n\t" \
    "shll $8, %k[" #dst "]\n\t"           \
    "andl $" #PM "<<8, %k[" #dst "]\n\t"
/* one slot: splat lane SPLAT (in each 128-bit lane) of zmm WREG, four FMAs with the X
 * row at (xg, o) into zmm A0..A3, then decode the row's next position into o */
#define SK_NM_ASM_SLOT(WREG, SPLAT, o, A0, A1, A2, A3, lo, PM)    \
    "vpermilps $" #SPLAT ", %%zmm" #WREG ", %%zmm30\n\t"          \
    "vfmadd231ps (%[xg],%[" #o "]), %%zmm30, %%zmm" #A0 "\n\t"    \
    "vfmadd231ps 64(%[xg],%[" #o "]), %%zmm30, %%zmm" #A1 "\n\t"  \
    "vfmadd231ps 128(%[xg],%[" #o "]), %%zmm30, %%zmm" #A2 "\n\t" \
    "vfmadd231ps 192(%[xg],%[" #o "]), %%zmm30, %%zmm" #A3 "\n\t" SK_NM_ASM_DECODE(o, lo, PM)
/* one step: a slot of each of the four rows (weights splatted from zmm16-19), the
 * position windows move on by B bits, X by XS bytes */
#define SK_NM_QUAD_STEP(SPLAT, B, PM, XS)                  \
    SK_NM_ASM_SLOT(16, SPLAT, o0, 0, 1, 2, 3, lo0, PM)     \
    SK_NM_ASM_SLOT(17, SPLAT, o1, 4, 5, 6, 7, lo1, PM)     \
    SK_NM_ASM_SLOT(18, SPLAT, o2, 8, 9, 10, 11, lo2, PM)   \
    SK_NM_ASM_SLOT(19, SPLAT, o3, 12, 13, 14, 15, lo3, PM) \
    "shrq $" #B ", %[lo0]\n\t"                             \
    "shrq $" #B ", %[lo1]\n\t"                             \
    "shrq $" #B ", %[lo2]\n\t"                             \
    "shrq $" #B ", %[lo3]\n\t"                             \
    "addq $" #XS ", %[xg]\n\t"
/* The rest of a quad run after the four-step loop (cnt < 4 steps left, cnt > 0):
 * TAIL1 single steps (1:M), TAIL2 pairs of steps (2:4, whose runs have even counts). */
#define SK_NM_QUAD_TAIL1(B, PM, XS)                                                            \
    "vbroadcastss (%[w0]), %%zmm16\n\t"                                                        \
    "vbroadcastss (%[w1]), %%zmm17\n\t"                                                        \
    "vbroadcastss (%[w2]), %%zmm18\n\t"                                                        \
    "vbroadcastss (%[w3]), %%zmm19\n\t" SK_NM_QUAD_STEP(0x00, B, PM, XS) "addq $4, %[w0]\n\t"  \
                                                                         "addq $4, %[w1]\n\t"  \
                                                                         "addq $4, %[w2]\n\t"  \
                                                                         "addq $4, %[w3]\n\t"  \
                                                                         "subq $1, %[cnt]\n\t" \
                                                                         "jnz 2b\n\t"
#define SK_NM_QUAD_TAIL2(B, PM, XS0, XS1)                                 \
    "vbroadcastsd (%[w0]), %%zmm16\n\t"                                   \
    "vbroadcastsd (%[w1]), %%zmm17\n\t"                                   \
    "vbroadcastsd (%[w2]), %%zmm18\n\t"                                   \
    "vbroadcastsd (%[w3]), %%zmm19\n\t" SK_NM_QUAD_STEP(0x00, B, PM, XS0) \
        SK_NM_QUAD_STEP(0x55, B, PM, XS1) "addq $8, %[w0]\n\t"            \
                                          "addq $8, %[w1]\n\t"            \
                                          "addq $8, %[w2]\n\t"            \
                                          "addq $8, %[w3]\n\t"            \
                                          "subq $2, %[cnt]\n\t"           \
                                          "jnz 2b\n\t"
/* A run of cnt steps over rows r..r+3: zero the accumulators (zmm 4u..4u+3 for row u),
 * decode step 0's offsets from the rows' 64-bit position windows, four steps per
 * iteration with each row's four weights in one 16-byte broadcast (weight loads share
 * the two load ports with X), then TAIL, then add the tile to Y. X moves XS0 bytes
 * after even steps and XS1 after odd ones (2:4: 0 and one group). */
#define SK_NM_QUAD_RUN(B, PM, XS0, XS1, TAIL)                                                      \
    __asm__ volatile(                                                                              \
        SK_ASM_ZERO_ZMM0_15 SK_NM_ASM_DECODE(o0, lo0, PM) SK_NM_ASM_DECODE(o1, lo1, PM)            \
            SK_NM_ASM_DECODE(o2, lo2, PM) SK_NM_ASM_DECODE(                                        \
                o3, lo3,                                                                           \
                PM) "shrq $" #B ", %[lo0]\n\t"                                                     \
                    "shrq $" #B ", %[lo1]\n\t"                                                     \
                    "shrq $" #B ", %[lo2]\n\t"                                                     \
                    "shrq $" #B ", %[lo3]\n\t"                                                     \
                    "cmpq $4, %[cnt]\n\t"                                                          \
                    "jb 3f\n\t"                                                                    \
                    "1:\n\t"                                                                       \
                    "vbroadcastf32x4 (%[w0]), %%zmm16\n\t"                                         \
                    "vbroadcastf32x4 (%[w1]), %%zmm17\n\t"                                         \
                    "vbroadcastf32x4 (%[w2]), %%zmm18\n\t"                                         \
                    "vbroadcastf32x4 (%[w3]), %%zmm19\n\t" SK_NM_QUAD_STEP(                        \
                        0x00, B, PM, XS0) SK_NM_QUAD_STEP(0x55, B, PM, XS1)                        \
                        SK_NM_QUAD_STEP(0xaa, B, PM, XS0) SK_NM_QUAD_STEP(                         \
                            0xff, B, PM,                                                           \
                            XS1) "addq $16, %[w0]\n\t"                                             \
                                 "addq $16, %[w1]\n\t"                                             \
                                 "addq $16, %[w2]\n\t"                                             \
                                 "addq $16, %[w3]\n\t"                                             \
                                 "subq $4, %[cnt]\n\t"                                             \
                                 "cmpq $4, %[cnt]\n\t"                                             \
                                 "jae 1b\n\t"                                                      \
                                 "3:\n\t"                                                          \
                                 "testq %[cnt], %[cnt]\n\t"                                        \
                                 "jz 4f\n\t"                                                       \
                                 "2:\n\t" TAIL "4:\n\t"                                            \
                                 "movq %[ym], %[o0]\n\t"                                           \
                                 "movq %[ldym], %[o1]\n\t" SK_ASM_ADD_Y(0, 1, 2, 3, "(%[o0])")     \
                                     SK_ASM_ADD_Y(4, 5, 6, 7, "(%[o0],%[o1])") SK_ASM_ADD_Y(       \
                                         8, 9, 10, 11,                                             \
                                         "(%[o0],%[o1],2)") "leaq (%[o0],%[o1],2), %[o2]\n\t"      \
                                                            "addq %[o1], %[o2]\n\t" SK_ASM_ADD_Y(  \
                                                                12, 13, 14, 15, "(%[o2])")         \
        : [xg] "+r"(xg), [w0] "+r"(wq[0]), [w1] "+r"(wq[1]), [w2] "+r"(wq[2]), [w3] "+r"(wq[3]),   \
          [lo0] "+r"(lo[0]), [lo1] "+r"(lo[1]), [lo2] "+r"(lo[2]), [lo3] "+r"(lo[3]),              \
          [cnt] "+r"(cnt), [o0] "=&r"(o0), [o1] "=&r"(o1), [o2] "=&r"(o2), [o3] "=&r"(o3)          \
        : [ym] "m"(y0), [ldym] "m"(ldyb)                                                           \
        : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", \
          "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", "xmm17", "xmm18", "xmm19",         \
          "xmm30", "cc", "memory")

/* Rows r .. r + 3, 64 columns of X with rows 64 floats apart, groups [g0, g1), for 2:4,
 * 1:4 and 1:8 (NN:2^BB): a step is one slot of each row. Written in assembly so that each
 * step's X offsets are decoded a step ahead of the loads that use them: compiled from C,
 * GCC places the decode right before the loads (and spills), and loads whose address
 * arrives late fill the scheduler (2:4 with X in L1: 62 % of the FMA peak that way, 74 %
 * like this; two rows x two slots per step was slower). */
SK_INLINE void nm_tile64(const sk_nm_f32 *w, int64_t r, int64_t g0, int64_t g1, int first,
                         const float *x, const float *bias, float *y, int64_t ldy, const int NN,
                         const int BB) {
    const int N = NN, b = BB, M = 1 << BB;
    const int64_t G = nm_groups_t(w, BB), slots = G * N, gfull = w->cols / M;
    const int64_t gend = g1 < gfull ? g1 : gfull;
    const float *vals[4];
    const uint8_t *meta[4];
    float *y0 = y + r * ldy;
    for (int u = 0; u < 4; ++u) {
        vals[u] = w->values + (r + u) * slots;
        meta[u] = w->meta + (r + u) * w->meta_stride;
        prefetch_k_block(w, r + u + SK_NM_PF_ROWS, slots, g0, g1, N, b);
        if (first) {
            const sk_v16f b0 = sk_v16f_splat(bias ? bias[r + u] : 0.0f);
            for (int v = 0; v < 4; ++v) sk_v16f_store(y0 + u * ldy + 16 * v, b0);
        }
    }
    const int64_t nsteps = gend > g0 ? (gend - g0) * N : 0;
    const int64_t run = 64 / BB / N * N; /* whole groups within a 64-bit window */
    const int64_t ldyb = ldy * 4;
    const float *xg = x + g0 * M * 64;
    for (int64_t s = 0; s < nsteps; s += run) {
        const int64_t g = g0 + s / N;
        int64_t cnt = run < nsteps - s ? run : nsteps - s; /* counted down to 0 by the run */
        uint64_t lo[4], o0, o1, o2, o3;
        const float *wq[4];
        for (int u = 0; u < 4; ++u) {
            lo[u] = nm_window(w, meta[u], g * N * b);
            wq[u] = vals[u] + g * N;
        }
        if (NN == 2) SK_NM_QUAD_RUN(2, 3, 0, 1024, SK_NM_QUAD_TAIL2(2, 3, 0, 1024));
        else if (BB == 2) SK_NM_QUAD_RUN(2, 3, 1024, 1024, SK_NM_QUAD_TAIL1(2, 3, 1024));
        else SK_NM_QUAD_RUN(3, 7, 2048, 2048, SK_NM_QUAD_TAIL1(3, 7, 2048));
        (void)o0;
        (void)o1;
        (void)o2;
        (void)o3;
    }
    if (g1 == G && gfull < G) /* the padded last group, from and back to Y */
        block_tile(w, r, gfull, G, 0, x, 64, bias, y, ldy, 4, 4, 0, sk_m16_none(), NN, BB);
}

/* 64-column tiles of 2:4, 1:4 and 1:8 with X rows 64 floats apart: nm_tile64 */
SK_INLINE int nm_tile4(const sk_nm_f32 *w, int64_t r, int64_t g0, int64_t g1, int first,
                       const float *x, int64_t ldx, const float *bias, float *y, int64_t ldy,
                       const int V, const int MASKED, const int NN, const int BB) {
    if (!NN || V != 4 || MASKED || ldx != 64) return 0;
    nm_tile64(w, r, g0, g1, first, x, bias, y, ldy, NN, BB);
    return 1;
}
#endif
