/* Batch-1 row kernel shared by the x86 variants (included by x86_avx2.c and
 * x86_avx512.c, compiled with each file's flags). X is gathered with scalar loads
 * assembled into 8-wide vectors: on Zen 4/5 and recent Intel cores this beats both
 * vgatherdps (ymm and zmm) and a scalar FMA loop, and keeps batch 1 memory-bound. */
#ifndef SK_X86_GEMV_INC
#define SK_X86_GEMV_INC

#include <immintrin.h>

#include "internal.h"

SK_INLINE void sk_x86_gemv_rows(const sk_csr_f32 *w, int64_t r0, int64_t r1, const float *x,
                                const float *bias, float *y, int64_t ldy, int wide) {
    const float *SK_RESTRICT values = w->values;
    const void *col = w->col_idx;
#define SK_XG(i) x[sk_col_at(col, wide ? 32 : 16, p + (i))]
    /* x at the 16 columns from col[p] into X0, X1. 16-bit indices come four per 8-byte
     * load, split in general registers (the empty asm keeps GCC from narrowing that back
     * into a load per index): the gather is short of load slots, not of arithmetic
     * (density 0.1 4096^2, W in L3: 9.7 -> 10.6 GFLOP/s; cold: 379 -> 360 us on Zen 5). */
#define SK_X16(c, k) x[(uint16_t)((c) >> (16 * (k)))]
#define SK_GATHER16(X0, X1)                                                                  \
    do {                                                                                     \
        if (!wide) {                                                                         \
            uint64_t c0, c1, c2, c3;                                                         \
            memcpy(&c0, (const uint16_t *)col + p, 8);                                       \
            memcpy(&c1, (const uint16_t *)col + p + 4, 8);                                   \
            memcpy(&c2, (const uint16_t *)col + p + 8, 8);                                   \
            memcpy(&c3, (const uint16_t *)col + p + 12, 8);                                  \
            __asm__("" : "+r"(c0), "+r"(c1), "+r"(c2), "+r"(c3));                            \
            X0 = _mm256_setr_ps(SK_X16(c0, 0), SK_X16(c0, 1), SK_X16(c0, 2), SK_X16(c0, 3), \
                                SK_X16(c1, 0), SK_X16(c1, 1), SK_X16(c1, 2), SK_X16(c1, 3)); \
            X1 = _mm256_setr_ps(SK_X16(c2, 0), SK_X16(c2, 1), SK_X16(c2, 2), SK_X16(c2, 3), \
                                SK_X16(c3, 0), SK_X16(c3, 1), SK_X16(c3, 2), SK_X16(c3, 3)); \
        } else {                                                                             \
            X0 = _mm256_setr_ps(SK_XG(0), SK_XG(1), SK_XG(2), SK_XG(3),                      \
                                SK_XG(4), SK_XG(5), SK_XG(6), SK_XG(7));                     \
            X1 = _mm256_setr_ps(SK_XG(8), SK_XG(9), SK_XG(10), SK_XG(11),                    \
                                SK_XG(12), SK_XG(13), SK_XG(14), SK_XG(15));                 \
        }                                                                                    \
    } while (0)
    for (int64_t m = r0; m < r1; ++m) {
        int64_t p = w->row_ptr[m];
        const int64_t end = w->row_ptr[m + 1];
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
        for (; p + 16 <= end; p += 16) {
            __m256 x0, x1;
            SK_GATHER16(x0, x1);
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(values + p), x0, a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(values + p + 8), x1, a1);
        }
        const int64_t rem = end - p;                     /* 0..15 left */
        float acc;
        if (rem > 0 && p + 16 <= w->nnz) {
            /* Branch-free tail: two 8-wide steps whose lanes past the row's end are
             * masked off. The indices read there belong to the next rows (in bounds,
             * valid columns); their x lanes are zeroed so inf/NaN cannot leak in. */
            const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
            const __m256i k0 = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)rem), lane);
            const __m256i k1 = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)rem - 8), lane);
            __m256 x0, x1;
            SK_GATHER16(x0, x1);
            x0 = _mm256_and_ps(x0, _mm256_castsi256_ps(k0));
            x1 = _mm256_and_ps(x1, _mm256_castsi256_ps(k1));
            a0 = _mm256_fmadd_ps(_mm256_maskload_ps(values + p, k0), x0, a0);
            a1 = _mm256_fmadd_ps(_mm256_maskload_ps(values + p + 8, k1), x1, a1);
            p = end;
        }
        const __m256 a = _mm256_add_ps(a0, a1);
        __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
        s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        s = _mm_add_ss(s, _mm_movehdup_ps(s));
        acc = _mm_cvtss_f32(s);
        for (; p < end; ++p) acc += values[p] * SK_XG(0);
        y[m * ldy] = acc + (bias ? bias[m] : 0.0f);
    }
#undef SK_GATHER16
#undef SK_X16
#undef SK_XG
}

#endif
