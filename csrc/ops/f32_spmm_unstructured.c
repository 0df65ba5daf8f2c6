/* Operator: Y = W @ X (+ bias) for unstructured W. Picks the ISA variant, splits
 * rows across threads and columns into cache-sized blocks, and makes non-finite
 * inputs propagate as dense BLAS would. Compiled with no ISA flags. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#if defined(_OPENMP)
#include <omp.h>
#endif

/* Wider X is processed in blocks of SK_NC columns, each first copied to a contiguous
 * buffer: every nonzero of W reads one row of the block at random, and rows that are
 * SK_NC*4 bytes apart (rather than ldx*4) keep the block within L2 and the TLB. That
 * copy is what makes n = 256 run at the same rate per column as n = 64. */
#define SK_NC 64
#define SK_MAX_PACK_COLS (1 << 20)
/* Below this many multiply-adds a parallel region costs more than it saves. */
#define SK_MIN_PARALLEL_WORK (1 << 16)

static sk_f32_spmm_unstructured_ukernel ukernel_for(int isa) {
    switch (isa) {
    case SK_ISA_SCALAR: return sk_f32_spmm_unstructured_scalar;
#if defined(SK_HAVE_AVX2)
    case SK_ISA_AVX2: return sk_f32_spmm_unstructured_avx2;
#endif
#if defined(SK_HAVE_AVX512)
    case SK_ISA_AVX512: return sk_f32_spmm_unstructured_avx512;
#endif
#if defined(SK_HAVE_NEON)
    case SK_ISA_NEON: return sk_f32_spmm_unstructured_neon;
#endif
#if defined(SK_HAVE_WASMSIMD)
    case SK_ISA_WASMSIMD: return sk_f32_spmm_unstructured_wasmsimd;
#endif
    default: return NULL;
    }
}

static const sk_tiling *tiling_for(int isa) {
    switch (isa) {
    case SK_ISA_SCALAR: return &sk_f32_spmm_unstructured_tiling_scalar;
#if defined(SK_HAVE_AVX2)
    case SK_ISA_AVX2: return &sk_f32_spmm_unstructured_tiling_avx2;
#endif
#if defined(SK_HAVE_AVX512)
    case SK_ISA_AVX512: return &sk_f32_spmm_unstructured_tiling_avx512;
#endif
#if defined(SK_HAVE_NEON)
    case SK_ISA_NEON: return &sk_f32_spmm_unstructured_tiling_neon;
#endif
#if defined(SK_HAVE_WASMSIMD)
    case SK_ISA_WASMSIMD: return &sk_f32_spmm_unstructured_tiling_wasmsimd;
#endif
    default: return NULL;
    }
}

/* The variant's tiling and the operator's column block (sparsekern.h: sk_kernel_tiling). */
int sk_f32_spmm_unstructured_tiling(int isa, sk_tiling *out) {
    const sk_tiling *t = tiling_for(isa);
    if (!t) return SK_ERR_UNSUPPORTED;
    *out = *t;
    out->col_block = SK_NC;
    return SK_OK;
}

/* First row whose work starts at or after `target`, work(row) = row_ptr[row] + row
 * (the + row charges a little for empty rows, which still write output). */
