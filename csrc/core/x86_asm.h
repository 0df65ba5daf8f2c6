/* Inline-assembly fragments shared by the x86-64 AVX-512 kernels written in assembly
 * (GCC-compatible compilers; AT&T syntax, inside __asm__ strings). */
#ifndef SK_X86_ASM_H
#define SK_X86_ASM_H

/* zero zmm0-15 (the accumulators of a 4 x 4-vector tile) */
#define SK_ASM_ZERO_ZMM0_15                \
    "vpxord %%zmm0, %%zmm0, %%zmm0\n\t"    \
    "vpxord %%zmm1, %%zmm1, %%zmm1\n\t"    \
    "vpxord %%zmm2, %%zmm2, %%zmm2\n\t"    \
    "vpxord %%zmm3, %%zmm3, %%zmm3\n\t"    \
    "vpxord %%zmm4, %%zmm4, %%zmm4\n\t"    \
    "vpxord %%zmm5, %%zmm5, %%zmm5\n\t"    \
    "vpxord %%zmm6, %%zmm6, %%zmm6\n\t"    \
    "vpxord %%zmm7, %%zmm7, %%zmm7\n\t"    \
    "vpxord %%zmm8, %%zmm8, %%zmm8\n\t"    \
    "vpxord %%zmm9, %%zmm9, %%zmm9\n\t"    \
    "vpxord %%zmm10, %%zmm10, %%zmm10\n\t" \
    "vpxord %%zmm11, %%zmm11, %%zmm11\n\t" \
    "vpxord %%zmm12, %%zmm12, %%zmm12\n\t" \
    "vpxord %%zmm13, %%zmm13, %%zmm13\n\t" \
    "vpxord %%zmm14, %%zmm14, %%zmm14\n\t" \
    "vpxord %%zmm15, %%zmm15, %%zmm15\n\t"

/* Y row (64 floats at the memory operand ADDR, e.g. "(%[y])") += zmm A0..A3 */
#define SK_ASM_ADD_Y1(A, OFF, ADDR)                      \
    "vaddps " #OFF ADDR ", %%zmm" #A ", %%zmm" #A "\n\t" \
    "vmovups %%zmm" #A ", " #OFF ADDR "\n\t"
#define SK_ASM_ADD_Y(A0, A1, A2, A3, ADDR) \
    SK_ASM_ADD_Y1(A0, 0, ADDR)             \
    SK_ASM_ADD_Y1(A1, 64, ADDR) SK_ASM_ADD_Y1(A2, 128, ADDR) SK_ASM_ADD_Y1(A3, 192, ADDR)

#endif
