/* AVX-512 (F, BW, VL) variant. Compiled with its own flags; called only when the
 * CPU and OS support it.
 *   n == 1: x86_gemv.h (8-wide; wider gathers are slower on the CPUs measured).
 *   n  > 1: per row, tiles of 64/32/16 columns and a masked tail; each nonzero
 *           broadcasts its value and multiplies one row of X. Several nonzeros are
 *           in flight per step so the FMA latency is hidden (U accumulator sets). */
#include <immintrin.h>

#include "internal.h"
#include "x86_gemv.h"

/* One row of W times V vectors of X columns (the last one masked by `tail` when
 * MASKED), U nonzeros per step. */
SK_INLINE void row_tile(const float *SK_RESTRICT values, const void *col, int wide, int64_t p,
                        int64_t end, const float *x, int64_t ldx, float b, float *yrow,
                        const int V, const int U, const int MASKED, __mmask16 tail) {
    __m512 acc[4][4];
    for (int u = 0; u < U; ++u)
        for (int v = 0; v < V; ++v) acc[u][v] = u == 0 ? _mm512_set1_ps(b) : _mm512_setzero_ps();
    for (; p + U <= end; p += U) {
        for (int u = 0; u < U; ++u) {
            const __m512 wv = _mm512_set1_ps(values[p + u]);
            const float *xr = x + sk_col_at(col, wide ? 32 : 16, p + u) * ldx;
            for (int v = 0; v < V; ++v) {
                const __m512 xv = MASKED && v == V - 1 ? _mm512_maskz_loadu_ps(tail, xr + 16 * v)
                                                       : _mm512_loadu_ps(xr + 16 * v);
                acc[u][v] = _mm512_fmadd_ps(wv, xv, acc[u][v]);
            }
        }
    }
    for (; p < end; ++p) {
        const __m512 wv = _mm512_set1_ps(values[p]);
        const float *xr = x + sk_col_at(col, wide ? 32 : 16, p) * ldx;
        for (int v = 0; v < V; ++v) {
            const __m512 xv = MASKED && v == V - 1 ? _mm512_maskz_loadu_ps(tail, xr + 16 * v)
                                                   : _mm512_loadu_ps(xr + 16 * v);
            acc[0][v] = _mm512_fmadd_ps(wv, xv, acc[0][v]);
        }
    }
    for (int v = 0; v < V; ++v) {
        __m512 s = acc[0][v];
        for (int u = 1; u < U; ++u) s = _mm512_add_ps(s, acc[u][v]);
        if (MASKED && v == V - 1) _mm512_mask_storeu_ps(yrow + 16 * v, tail, s);
        else _mm512_storeu_ps(yrow + 16 * v, s);
    }
}

/* Four rows of W times 64 columns of X: the rows' nonzeros are interleaved up to
 * the shortest row's length (16 independent accumulators keep both FMA pipes
 * busy while X rows arrive from L2), then each row finishes on its own. */
SK_INLINE void quad_tile64(const float *SK_RESTRICT values, const void *col, int wide,
                           const int64_t *row_ptr, int64_t m, const float *x, int64_t ldx,
                           const float *bias, float *y, int64_t ldy) {
    const int bits = wide ? 32 : 16;
    int64_t p[4], e[4];
    __m512 acc[4][4];
    int64_t common = INT64_MAX;
    for (int r = 0; r < 4; ++r) {
        p[r] = row_ptr[m + r];
        e[r] = row_ptr[m + r + 1];
        if (e[r] - p[r] < common) common = e[r] - p[r];
        const __m512 b = _mm512_set1_ps(bias ? bias[m + r] : 0.0f);
        for (int v = 0; v < 4; ++v) acc[r][v] = b;
    }
    for (int64_t s = 0; s < common; ++s) {
        for (int r = 0; r < 4; ++r) {
            const __m512 wv = _mm512_set1_ps(values[p[r] + s]);
            const float *xr = x + sk_col_at(col, bits, p[r] + s) * ldx;
            for (int v = 0; v < 4; ++v) acc[r][v] = _mm512_fmadd_ps(wv, _mm512_loadu_ps(xr + 16 * v), acc[r][v]);
        }
    }
    for (int r = 0; r < 4; ++r) {
        __m512 t[4];
        for (int v = 0; v < 4; ++v) t[v] = _mm512_setzero_ps();
        int64_t q = p[r] + common;
        for (; q + 2 <= e[r]; q += 2) {
            const __m512 w0 = _mm512_set1_ps(values[q]), w1 = _mm512_set1_ps(values[q + 1]);
            const float *x0 = x + sk_col_at(col, bits, q) * ldx, *x1 = x + sk_col_at(col, bits, q + 1) * ldx;
            for (int v = 0; v < 4; ++v) {
                acc[r][v] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(x0 + 16 * v), acc[r][v]);
                t[v] = _mm512_fmadd_ps(w1, _mm512_loadu_ps(x1 + 16 * v), t[v]);
            }
        }
        if (q < e[r]) {
            const __m512 w0 = _mm512_set1_ps(values[q]);
            const float *x0 = x + sk_col_at(col, bits, q) * ldx;
            for (int v = 0; v < 4; ++v) acc[r][v] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(x0 + 16 * v), acc[r][v]);
        }
        float *yr = y + (m + r) * ldy;
        for (int v = 0; v < 4; ++v) _mm512_storeu_ps(yr + 16 * v, _mm512_add_ps(acc[r][v], t[v]));
    }
}

