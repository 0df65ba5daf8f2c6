/* AVX-512 kernel of the unstructured panel layout (x86_avx512_panels.h): per quad and
 * panel, steps of four interleaved entries (one per row) in inline assembly. Compiled with
 * the AVX-512 flags, only with GCC-compatible compilers (elsewhere x86_body.h runs its C
 * panel kernel). */
#include <immintrin.h>

#include "x86_asm.h"
#include "x86_avx512_panels.h"

#if defined(SK_HAVE_PANELS_ASM)
/* X byte offset (rows of 64 floats) of the panel column in byte BYTE of %[cw], rotated
 * into bits 8-15 by ROT */
#define SK_U_ASM_DECODE(dst, ROT)      \
    "movl %k[cw], %k[" #dst "]\n\t"    \
    "roll $" #ROT ", %k[" #dst "]\n\t" \
    "andl $0xff00, %k[" #dst "]\n\t"
/* one entry of row quad slot SPLAT: its value splatted from zmm31, four FMAs with X row
 * at (xg, o) into zmm A0..A3, then the next step's offset of this row */
#define SK_U_ASM_ENTRY(SPLAT, o, A0, A1, A2, A3, ROT)             \
    "vpermilps $" #SPLAT ", %%zmm31, %%zmm30\n\t"                 \
    "vfmadd231ps (%[xg],%[" #o "]), %%zmm30, %%zmm" #A0 "\n\t"    \
    "vfmadd231ps 64(%[xg],%[" #o "]), %%zmm30, %%zmm" #A1 "\n\t"  \
    "vfmadd231ps 128(%[xg],%[" #o "]), %%zmm30, %%zmm" #A2 "\n\t" \
    "vfmadd231ps 192(%[xg],%[" #o "]), %%zmm30, %%zmm" #A3 "\n\t" SK_U_ASM_DECODE(o, ROT)
/* cnt (>= 1) steps of a quad's panel entries (4 interleaved rows: values vp, columns cp),
 * X panel rows 64 floats apart at xg, added to the quad's Y rows (y, y + ldyb bytes, ...).
 * Each step's offsets are decoded while the step before issues its FMAs (see the N:M
 * nm_tile64); reads the 4 column bytes after the last step's. */
