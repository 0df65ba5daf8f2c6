/* AVX2 + FMA variant of the activation-sparse microkernel: the plan of the AVX-512
 * one (x86_avx512.c) with 8-wide vectors and masked loads/stores for the tail. */
#include <immintrin.h>

#include "act_internal.h"

#define SK_ACT_U 4

SK_INLINE __m256i tail8(int64_t r) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)r), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

SK_INLINE void prefetch_rows(const float *p0, const float *p1, const float *p2, const float *p3) {
    _mm_prefetch((const char *)p0, _MM_HINT_T0);
    _mm_prefetch((const char *)p1, _MM_HINT_T0);
    _mm_prefetch((const char *)p2, _MM_HINT_T0);
    _mm_prefetch((const char *)p3, _MM_HINT_T0);
}

static void gemv_group(const float *w0, const float *w1, const float *w2, const float *w3,
                       const float *coef, const float *const *next, int64_t j0, int64_t j1,
                       float *y) {
    const __m256 a0 = _mm256_set1_ps(coef[0]), a1 = _mm256_set1_ps(coef[1]);
    const __m256 a2 = _mm256_set1_ps(coef[2]), a3 = _mm256_set1_ps(coef[3]);
    int64_t j = j0;
    for (; j + 16 <= j1; j += 16) {
        if (next) prefetch_rows(next[0] + j, next[1] + j, next[2] + j, next[3] + j);
        __m256 s0 = _mm256_loadu_ps(y + j), s1 = _mm256_loadu_ps(y + j + 8);
        __m256 t0 = _mm256_mul_ps(a1, _mm256_loadu_ps(w1 + j));
        __m256 t1 = _mm256_mul_ps(a1, _mm256_loadu_ps(w1 + j + 8));
        s0 = _mm256_fmadd_ps(a0, _mm256_loadu_ps(w0 + j), s0);
        s1 = _mm256_fmadd_ps(a0, _mm256_loadu_ps(w0 + j + 8), s1);
        t0 = _mm256_fmadd_ps(a3, _mm256_loadu_ps(w3 + j), t0);
        t1 = _mm256_fmadd_ps(a3, _mm256_loadu_ps(w3 + j + 8), t1);
        s0 = _mm256_fmadd_ps(a2, _mm256_loadu_ps(w2 + j), s0);
        s1 = _mm256_fmadd_ps(a2, _mm256_loadu_ps(w2 + j + 8), s1);
        _mm256_storeu_ps(y + j, _mm256_add_ps(s0, t0));
        _mm256_storeu_ps(y + j + 8, _mm256_add_ps(s1, t1));
    }
    for (; j < j1; j += 8) {
        const __m256i m = tail8(j1 - j);
        __m256 s = _mm256_maskload_ps(y + j, m);
        __m256 t = _mm256_mul_ps(a1, _mm256_maskload_ps(w1 + j, m));
        s = _mm256_fmadd_ps(a0, _mm256_maskload_ps(w0 + j, m), s);
        t = _mm256_fmadd_ps(a3, _mm256_maskload_ps(w3 + j, m), t);
        s = _mm256_fmadd_ps(a2, _mm256_maskload_ps(w2 + j, m), s);
        _mm256_maskstore_ps(y + j, m, _mm256_add_ps(s, t));
    }
}

static void gemv_one(const float *w0, float a, int64_t j0, int64_t j1, float *y) {
    const __m256 a0 = _mm256_set1_ps(a);
    int64_t j = j0;
    for (; j + 8 <= j1; j += 8)
        _mm256_storeu_ps(y + j, _mm256_fmadd_ps(a0, _mm256_loadu_ps(w0 + j), _mm256_loadu_ps(y + j)));
    if (j < j1) {
        const __m256i m = tail8(j1 - j);
        _mm256_maskstore_ps(y + j, m, _mm256_fmadd_ps(a0, _mm256_maskload_ps(w0 + j, m),
                                                     _mm256_maskload_ps(y + j, m)));
    }
}