static int64_t split_rows(const int64_t *row_ptr, int64_t rows, int64_t target) {
    int64_t lo = 0, hi = rows;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (row_ptr[mid] + mid < target) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* The work of thread t of T (also called outside any parallel region with t=0, T=1:
 * the orphaned omp directives then bind to a team of one). */
static void run_thread(sk_f32_spmm_unstructured_ukernel uk, const sk_csr_f32 *w, int t, int T,
                       sk_xview x, int64_t n, const float *bias, sk_yview y, float *buf, int64_t nc,
                       float *tile, uint32_t *nonfinite, uint32_t *blockbits) {
    const int64_t rows = w->rows, total = w->nnz + rows;
    /* split points at multiples of 4 rows (see the kernels' row quads) */
    const int64_t r0 = t == 0 ? 0 : split_rows(w->row_ptr, rows, total * t / T) / 4 * 4;
    const int64_t r1 =
        t == T - 1 ? rows : split_rows(w->row_ptr, rows, total * (t + 1) / T) / 4 * 4;
    if (!buf) {
        if (r0 < r1) SK_RUN_ROWS(uk, w, r0, r1, x.p, n, x.sk, bias, y, 0, tile);
        return;
    }
    uint32_t bits = 0; /* X is scanned for inf/NaN while it is copied */
    for (int64_t c0 = 0; c0 < n; c0 += nc) {
        const int64_t cn = n - c0 < nc ? n - c0 : nc;
        const int64_t ldb = (cn + 15) / 16 * 16; /* rows start on cache lines */
        const uint32_t bb = sk_copy_x_block(buf, ldb, x, w->cols, c0, cn);
        bits |= bb;
        const sk_csr_f32 *wk = w;
        sk_csr_f32 wl;
        if (blockbits) { /* the whole block's scan (each thread copied a part of it) */
            uint32_t *slot = blockbits + c0 / nc, all;
#pragma omp atomic update
            *slot |= bb;
#pragma omp barrier
#pragma omp atomic read
            all = *slot;
            if (all & 0x80000000u) {
                wl = *w;
                wl.panel_off = NULL;
                wk = &wl;
            }
        }
#if !defined(_OPENMP)
        (void)blockbits;
#endif
        if (r0 < r1) SK_RUN_ROWS(uk, wk, r0, r1, buf, cn, ldb, bias, y, c0, tile);
#pragma omp barrier
    }
#pragma omp atomic update
    *nonfinite |= bits;
}

/* Dense BLAS computes 0 * inf = NaN and 0 * NaN = NaN for every zero of W; a sparse
 * kernel skips them. Repair: y[m, j] becomes NaN when row m of W lacks a stored entry
 * at some k with x[k, j] non-finite. Rare path, O(nnz) per affected column. */
static int propagate_nonfinite(const sk_csr_f32 *w, sk_xview x, int64_t n, sk_yview y) {
    unsigned char *bad = (unsigned char *)sk_malloc_n(w->cols, 1);
    if (!bad) return SK_ERR_NOMEM;
    const union {
        uint32_t u;
        float f;
    } qnan = {0x7fc00000u};
    for (int64_t j = 0; j < n; ++j) {
        const int64_t nbad = sk_mark_nonfinite_column(x, w->cols, j, bad);
        if (nbad == 0) continue;
        for (int64_t m = 0; m < w->rows; ++m) {
            int64_t covered = 0;
            for (int64_t p = w->row_ptr[m]; p < w->row_ptr[m + 1]; ++p)
                covered += bad[sk_col_at(w->col_idx, w->idx_bits, p)];
            if (covered < nbad) y.p[m * y.sm + j * y.sn] = qnan.f;
        }
    }
    free(bad);
    return SK_OK;
}

/* ---- the panel layout (see sparsekern.h) */

#define SK_PANEL_K 128 /* as in the kernels' x86_avx512_panels.h */

static int64_t panel_count(const sk_csr_f32 *w) { return (w->cols + SK_PANEL_K - 1) / SK_PANEL_K; }

/* Calls visit(q, p, lens[4], starts[4]) for every quad and panel, in layout order. */
#define SK_FOR_EACH_PANEL_BLOCK(w, BODY)                                                     \
    do {                                                                                     \
        const int64_t quads_ = (w)->rows / 4, P_ = panel_count(w);                           \
        for (int64_t q = 0; q < quads_; ++q) {                                               \
            int64_t cur[4];                                                                  \
            for (int r = 0; r < 4; ++r) cur[r] = (w)->row_ptr[4 * q + r];                    \
            for (int64_t p = 0; p < P_; ++p) {                                               \
                const int64_t kend = (p + 1) * SK_PANEL_K;                                   \
                int64_t st[4], len[4], maxlen = 0;                                           \
                for (int r = 0; r < 4; ++r) {                                                \
                    const int64_t end = (w)->row_ptr[4 * q + r + 1];                         \
                    int64_t e = cur[r];                                                      \
                    while (e < end && sk_col_at((w)->col_idx, (w)->idx_bits, e) < kend) ++e; \
                    st[r] = cur[r];                                                          \
                    len[r] = e - cur[r];                                                     \
                    if (len[r] > maxlen) maxlen = len[r];                                    \
                    cur[r] = e;                                                              \
                }                                                                            \
                BODY                                                                         \
            }                                                                                \
        }                                                                                    \
    } while (0)

int64_t sk_f32_unstructured_panels_size(const sk_csr_f32 *w) {
    if (!w || w->rows < 4 || w->cols <= 0 || !w->row_ptr) return SK_ERR_INVALID_ARG;
    int64_t total = 0;
    SK_FOR_EACH_PANEL_BLOCK(w, {
        (void)st;
        (void)len;
        total += 4 * maxlen;
    });
    return total;
}

int sk_f32_unstructured_panels_build(const sk_csr_f32 *w, int64_t *panel_off, float *panel_val,
                                     uint8_t *panel_col) {
    if (!w || w->rows < 4 || w->cols <= 0 || !w->row_ptr || !panel_off) return SK_ERR_INVALID_ARG;
    int64_t pos = 0, block = 0;
    panel_off[0] = 0;
    SK_FOR_EACH_PANEL_BLOCK(w, {
        for (int64_t s = 0; s < maxlen; ++s)
            for (int r = 0; r < 4; ++r, ++pos) {
                if (s < len[r]) {
                    panel_val[pos] = w->values[st[r] + s];
                    panel_col[pos] =
                        (uint8_t)(sk_col_at(w->col_idx, w->idx_bits, st[r] + s) - p * SK_PANEL_K);
                } else {
                    panel_val[pos] = 0.0f;
                    panel_col[pos] = 0;
                }
            }
        panel_off[++block] = pos;
    });
    return SK_OK;
}

int sk_f32_spmm_unstructured_strided_isa(int isa, const sk_csr_f32 *w, const float *xp, int64_t n,
                                         int64_t x_stride_k, int64_t x_stride_n, const float *bias,
                                         float *yp, int64_t y_stride_m, int64_t y_stride_n) {
    if (!w || n < 0 || w->rows < 0 || w->cols < 0 || w->nnz < 0) return SK_ERR_INVALID_ARG;
    if (w->idx_bits != 16 && w->idx_bits != 32) return SK_ERR_INVALID_ARG;
    if (n == 0 || w->rows == 0) return SK_OK;
    if (!sk_layout_valid(w->cols, n, x_stride_k, x_stride_n) ||
        !sk_layout_valid(w->rows, n, y_stride_m, y_stride_n) || !yp || (w->cols > 0 && !xp) ||
        !w->row_ptr)
        return SK_ERR_INVALID_ARG;
    if (w->nnz > 0 && (!w->col_idx || !w->values)) return SK_ERR_INVALID_ARG;
    if (!sk_isa_supported(isa)) return SK_ERR_UNSUPPORTED;
    sk_f32_spmm_unstructured_ukernel uk = ukernel_for(isa);
    if (!uk) return SK_ERR_UNSUPPORTED;
    /* one column: both layouts are the same vector */
    sk_xview x = {xp, x_stride_k, n == 1 ? 1 : x_stride_n};
    sk_yview y = {yp, y_stride_m, n == 1 ? 1 : y_stride_n};

    const int64_t rows = w->rows;
    int nt = sk_threads_current();
    const double work = ((double)w->nnz + (double)rows) * (double)n;
    if (work < SK_MIN_PARALLEL_WORK) nt = 1;
    if (nt > rows) nt = (int)rows;
    /* Copy X block by block when it is wider than a block, not row-major, or when its rows
     * are not 64-byte aligned (numpy's large arrays start 16 bytes into a page): every
     * 64-byte load of an unaligned row touches two cache lines, which costs more than
     * the copy. Batch 1 is used in place (its loads are scalar). */
    float *buf = NULL, *tiles = NULL;
    uint32_t nonfinite = 0, *blockbits = NULL;
    const int aligned = x.sn == 1 && ((uintptr_t)x.p % 64 == 0) && (x.sk % 16 == 0);
    /* The kernels read X row-major: any other X is copied, in narrower blocks when it is
     * too long for SK_NC columns (the buffer never exceeds SK_MAX_PACK_COLS * SK_NC). */
    const int64_t nc = sk_block_cols(x, w->cols, SK_NC, SK_MAX_PACK_COLS);
    if (w->cols > 0 &&
        (x.sn != 1 || ((n > SK_NC || (n >= 2 && !aligned)) && w->cols <= SK_MAX_PACK_COLS))) {
        buf = (float *)sk_aligned_alloc_n(w->cols * ((nc + 15) / 16 * 16), sizeof(float));
        if (!buf) return SK_ERR_NOMEM;
    }
    if (y.sn != 1) {
        tiles = (float *)sk_aligned_alloc_n((int64_t)nt * SK_Y_TILE_ROWS * SK_Y_TILE_COLS,
                                            sizeof(float));
        if (!tiles) {
            free(buf);
            return SK_ERR_NOMEM;
        }
    }
    /* The AVX-512 panel kernel multiplies padding (value 0) by a real row of X: a block of
     * X with inf or NaN runs without the panel layout (known from the copy, else scanned). */
    sk_csr_f32 wfinite;
    if (w->panel_off && n >= 64) {
        if (buf) {
            blockbits = (uint32_t *)calloc(sk_bytes((n - 1) / nc + 1, 1), sizeof(uint32_t));
            if (!blockbits) {
                free(buf);
                free(tiles);
                return SK_ERR_NOMEM;
            }
        } else if (sk_xview_has_nonfinite(x, w->cols, n)) {
            wfinite = *w;
            wfinite.panel_off = NULL;
            w = &wfinite;
        }
    }
#if defined(_OPENMP)
    if (nt > 1) {
#pragma omp parallel num_threads(nt)
        {
            const int t = omp_get_thread_num();
            run_thread(uk, w, t, omp_get_num_threads(), x, n, bias, y, buf, nc,
                       tiles ? tiles + (int64_t)t * SK_Y_TILE_ROWS * SK_Y_TILE_COLS : NULL,
                       &nonfinite, blockbits);
        }
    } else
#endif
    {
        run_thread(uk, w, 0, 1, x, n, bias, y, buf, nc, tiles, &nonfinite, blockbits);
    }
    if (!buf && sk_xview_has_nonfinite(x, w->cols, n)) nonfinite |= 0x80000000u;
    free(buf);
    free(tiles);
    free(blockbits);
    if (nonfinite & 0x80000000u) return propagate_nonfinite(w, x, n, y);
    return SK_OK;
}

int sk_f32_spmm_unstructured_strided(const sk_csr_f32 *w, const float *x, int64_t n,
                                     int64_t x_stride_k, int64_t x_stride_n, const float *bias,
                                     float *y, int64_t y_stride_m, int64_t y_stride_n) {
    return sk_f32_spmm_unstructured_strided_isa(sk_isa_current(), w, x, n, x_stride_k, x_stride_n,
                                                bias, y, y_stride_m, y_stride_n);
}

int sk_f32_spmm_unstructured_isa(int isa, const sk_csr_f32 *w, const float *x, int64_t n,
                                 int64_t ldx, const float *bias, float *y, int64_t ldy) {
    return sk_f32_spmm_unstructured_strided_isa(isa, w, x, n, ldx, 1, bias, y, ldy, 1);
}

int sk_f32_spmm_unstructured(const sk_csr_f32 *w, const float *x, int64_t n, int64_t ldx,
                             const float *bias, float *y, int64_t ldy) {
    return sk_f32_spmm_unstructured_isa(sk_isa_current(), w, x, n, ldx, bias, y, ldy);
}
