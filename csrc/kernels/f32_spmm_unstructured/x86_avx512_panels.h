/* The AVX-512 kernel of the unstructured panel layout (sparsekern.h) for X rows 64
 * floats apart, in its own file (x86_avx512_panels.c, compiled with the AVX-512 flags):
 * inside x86_avx512.c its code changed how GCC compiled the file's other paths, and 1x1
 * convolutions (which never use panels) ran slower. */
#ifndef SK_X86_AVX512_PANELS_H
#define SK_X86_AVX512_PANELS_H

#include "internal.h"

#define SK_PANEL_K 128

#if defined(__GNUC__) && defined(SK_HAVE_AVX512)
#define SK_HAVE_PANELS_ASM 1
/* Rows [r0, r1) of Y[:, 0:64] = W @ X (+ bias) with w's panel layout present and X rows
 * 64 floats apart (the quads from the panels, rows outside whole quads from the CSR
 * arrays). X must hold no inf/NaN: padding multiplies row 0 of a panel by 0. */
void sk_f32_unstructured_panels_rows_avx512(const sk_csr_f32 *w, int64_t r0, int64_t r1,
                                            const float *x, const float *bias, float *y,
                                            int64_t ldy);
#endif

#endif
