/* AVX-512 variant of the direct sparse convolution: the x86 body (x86_body.h) with
 * 16-wide vectors and the operator's mask table; and the inf/NaN scan of the input. */
#define SK_X86_WIDTH 512
#include "x86_body.h"

/* Nonzero when x[0:n] holds inf or NaN (exponent bits all ones). */
int sk_f32_conv2d_nonfinite_avx512(const float *x, int64_t n) {
    const __m512i e = _mm512_set1_epi32(0x7f800000);
    __mmask16 any = 0;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512i v = _mm512_and_si512(_mm512_loadu_si512((const void *)(x + i)), e);
        any |= _mm512_cmpeq_epi32_mask(v, e);
    }
    if (i < n) {
        const __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);
        const __m512i v = _mm512_and_si512(_mm512_maskz_loadu_epi32(m, x + i), e);
        any |= _mm512_mask_cmpeq_epi32_mask(m, v, e);
    }
    return any != 0;
}
