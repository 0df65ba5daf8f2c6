/* AVX2 + FMA variant of the N:M SpMM.
 *   n == 1: per row, 8 slots per step; their columns (group base + decoded position)
 *           are assembled into one vector with scalar loads (faster than vgatherdps on
 *           the CPUs measured, see ../f32_spmm_unstructured/x86_gemv.h).
 *   n  > 1: R = 4 rows of W at a time over the same groups (the group's X rows are
 *           loaded once and serve all R rows), tiles of 16/8 columns + a masked tail. */
#include <immintrin.h>

#include "nm_internal.h"

SK_INLINE __m256i tail_mask(int64_t r) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)r), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* The columns of 8 consecutive slots starting at slot j (group base gbase, slot s within
 * the group on entry; both advanced past them). */
SK_INLINE __m256 gather8(const float *x, uint64_t bits, int b, uint64_t pmask, int N, int M,
                         int64_t *gbase, int *s) {
    int64_t c[8];
    for (int i = 0; i < 8; ++i) {
        c[i] = *gbase + (int64_t)(bits & pmask);
        bits >>= b;
        if (++*s == N) { *s = 0; *gbase += M; }
    }
    return _mm256_setr_ps(x[c[0]], x[c[1]], x[c[2]], x[c[3]], x[c[4]], x[c[5]], x[c[6]], x[c[7]]);
}

static void gemv_rows(const sk_nm_f32 *w, int64_t r0, int64_t r1, const float *x,
                      const float *bias, float *y, int64_t ldy) {
    const int N = w->n, M = w->m, b = w->pos_bits;
    const int64_t G = sk_nm_groups(w), slots = G * N, gfull = w->cols / M;
    const int64_t full_slots = gfull * N;
    const uint64_t pmask = (UINT64_C(1) << b) - 1;
    for (int64_t r = r0; r < r1; ++r) {
        const float *vals = w->values + r * slots;
        const uint8_t *meta = w->meta + r * w->meta_stride;
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
        int64_t j = 0, gbase = 0;   /* slot, column of its group */
        int s = 0;                  /* slot within the group */
        for (; j + 16 <= full_slots; j += 16) {
            const uint64_t bits = sk_nm_bits(meta, j * b, 16 * b);
            const __m256 x0 = gather8(x, bits, b, pmask, N, M, &gbase, &s);
            const __m256 x1 = gather8(x, bits >> (8 * b), b, pmask, N, M, &gbase, &s);
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(vals + j), x0, a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(vals + j + 8), x1, a1);
        }
        const __m256 a = _mm256_add_ps(a0, a1);
        __m128 h = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
        h = _mm_add_ps(h, _mm_movehl_ps(h, h));
        h = _mm_add_ss(h, _mm_movehdup_ps(h));
        float acc = _mm_cvtss_f32(h);
        sk_nm_slots_scalar(w, r, j, slots, x, 1, 1, &acc);
        y[r * ldy] = acc + (bias ? bias[r] : 0.0f);
    }
}

SK_INLINE void block_tile(const sk_nm_f32 *w, int64_t r, const float *x, int64_t ldx,
                          const float *bias, float *y, int64_t ldy, const int R, const int V,
                          const int MASKED, __m256i tail) {
    const int N = w->n, M = w->m, b = w->pos_bits;
    const int64_t G = sk_nm_groups(w), slots = G * N, gfull = w->cols / M;
    const uint64_t pmask = (UINT64_C(1) << b) - 1;
    const int gc = 64 / (N * b);
    const float *vals[4];
    const uint8_t *meta[4];
    __m256 acc[4][2];
    for (int u = 0; u < R; ++u) {
        vals[u] = w->values + (r + u) * slots;
        meta[u] = w->meta + (r + u) * w->meta_stride;
        const __m256 b0 = _mm256_set1_ps(bias ? bias[r + u] : 0.0f);
        for (int v = 0; v < V; ++v) acc[u][v] = b0;
    }
#define SK_XLOAD(p, v) (MASKED && (v) == V - 1 ? _mm256_maskload_ps((p) + 8 * (v), tail) \
                                                 : _mm256_loadu_ps((p) + 8 * (v)))
    for (int64_t g = 0; g < gfull; g += gc) {
        const int cnt = gfull - g < gc ? (int)(gfull - g) : gc;
        uint64_t bits[4];
        for (int u = 0; u < R; ++u) bits[u] = sk_nm_bits(meta[u], g * N * b, cnt * N * b);
        for (int gg = 0; gg < cnt; ++gg) {
            const float *xg = x + (g + gg) * M * ldx;
            const int64_t j = (g + gg) * N;
            for (int s = 0; s < N; ++s) {
                for (int u = 0; u < R; ++u) {
                    const int pos = (int)(bits[u] & pmask);
                    bits[u] >>= b;
                    const __m256 wv = _mm256_set1_ps(vals[u][j + s]);
                    const float *xr = xg + pos * ldx;
                    for (int v = 0; v < V; ++v) acc[u][v] = _mm256_fmadd_ps(wv, SK_XLOAD(xr, v), acc[u][v]);
                }
            }
        }
    }
    if (gfull < G) {
        for (int u = 0; u < R; ++u) {
            for (int64_t j = gfull * N; j < slots; ++j) {
                const int64_t col = gfull * M + sk_nm_pos(meta[u], j, b);
                if (col >= w->cols) continue;
                const __m256 wv = _mm256_set1_ps(vals[u][j]);
                const float *xr = x + col * ldx;
                for (int v = 0; v < V; ++v) acc[u][v] = _mm256_fmadd_ps(wv, SK_XLOAD(xr, v), acc[u][v]);
            }
        }
    }
#undef SK_XLOAD
    for (int u = 0; u < R; ++u) {
        float *yrow = y + (r + u) * ldy;
        for (int v = 0; v < V; ++v) {
            if (MASKED && v == V - 1) _mm256_maskstore_ps(yrow + 8 * v, tail, acc[u][v]);
            else _mm256_storeu_ps(yrow + 8 * v, acc[u][v]);
        }
    }
}

SK_INLINE void block_cols(const sk_nm_f32 *w, int64_t r, const float *x, int64_t n, int64_t ldx,
                          const float *bias, float *y, int64_t ldy, const int R) {
    const __m256i none = _mm256_setzero_si256();
    int64_t j = 0;
    for (; j + 16 <= n; j += 16) block_tile(w, r, x + j, ldx, bias, y + j, ldy, R, 2, 0, none);
    if (j + 8 <= n) { block_tile(w, r, x + j, ldx, bias, y + j, ldy, R, 1, 0, none); j += 8; }
    if (j < n) block_tile(w, r, x + j, ldx, bias, y + j, ldy, R, 1, 1, tail_mask(n - j));
}

void sk_f32_spmm_nm_avx2(const sk_nm_f32 *w, int64_t r0, int64_t r1, const float *x, int64_t n,
                         int64_t ldx, const float *bias, float *y, int64_t ldy) {
    if (n == 1 && ldx == 1) {
        gemv_rows(w, r0, r1, x, bias, y, ldy);
        return;
    }
    int64_t r = r0;
    for (; r + 4 <= r1; r += 4) block_cols(w, r, x, n, ldx, bias, y, ldy, 4);
    for (; r < r1; ++r) block_cols(w, r, x, n, ldx, bias, y, ldy, 1);
}