/* Quads [q0, q1) times one 64-column tile from the panel layout (sparsekern.h): panels
 * outermost, so each panel of X (128 rows x 64 columns = 32 KiB) stays in L1 while every
 * quad passes over it; Y is reloaded per panel. Padding (value 0) multiplies row 0. */
#define SK_PANEL_K 128
SK_INLINE void panel_quads64(const sk_csr_f32 *w, int64_t q0, int64_t q1, const float *x,
                             int64_t ldx, const float *bias, float *y, int64_t ldy) {
    const int64_t P = (w->cols + SK_PANEL_K - 1) / SK_PANEL_K;
    for (int64_t p = 0; p < P; ++p) {
        const float *xp = x + p * SK_PANEL_K * ldx;
        for (int64_t q = q0; q < q1; ++q) {
            const int64_t b0 = w->panel_off[q * P + p], b1 = w->panel_off[q * P + p + 1];
            __m512 acc[4][4];
            for (int r = 0; r < 4; ++r) {
                float *yr = y + (4 * q + r) * ldy;
                const __m512 b = _mm512_set1_ps(bias ? bias[4 * q + r] : 0.0f);
                for (int v = 0; v < 4; ++v) acc[r][v] = p == 0 ? b : _mm512_loadu_ps(yr + 16 * v);
            }
            for (int64_t e = b0; e < b1; e += 4) {
                for (int r = 0; r < 4; ++r) {
                    const float *xr = xp + (int64_t)w->panel_col[e + r] * ldx;
                    const __m512 wv = _mm512_set1_ps(w->panel_val[e + r]);
                    for (int v = 0; v < 4; ++v)
                        acc[r][v] = _mm512_fmadd_ps(wv, _mm512_loadu_ps(xr + 16 * v), acc[r][v]);
                }
            }
            for (int r = 0; r < 4; ++r) {
                float *yr = y + (4 * q + r) * ldy;
                for (int v = 0; v < 4; ++v) _mm512_storeu_ps(yr + 16 * v, acc[r][v]);
            }
        }
    }
}

#if defined(__GNUC__)
/* X byte offset (rows of 64 floats) of the panel column in byte BYTE of %[cw], rotated
 * into bits 8-15 by ROT */
#define SK_U_ASM_DECODE(dst, ROT)                                                      \
    "movl %k[cw], %k[" #dst "]\n\t"                                                    \
    "roll $" #ROT ", %k[" #dst "]\n\t"                                                 \
    "andl $0xff00, %k[" #dst "]\n\t"
/* one entry of row quad slot SPLAT: its value splatted from zmm31, four FMAs with X row
 * at (xg, o) into zmm A0..A3, then the next step's offset of this row */