SK_INLINE void panel_steps_asm(const float *xg, const float *vp, const uint8_t *cp, int64_t cnt,
                               float *y, int64_t ldy) {
    uint64_t cw, o0, o1, o2, o3;
    const int64_t ldyb = ldy * 4;
    __asm__ volatile(
        SK_ASM_ZERO_ZMM0_15 "movl (%[cp]), %k[cw]\n\t" SK_U_ASM_DECODE(o0, 8) SK_U_ASM_DECODE(o1, 0)
            SK_U_ASM_DECODE(o2, 24) SK_U_ASM_DECODE(
                o3,
                16) "1:\n\t"
                    "movl 4(%[cp]), %k[cw]\n\t"
                    "vbroadcastf32x4 (%[vp]), %%zmm31\n\t" SK_U_ASM_ENTRY(
                        0x00, o0, 0, 1, 2, 3, 8) SK_U_ASM_ENTRY(0x55, o1, 4, 5, 6, 7, 0)
                        SK_U_ASM_ENTRY(0xaa, o2, 8, 9, 10, 11, 24) SK_U_ASM_ENTRY(
                            0xff, o3, 12, 13, 14, 15,
                            16) "addq $16, %[vp]\n\t"
                                "addq $4, %[cp]\n\t"
                                "subq $1, %[cnt]\n\t"
                                "jnz 1b\n\t"
                                "leaq (%[y],%[ldyb],2), %[o0]\n\t" SK_ASM_ADD_Y(0, 1, 2, 3,
                                                                                "(%[y])")
                                    SK_ASM_ADD_Y(4, 5, 6, 7, "(%[y],%[ldyb])") SK_ASM_ADD_Y(
                                        8, 9, 10, 11,
                                        "(%[o0])") "addq %[ldyb], %[o0]\n\t" SK_ASM_ADD_Y(12, 13,
                                                                                          14, 15,
                                                                                          "(%[o0])")
        : [vp] "+r"(vp), [cp] "+r"(cp), [cnt] "+r"(cnt), [cw] "=&r"(cw), [o0] "=&r"(o0),
          [o1] "=&r"(o1), [o2] "=&r"(o2), [o3] "=&r"(o3)
        : [xg] "r"(xg), [y] "r"(y), [ldyb] "r"(ldyb)
        : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",
          "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "xmm30", "xmm31", "cc", "memory");
}

/* Quads [q0, q1) from the panel layout: quads in blocks of SK_PANEL_QB outside the
 * panels (each block's Y stays in cache across its panels), the steps in assembly, and
 * the entries of the quad SK_PANEL_PF ahead prefetched: consecutive quads' entries for
 * one panel lie P panels apart, which the hardware prefetcher does not follow (1.35x
 * faster with, at density 0.5). The quad-panel that ends the entries runs in C: the loop
 * reads the column word after it. */
#define SK_PANEL_QB 64
#define SK_PANEL_PF 2
static void panel_quads(const sk_csr_f32 *w, int64_t q0, int64_t q1, const float *x,
                        const float *bias, float *y, int64_t ldy) {
    const int64_t P = (w->cols + SK_PANEL_K - 1) / SK_PANEL_K,
                  total = w->panel_off[(w->rows / 4) * P];
    for (int64_t qb = q0; qb < q1; qb += SK_PANEL_QB) {
        const int64_t qe = qb + SK_PANEL_QB < q1 ? qb + SK_PANEL_QB : q1;
        for (int64_t p = 0; p < P; ++p) {
            const float *xp = x + p * SK_PANEL_K * 64;
            for (int64_t q = qb; q < qe; ++q) {
                const int64_t b0 = w->panel_off[q * P + p], b1 = w->panel_off[q * P + p + 1];
                float *yq = y + 4 * q * ldy;
                if (q + SK_PANEL_PF <
                    q1) { /* the same panel of a later quad: not in stream order */
                    const int64_t n0 = w->panel_off[(q + SK_PANEL_PF) * P + p],
                                  n1 = w->panel_off[(q + SK_PANEL_PF) * P + p + 1];
                    for (int64_t e = n0; e < n1; e += 16)
                        _mm_prefetch((const char *)(w->panel_val + e), _MM_HINT_T0);
                    for (int64_t e = n0; e < n1; e += 64)
                        _mm_prefetch((const char *)(w->panel_col + e), _MM_HINT_T0);
                }
                if (p == 0)
                    for (int r = 0; r < 4; ++r) {
                        const __m512 b = _mm512_set1_ps(bias ? bias[4 * q + r] : 0.0f);
                        for (int v = 0; v < 4; ++v) _mm512_storeu_ps(yq + r * ldy + 16 * v, b);
                    }
                if (b1 == b0) continue;
                if (b1 != total) {
                    panel_steps_asm(xp, w->panel_val + b0, w->panel_col + b0, (b1 - b0) / 4, yq,
                                    ldy);
                    continue;
                }
                for (int r = 0; r < 4; ++r) {
                    __m512 acc[4];
                    for (int v = 0; v < 4; ++v) acc[v] = _mm512_loadu_ps(yq + r * ldy + 16 * v);
                    for (int64_t e = b0 + r; e < b1; e += 4) {
                        const float *xr = xp + (int64_t)w->panel_col[e] * 64;
                        const __m512 wv = _mm512_set1_ps(w->panel_val[e]);
                        for (int v = 0; v < 4; ++v)
                            acc[v] = _mm512_fmadd_ps(wv, _mm512_loadu_ps(xr + 16 * v), acc[v]);
                    }
                    for (int v = 0; v < 4; ++v) _mm512_storeu_ps(yq + r * ldy + 16 * v, acc[v]);
                }
            }
        }
    }
}

/* Row m straight from the CSR arrays (rows outside whole quads). */
static void csr_row(const sk_csr_f32 *w, int64_t m, const float *x, const float *bias, float *y,
                    int64_t ldy) {
    __m512 acc[4];
    for (int v = 0; v < 4; ++v) acc[v] = _mm512_set1_ps(bias ? bias[m] : 0.0f);
    for (int64_t p = w->row_ptr[m]; p < w->row_ptr[m + 1]; ++p) {
        const __m512 wv = _mm512_set1_ps(w->values[p]);
        const float *xr = x + sk_col_at(w->col_idx, w->idx_bits, p) * 64;
        for (int v = 0; v < 4; ++v)
            acc[v] = _mm512_fmadd_ps(wv, _mm512_loadu_ps(xr + 16 * v), acc[v]);
    }
    for (int v = 0; v < 4; ++v) _mm512_storeu_ps(y + m * ldy + 16 * v, acc[v]);
}

void sk_f32_unstructured_panels_rows_avx512(const sk_csr_f32 *w, int64_t r0, int64_t r1,
                                            const float *x, const float *bias, float *y,
                                            int64_t ldy) {
    const int64_t q0 = (r0 + 3) / 4, q1 = r1 / 4 < w->rows / 4 ? r1 / 4 : w->rows / 4;
    int64_t m = r0;
    if (q0 < q1) {
        for (; m < 4 * q0; ++m) csr_row(w, m, x, bias, y, ldy);
        panel_quads(w, q0, q1, x, bias, y, ldy);
        m = 4 * q1;
    }
    for (; m < r1; ++m) csr_row(w, m, x, bias, y, ldy);
}
#endif
