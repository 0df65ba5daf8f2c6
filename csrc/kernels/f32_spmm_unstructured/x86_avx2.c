/* AVX2 + FMA variant: the x86 body (x86_body.h) with 8-wide vectors. */
#define SK_X86_WIDTH 256
#include "x86_body.h"