#define SK_U_ASM_ENTRY(SPLAT, o, A0, A1, A2, A3, ROT)                                  \
    "vpermilps $" #SPLAT ", %%zmm31, %%zmm30\n\t"                                      \
    "vfmadd231ps (%[xg],%[" #o "]), %%zmm30, %%zmm" #A0 "\n\t"                         \
    "vfmadd231ps 64(%[xg],%[" #o "]), %%zmm30, %%zmm" #A1 "\n\t"                       \
    "vfmadd231ps 128(%[xg],%[" #o "]), %%zmm30, %%zmm" #A2 "\n\t"                      \
    "vfmadd231ps 192(%[xg],%[" #o "]), %%zmm30, %%zmm" #A3 "\n\t"                      \
    SK_U_ASM_DECODE(o, ROT)
#define SK_U_ASM_ADD_Y(A, OFF, ADDR)                                                   \
    "vaddps " #OFF ADDR ", %%zmm" #A ", %%zmm" #A "\n\t"                               \
    "vmovups %%zmm" #A ", " #OFF ADDR "\n\t"
#define SK_U_ASM_ADD_ROW(A0, A1, A2, A3, ADDR)                                         \
    SK_U_ASM_ADD_Y(A0, 0, ADDR) SK_U_ASM_ADD_Y(A1, 64, ADDR)                           \
    SK_U_ASM_ADD_Y(A2, 128, ADDR) SK_U_ASM_ADD_Y(A3, 192, ADDR)

/* cnt (>= 1) steps of a quad's panel entries (4 interleaved rows: values vp, columns cp),
 * X panel rows 64 floats apart at xg, added to the quad's Y rows (y, y + ldyb bytes, ...).
 * Each step's offsets are decoded while the step before issues its FMAs (see the N:M
 * pair kernel); reads the 4 column bytes after the last step's. */
