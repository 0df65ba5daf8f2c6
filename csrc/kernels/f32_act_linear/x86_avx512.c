/* AVX-512 variant of the activation-sparse microkernel: the x86 body (x86_body.h) with
 * 16-wide vectors. */
#define SK_X86_WIDTH 512
#include "x86_body.h"
