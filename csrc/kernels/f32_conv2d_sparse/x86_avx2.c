/* AVX2 variant of the direct sparse convolution: the x86 body (x86_body.h) with 8-wide
 * vectors, masks computed per tap. */
#define SK_X86_WIDTH 256
#include "x86_body.h"