SK_INLINE void panel_steps_asm(const float *xg, const float *vp, const uint8_t *cp, int64_t cnt,
                               float *y, int64_t ldy) {
    uint64_t cw, o0, o1, o2, o3;
    const int64_t ldyb = ldy * 4;
    __asm__ volatile(
        "vpxord %%zmm0, %%zmm0, %%zmm0\n\t" "vpxord %%zmm1, %%zmm1, %%zmm1\n\t"
        "vpxord %%zmm2, %%zmm2, %%zmm2\n\t" "vpxord %%zmm3, %%zmm3, %%zmm3\n\t"
        "vpxord %%zmm4, %%zmm4, %%zmm4\n\t" "vpxord %%zmm5, %%zmm5, %%zmm5\n\t"
        "vpxord %%zmm6, %%zmm6, %%zmm6\n\t" "vpxord %%zmm7, %%zmm7, %%zmm7\n\t"
        "vpxord %%zmm8, %%zmm8, %%zmm8\n\t" "vpxord %%zmm9, %%zmm9, %%zmm9\n\t"
        "vpxord %%zmm10, %%zmm10, %%zmm10\n\t" "vpxord %%zmm11, %%zmm11, %%zmm11\n\t"
        "vpxord %%zmm12, %%zmm12, %%zmm12\n\t" "vpxord %%zmm13, %%zmm13, %%zmm13\n\t"
        "vpxord %%zmm14, %%zmm14, %%zmm14\n\t" "vpxord %%zmm15, %%zmm15, %%zmm15\n\t"
        "movl (%[cp]), %k[cw]\n\t"
        SK_U_ASM_DECODE(o0, 8) SK_U_ASM_DECODE(o1, 0) SK_U_ASM_DECODE(o2, 24) SK_U_ASM_DECODE(o3, 16)
        "1:\n\t"
        "movl 4(%[cp]), %k[cw]\n\t"
        "vbroadcastf32x4 (%[vp]), %%zmm31\n\t"
        SK_U_ASM_ENTRY(0x00, o0, 0, 1, 2, 3, 8)
        SK_U_ASM_ENTRY(0x55, o1, 4, 5, 6, 7, 0)
        SK_U_ASM_ENTRY(0xaa, o2, 8, 9, 10, 11, 24)
        SK_U_ASM_ENTRY(0xff, o3, 12, 13, 14, 15, 16)
        "addq $16, %[vp]\n\t" "addq $4, %[cp]\n\t"
        "subq $1, %[cnt]\n\t" "jnz 1b\n\t"
        "leaq (%[y],%[ldyb],2), %[o0]\n\t"
        SK_U_ASM_ADD_ROW(0, 1, 2, 3, "(%[y])")
        SK_U_ASM_ADD_ROW(4, 5, 6, 7, "(%[y],%[ldyb])")
        SK_U_ASM_ADD_ROW(8, 9, 10, 11, "(%[o0])")
        "addq %[ldyb], %[o0]\n\t"
        SK_U_ASM_ADD_ROW(12, 13, 14, 15, "(%[o0])")
        : [vp] "+r"(vp), [cp] "+r"(cp), [cnt] "+r"(cnt), [cw] "=&r"(cw),
          [o0] "=&r"(o0), [o1] "=&r"(o1), [o2] "=&r"(o2), [o3] "=&r"(o3)
        : [xg] "r"(xg), [y] "r"(y), [ldyb] "r"(ldyb)
        : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9",
          "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "xmm30", "xmm31", "cc", "memory");
}

/* panel_quads64 for X rows 64 floats apart: quads in blocks of SK_PANEL_QB outside the
 * panels (each block's Y stays in cache across its panels), the steps in assembly, and
 * the entries of the quad SK_PANEL_PF ahead prefetched: consecutive quads' entries for
 * one panel lie P panels apart, which the hardware prefetcher does not follow (density
 * 0.5, 4096^2, N=64 on Zen 5: 115 GFLOP/s without, 155 with). The quad-panel that ends
 * the entries runs in C: the loop reads the column word after it. */
#define SK_PANEL_QB 64
#define SK_PANEL_PF 2
SK_INLINE void panel_quads64_asm(const sk_csr_f32 *w, int64_t q0, int64_t q1, const float *x,
                                 const float *bias, float *y, int64_t ldy) {
    const int64_t P = (w->cols + SK_PANEL_K - 1) / SK_PANEL_K, total = w->panel_off[(w->rows / 4) * P];
    for (int64_t qb = q0; qb < q1; qb += SK_PANEL_QB) {
        const int64_t qe = qb + SK_PANEL_QB < q1 ? qb + SK_PANEL_QB : q1;
        for (int64_t p = 0; p < P; ++p) {
            const float *xp = x + p * SK_PANEL_K * 64;
            for (int64_t q = qb; q < qe; ++q) {
                const int64_t b0 = w->panel_off[q * P + p], b1 = w->panel_off[q * P + p + 1];
                float *yq = y + 4 * q * ldy;
                if (q + SK_PANEL_PF < q1) {   /* the same panel of a later quad: not in stream order */
                    const int64_t n0 = w->panel_off[(q + SK_PANEL_PF) * P + p], n1 = w->panel_off[(q + SK_PANEL_PF) * P + p + 1];
                    for (int64_t e = n0; e < n1; e += 16) _mm_prefetch((const char *)(w->panel_val + e), _MM_HINT_T0);
                    for (int64_t e = n0; e < n1; e += 64) _mm_prefetch((const char *)(w->panel_col + e), _MM_HINT_T0);
                }
                if (p == 0)
                    for (int r = 0; r < 4; ++r) {
                        const __m512 b = _mm512_set1_ps(bias ? bias[4 * q + r] : 0.0f);
                        for (int v = 0; v < 4; ++v) _mm512_storeu_ps(yq + r * ldy + 16 * v, b);
                    }
                if (b1 == b0) continue;
                if (b1 != total) {
                    panel_steps_asm(xp, w->panel_val + b0, w->panel_col + b0, (b1 - b0) / 4, yq, ldy);
                    continue;
                }
                for (int r = 0; r < 4; ++r) {
                    __m512 acc[4];
                    for (int v = 0; v < 4; ++v) acc[v] = _mm512_loadu_ps(yq + r * ldy + 16 * v);
                    for (int64_t e = b0 + r; e < b1; e += 4) {
                        const float *xr = xp + (int64_t)w->panel_col[e] * 64;
                        const __m512 wv = _mm512_set1_ps(w->panel_val[e]);
                        for (int v = 0; v < 4; ++v) acc[v] = _mm512_fmadd_ps(wv, _mm512_loadu_ps(xr + 16 * v), acc[v]);
                    }
                    for (int v = 0; v < 4; ++v) _mm512_storeu_ps(yq + r * ldy + 16 * v, acc[v]);
                }
            }
        }
    }
}
#endif

/* Row m, columns [j0, n): tiles of 64/32/16 and a masked tail. */
SK_INLINE void row_cols(const sk_csr_f32 *w, int64_t m, const float *x, int64_t j0, int64_t n,
                        int64_t ldx, const float *bias, float *y, int64_t ldy, int wide) {
    const float *values = w->values;
    const void *col = w->col_idx;
    const int64_t p = w->row_ptr[m], end = w->row_ptr[m + 1];
    const float b = bias ? bias[m] : 0.0f;
    float *yrow = y + m * ldy;
    int64_t j = j0;
    for (; j + 64 <= n; j += 64) row_tile(values, col, wide, p, end, x + j, ldx, b, yrow + j, 4, 2, 0, 0);
    if (j + 32 <= n) { row_tile(values, col, wide, p, end, x + j, ldx, b, yrow + j, 2, 4, 0, 0); j += 32; }
    if (j + 16 <= n) { row_tile(values, col, wide, p, end, x + j, ldx, b, yrow + j, 1, 4, 0, 0); j += 16; }
    if (j < n) {
        const __mmask16 tail = (__mmask16)((1u << (n - j)) - 1u);
        row_tile(values, col, wide, p, end, x + j, ldx, b, yrow + j, 1, 4, 1, tail);
    }
}

SK_INLINE void spmm_rows(const sk_csr_f32 *w, int64_t r0, int64_t r1, const float *x, int64_t n,
                         int64_t ldx, const float *bias, float *y, int64_t ldy, int wide) {
    const int64_t n64 = n / 64 * 64;
    int64_t m = r0;
    /* quads pay on long rows; on short ones (1x1 convolutions with few input channels)
     * their leftover loops cost more than the extra parallelism gains */
    if (n64 > 0 && w->panel_off) {
        const int64_t q0 = (r0 + 3) / 4, q1 = r1 / 4 < w->rows / 4 ? r1 / 4 : w->rows / 4;
        if (q0 < q1) {
            for (; m < 4 * q0; ++m) row_cols(w, m, x, 0, n, ldx, bias, y, ldy, wide);
#if defined(__GNUC__)
            if (ldx == 64)
                panel_quads64_asm(w, q0, q1, x, bias, y, ldy);
            else
#endif
            for (int64_t j = 0; j < n64; j += 64) panel_quads64(w, q0, q1, x + j, ldx, bias, y + j, ldy);
            if (n64 < n)
                for (int64_t r = 4 * q0; r < 4 * q1; ++r) row_cols(w, r, x, n64, n, ldx, bias, y, ldy, wide);
            m = 4 * q1;
        }
    } else if (n64 > 0 && w->nnz >= 48 * w->rows) {
        /* quads start at multiples of 4, and the operator splits rows between threads
         * there too: each row is then summed in the same order whatever the thread count */
        for (; m % 4 != 0 && m < r1; ++m) row_cols(w, m, x, 0, n, ldx, bias, y, ldy, wide);
        for (; m + 4 <= r1; m += 4) {
            for (int64_t j = 0; j < n64; j += 64)
                quad_tile64(w->values, w->col_idx, wide, w->row_ptr, m, x + j, ldx, bias, y + j, ldy);
            if (n64 < n)
                for (int64_t r = m; r < m + 4; ++r) row_cols(w, r, x, n64, n, ldx, bias, y, ldy, wide);
        }
    }
    for (; m < r1; ++m) row_cols(w, m, x, 0, n, ldx, bias, y, ldy, wide);
}

void sk_f32_spmm_unstructured_avx512(const sk_csr_f32 *w, int64_t r0, int64_t r1, const float *x,
                                     int64_t n, int64_t ldx, const float *bias, float *y, int64_t ldy) {
    const int wide = w->idx_bits == 32;
    if (n == 1 && ldx == 1) {
        if (wide) sk_x86_gemv_rows(w, r0, r1, x, bias, y, ldy, 1);
        else sk_x86_gemv_rows(w, r0, r1, x, bias, y, ldy, 0);
    } else {
        if (wide) spmm_rows(w, r0, r1, x, n, ldx, bias, y, ldy, 1);
        else spmm_rows(w, r0, r1, x, n, ldx, bias, y, ldy, 0);
    }
}