/* 2 rows of y += their coefficients (coef[u*n + r]) times the 4 weight rows */
static void rows2(const float *w0, const float *w1, const float *w2, const float *w3,
                  const float *coef, int64_t n, int64_t j0, int64_t j1, float *y, int64_t ldy) {
    const __m256 a00 = _mm256_set1_ps(coef[0]), a01 = _mm256_set1_ps(coef[1]);
    const __m256 a10 = _mm256_set1_ps(coef[n]), a11 = _mm256_set1_ps(coef[n + 1]);
    const __m256 a20 = _mm256_set1_ps(coef[2 * n]), a21 = _mm256_set1_ps(coef[2 * n + 1]);
    const __m256 a30 = _mm256_set1_ps(coef[3 * n]), a31 = _mm256_set1_ps(coef[3 * n + 1]);
    float *y0 = y, *y1 = y + ldy;
    int64_t j = j0;
    /* plain loads/stores in the loop: masked stores are microcoded on AMD cores */
#define SK_ROWS2_STEP(LD, ST)                                                    \
    {                                                                            \
        __m256 s0 = LD(y0 + j), s1 = LD(y1 + j);                                 \
        __m256 wv = LD(w0 + j);                                                  \
        s0 = _mm256_fmadd_ps(a00, wv, s0);                                       \
        s1 = _mm256_fmadd_ps(a01, wv, s1);                                       \
        wv = LD(w1 + j);                                                         \
        s0 = _mm256_fmadd_ps(a10, wv, s0);                                       \
        s1 = _mm256_fmadd_ps(a11, wv, s1);                                       \
        wv = LD(w2 + j);                                                         \
        s0 = _mm256_fmadd_ps(a20, wv, s0);                                       \
        s1 = _mm256_fmadd_ps(a21, wv, s1);                                       \
        wv = LD(w3 + j);                                                         \
        s0 = _mm256_fmadd_ps(a30, wv, s0);                                       \
        s1 = _mm256_fmadd_ps(a31, wv, s1);                                       \
        ST(y0 + j, s0);                                                          \
        ST(y1 + j, s1);                                                          \
    }
    for (; j + 8 <= j1; j += 8) SK_ROWS2_STEP(_mm256_loadu_ps, _mm256_storeu_ps)
    if (j < j1) {
        const __m256i m = tail8(j1 - j);
#define SK_MLD(p) _mm256_maskload_ps(p, m)
#define SK_MST(p, v) _mm256_maskstore_ps(p, m, v)
        SK_ROWS2_STEP(SK_MLD, SK_MST)
#undef SK_MLD
#undef SK_MST
    }
#undef SK_ROWS2_STEP
}

static void batch_group(const float *w0, const float *w1, const float *w2, const float *w3,
                        const float *coef, int64_t n, const float *const *next, int64_t j0,
                        int64_t j1, float *y, int64_t ldy) {
    if (next)
        for (int64_t j = j0; j < j1; j += 16) prefetch_rows(next[0] + j, next[1] + j, next[2] + j, next[3] + j);
    int64_t i = 0;
    for (; i + 2 <= n; i += 2) {   /* two rows share every weight load */
        int any = 0;
        for (int u = 0; u < 4; ++u) any |= (coef[u * n + i] != 0.0f) | (coef[u * n + i + 1] != 0.0f);
        if (any) rows2(w0, w1, w2, w3, coef + i, n, j0, j1, y + i * ldy, ldy);
    }
    for (; i < n; ++i) {
        const float c0 = coef[i], c1 = coef[n + i], c2 = coef[2 * n + i], c3 = coef[3 * n + i];
        if (c0 == 0.0f && c1 == 0.0f && c2 == 0.0f && c3 == 0.0f) continue;
        const float cc[4] = {c0, c1, c2, c3};
        gemv_group(w0, w1, w2, w3, cc, NULL, j0, j1, y + i * ldy);
    }
}

void sk_f32_act_linear_avx2(const float *wt, int64_t ldw, const int32_t *idx, const float *coef,
                            int64_t nact, int64_t n, int64_t len, float *y,
                            int64_t ldy) {
    int64_t c = 0;
    for (; c + SK_ACT_U <= nact; c += SK_ACT_U) {
        const float *w0 = wt + (int64_t)idx[c] * ldw, *w1 = wt + (int64_t)idx[c + 1] * ldw;
        const float *w2 = wt + (int64_t)idx[c + 2] * ldw, *w3 = wt + (int64_t)idx[c + 3] * ldw;
        const float *nx[4];
        const int has_next = c + 2 * SK_ACT_U <= nact;
        if (has_next)
            for (int u = 0; u < 4; ++u) nx[u] = wt + (int64_t)idx[c + SK_ACT_U + u] * ldw;
        if (n == 1)
            gemv_group(w0, w1, w2, w3, coef + c, has_next ? nx : NULL, 0, len, y);
        else
            batch_group(w0, w1, w2, w3, coef + c * n, n, has_next ? nx : NULL, 0, len, y, ldy);
    }
    for (; c < nact; ++c) {
        const float *w0 = wt + (int64_t)idx[c] * ldw;
        for (int64_t i = 0; i < n; ++i) {
            const float a = coef[c * n + i];
            if (n > 1 && a == 0.0f) continue;
            gemv_one(w0, a, 0, len, y + i * ldy);
        }
    }
}
