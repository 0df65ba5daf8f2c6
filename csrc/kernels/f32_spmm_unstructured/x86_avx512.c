/* AVX-512 variant: the x86 body (x86_body.h) with 16-wide vectors, and with the panel
 * layout and X rows 64 floats apart the assembly panel kernel (x86_avx512_panels.c). */
#define SK_X86_WIDTH 512
#include "x86_vec.h"
#include "x86_avx512_panels.h"

#if defined(SK_HAVE_PANELS_ASM)
#define SK_SPMM_U_OWN(w, r0, r1, x, n, ldx, bias, y, ldy)                          \
    ((n) == 64 && (ldx) == 64 && (w)->panel_off                                    \
         ? (sk_f32_unstructured_panels_rows_avx512(w, r0, r1, x, bias, y, ldy), 1) \
         : 0)
#endif
#include "x86_body.h"
