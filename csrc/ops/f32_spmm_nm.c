/* Operator: Y = W @ X (+ bias) for N:M structured W. Picks the ISA variant, splits
 * rows across threads (in blocks of 4, the kernels' row block) and, for n > 1, copies X
 * in blocks of up to SK_NM_NC columns to a 64-byte aligned buffer whose rows are
 * 64-byte aligned too; makes non-finite inputs propagate as dense BLAS would.
 * Compiled with no ISA flags.
 *
 * Why the copy for every n > 1: each slot of W loads one row segment of X per vector of
 * columns; numpy's large arrays start 16 bytes into a page, so every 64-byte load of X
 * in place straddles two cache lines. Aligned, the same kernel ran 1.6x faster; the copy
 * costs K*n*4 bytes, under 1% of the multiply. Blocks of 64 columns keep the block
 * within L2 (as in the unstructured operator). */
#include <stdlib.h>
#include <string.h>

#include "nm_internal.h"

#if defined(_OPENMP)
#include <omp.h>
#endif

#define SK_NM_NC 64
/* n in [2, xt_max_n(w)] runs the transposed-X small-n kernel where the ISA has one
 * (AVX-512), larger n the tiled one: up to n = 8 where a step's X span is one permute
 * window of 32 floats (2:4, 4:8, 8:16), else up to n = 4 (the measured crossovers). */
#ifndef SK_NM_XT_MAX_N
#define SK_NM_XT_MAX_N 8
#endif
static int64_t xt_max_n(const sk_nm_f32 *w) {
    return (16 / w->n) * w->m <= 32 ? SK_NM_XT_MAX_N : (SK_NM_XT_MAX_N < 4 ? SK_NM_XT_MAX_N : 4);
}
/* below this many X elements the copy is not worth its call overhead */
#define SK_NM_MIN_COPY 4096
#define SK_NM_MAX_PACK_COLS (1 << 20)
#define SK_NM_MIN_PARALLEL_WORK (1 << 16)

static sk_f32_spmm_nm_ukernel ukernel_for(int isa) {
    switch (isa) {
    case SK_ISA_SCALAR: return sk_f32_spmm_nm_scalar;
#if defined(SK_HAVE_AVX2)
    case SK_ISA_AVX2: return sk_f32_spmm_nm_avx2;
#endif
#if defined(SK_HAVE_AVX512)
    case SK_ISA_AVX512: return sk_f32_spmm_nm_avx512;
#endif
#if defined(SK_HAVE_NEON)
    case SK_ISA_NEON: return sk_f32_spmm_nm_neon;
#endif
#if defined(SK_HAVE_WASMSIMD)
    case SK_ISA_WASMSIMD: return sk_f32_spmm_nm_wasmsimd;
#endif
    default: return NULL;
    }
}

static const sk_tiling *tiling_for(int isa) {
    switch (isa) {
    case SK_ISA_SCALAR: return &sk_f32_spmm_nm_tiling_scalar;
#if defined(SK_HAVE_AVX2)
    case SK_ISA_AVX2: return &sk_f32_spmm_nm_tiling_avx2;
#endif
#if defined(SK_HAVE_AVX512)
    case SK_ISA_AVX512: return &sk_f32_spmm_nm_tiling_avx512;
#endif
#if defined(SK_HAVE_NEON)
    case SK_ISA_NEON: return &sk_f32_spmm_nm_tiling_neon;
#endif
#if defined(SK_HAVE_WASMSIMD)
    case SK_ISA_WASMSIMD: return &sk_f32_spmm_nm_tiling_wasmsimd;
#endif
    default: return NULL;
    }
}

/* The variant's tiling and the operator's column block (sparsekern.h: sk_kernel_tiling). */
int sk_f32_spmm_nm_tiling(int isa, sk_tiling *out) {
    const sk_tiling *t = tiling_for(isa);
    if (!t) return SK_ERR_UNSUPPORTED;
    *out = *t;
    out->col_block = SK_NM_NC;
    return SK_OK;
}

/* Row stride of the X buffer for a block of cn columns: 64-byte rows (32 when cn <= 8,
 * whose loads then stay within one line); cn == 1 keeps 1 (the batch-1 kernel). */
static int64_t buf_ld(int64_t cn) {
    if (cn == 1) return 1;
    if (cn <= 8) return 8;
    return (cn + 15) & ~(int64_t)15;
}

/* Rows [r0, r1) of thread t of T, in blocks of 4 rows (the kernels' row block). */
static void thread_rows(const sk_nm_f32 *w, int t, int T, int64_t *r0, int64_t *r1) {
    const int64_t blocks = (w->rows + 3) / 4;
    *r0 = blocks * t / T * 4;
    *r1 = blocks * (t + 1) / T * 4;
    if (*r1 > w->rows) *r1 = w->rows;
}

static void run_thread(sk_f32_spmm_nm_ukernel uk, const sk_nm_f32 *w, int t, int T, sk_xview x,
                       int64_t n, const float *bias, sk_yview y, float *buf, int64_t nc,
                       float *tile, uint32_t *nonfinite) {
    int64_t r0, r1;
    thread_rows(w, t, T, &r0, &r1);
    if (!buf) {
        if (r0 < r1) SK_RUN_ROWS(uk, w, r0, r1, x.p, n, x.sk, bias, y, 0, tile);
        return;
    }
    uint32_t bits = 0; /* X is scanned for inf/NaN while it is copied */
    for (int64_t c0 = 0; c0 < n; c0 += nc) {
        const int64_t cn = n - c0 < nc ? n - c0 : nc;
        const int64_t ldb = buf_ld(cn);
        bits |= sk_copy_x_block(buf, ldb, x, w->cols, c0, cn);
        if (r0 < r1) SK_RUN_ROWS(uk, w, r0, r1, buf, cn, ldb, bias, y, c0, tile);
#pragma omp barrier
    }
#pragma omp atomic update
    *nonfinite |= bits;
}

/* Small n: the batch-1 kernel's permutes run once per column on X transposed, sharing
 * the position decode and value loads (see x86_avx512.c); NULL: no such variant. */
static sk_f32_spmm_nm_ukernel xt_ukernel_for(int isa) {
#if defined(SK_HAVE_AVX512)
    if (isa == SK_ISA_AVX512) return sk_f32_spmm_nm_avx512_xt;
#endif
    (void)isa;
    return NULL;
}

static void run_rows(sk_f32_spmm_nm_ukernel uk, const sk_nm_f32 *w, int t, int T, const float *x,
                     int64_t n, int64_t ldx, const float *bias, sk_yview y, float *tile) {
    int64_t r0, r1;
    thread_rows(w, t, T, &r0, &r1);
    if (r0 < r1) SK_RUN_ROWS(uk, w, r0, r1, x, n, ldx, bias, y, 0, tile);
}

/* y[r, j] becomes NaN when row r of W has no stored slot at some k with x[k, j]
 * non-finite (dense BLAS multiplies that zero by inf/NaN). Rare path. */
static int propagate_nonfinite(const sk_nm_f32 *w, sk_xview x, int64_t n, sk_yview y) {
    unsigned char *bad = (unsigned char *)sk_malloc_n(w->cols, 1);
    if (!bad) return SK_ERR_NOMEM;
    const union {
        uint32_t u;
        float f;
    } qnan = {0x7fc00000u};
    const int64_t slots = sk_nm_groups(w) * w->n;
    for (int64_t j = 0; j < n; ++j) {
        const int64_t nbad = sk_mark_nonfinite_column(x, w->cols, j, bad);
        if (nbad == 0) continue;
        for (int64_t r = 0; r < w->rows; ++r) {
            const uint8_t *meta = w->meta + r * w->meta_stride;
            int64_t covered = 0;
            for (int64_t s = 0; s < slots; ++s) {
                const int64_t col = (s / w->n) * w->m + sk_nm_pos(meta, s, w->pos_bits);
                if (col < w->cols) covered += bad[col];
            }
            if (covered < nbad) y.p[r * y.sm + j * y.sn] = qnan.f;
        }
    }
    free(bad);
    return SK_OK;
}

static int pos_bits_for(int m) { return m == 4 ? 2 : m == 8 ? 3 : m == 16 ? 4 : 0; }

int sk_f32_spmm_nm_strided_isa(int isa, const sk_nm_f32 *w, const float *xp, int64_t n,
                               int64_t x_stride_k, int64_t x_stride_n, const float *bias, float *yp,
                               int64_t y_stride_m, int64_t y_stride_n) {
    if (!w || n < 0 || w->rows < 0 || w->cols < 0 || w->cols > INT64_MAX - 16)
        return SK_ERR_INVALID_ARG;
    if (w->n < 1 || w->n >= w->m || pos_bits_for(w->m) == 0 || w->pos_bits != pos_bits_for(w->m))
        return SK_ERR_INVALID_ARG;
    /* the sizes of values and meta (and every offset into them) fit int64 */
    const int64_t slots = sk_mul_nn(sk_nm_groups(w), w->n);
    if (slots < 0 || sk_mul_nn(w->rows, slots) < 0 || sk_mul_nn(w->rows, w->meta_stride) < 0)
        return SK_ERR_INVALID_ARG;
    const int64_t meta_bits = sk_mul_nn(slots, w->pos_bits),
                  stride_bits = sk_mul_nn(w->meta_stride, 8);
    if (w->meta_stride % 8 != 0 || meta_bits < 0 || stride_bits < meta_bits)
        return SK_ERR_INVALID_ARG;
    if (n == 0 || w->rows == 0) return SK_OK;
    if (!sk_layout_valid(w->cols, n, x_stride_k, x_stride_n) ||
        !sk_layout_valid(w->rows, n, y_stride_m, y_stride_n) || !yp || (w->cols > 0 && !xp))
        return SK_ERR_INVALID_ARG;
    if (slots > 0 && (!w->values || !w->meta)) return SK_ERR_INVALID_ARG;
    if (!sk_isa_supported(isa)) return SK_ERR_UNSUPPORTED;
    sk_f32_spmm_nm_ukernel uk = ukernel_for(isa);
    if (!uk) return SK_ERR_UNSUPPORTED;
    /* one column: both layouts are the same vector */
    const sk_xview x = {xp, x_stride_k, n == 1 ? 1 : x_stride_n};
    const sk_yview y = {yp, y_stride_m, n == 1 ? 1 : y_stride_n};

    int nt = sk_threads_current();
    const double work = ((double)slots + 1.0) * (double)w->rows * (double)n;
    if (work < SK_NM_MIN_PARALLEL_WORK) nt = 1;
    const int64_t blocks = (w->rows + 3) / 4;
    if (nt > blocks) nt = (int)blocks;
    float *tiles = NULL;
    if (y.sn != 1) {
        tiles = (float *)sk_aligned_alloc_n((int64_t)nt * SK_Y_TILE_ROWS * SK_Y_TILE_COLS,
                                            sizeof(float));
        if (!tiles) return SK_ERR_NOMEM;
    }
#define SK_NM_TILE(t) (tiles ? tiles + (int64_t)(t) * SK_Y_TILE_ROWS * SK_Y_TILE_COLS : NULL)
    sk_f32_spmm_nm_ukernel xuk = xt_ukernel_for(isa);
    if (xuk && n >= 2 && n <= xt_max_n(w) && w->cols > 0 && w->cols <= SK_NM_MAX_PACK_COLS) {
        const int64_t ldxt = (w->cols + 15) & ~(int64_t)15;
        float *xt = (float *)sk_aligned_alloc_n(n * ldxt, sizeof(float));
        if (!xt) {
            free(tiles);
            return SK_ERR_NOMEM;
        }
        if (x.sk == 1)
            for (int64_t c = 0; c < n; ++c)
                for (int64_t k = 0; k < w->cols; ++k) xt[c * ldxt + k] = x.p[k + c * x.sn];
        else
            for (int64_t k = 0; k < w->cols; ++k)
                for (int64_t c = 0; c < n; ++c) xt[c * ldxt + k] = x.p[k * x.sk + c * x.sn];
#if defined(_OPENMP)
        if (nt > 1) {
#pragma omp parallel num_threads(nt)
            run_rows(xuk, w, omp_get_thread_num(), omp_get_num_threads(), xt, n, ldxt, bias, y,
                     SK_NM_TILE(omp_get_thread_num()));
        } else
#endif
        {
            run_rows(xuk, w, 0, 1, xt, n, ldxt, bias, y, tiles);
        }
        free(xt);
        free(tiles);
        if (sk_xview_has_nonfinite(x, w->cols, n)) return propagate_nonfinite(w, x, n, y);
        return SK_OK;
    }
    /* Batch 1 reads x in 32-float windows: from a numpy array that starts 16 bytes into
     * a cache line every window straddles two lines, which measured 2x slower (1:8,
     * 4096^2). An aligned copy of x costs 4*K bytes. */
    sk_xview xk = x;
    float *xa = NULL;
    if (n == 1 && w->cols > 0 && w->cols <= SK_NM_MAX_PACK_COLS &&
        ((uintptr_t)x.p % 64 != 0 || x.sk != 1)) {
        xa = (float *)sk_aligned_alloc_n(w->cols, sizeof(float));
        if (!xa) {
            free(tiles);
            return SK_ERR_NOMEM;
        }
        for (int64_t k = 0; k < w->cols; ++k) xa[k] = x.p[k * x.sk];
        xk.p = xa;
        xk.sk = 1;
    }
    /* X not row-major is always copied (the kernels read it row-major) */
    float *buf = NULL;
    uint32_t nonfinite = 0;
    const int64_t nc = sk_block_cols(x, w->cols, SK_NM_NC, SK_NM_MAX_PACK_COLS);
    if (n > 1 && w->cols > 0 &&
        (x.sn != 1 ||
         (w->cols <= SK_NM_MAX_PACK_COLS && (n > SK_NM_NC || w->cols * n >= SK_NM_MIN_COPY)))) {
        const int64_t ld = buf_ld(n < nc ? n : nc);
        buf = (float *)sk_aligned_alloc_n(w->cols * ld, sizeof(float));
        if (!buf) {
            free(tiles);
            return SK_ERR_NOMEM;
        }
    }
#if defined(_OPENMP)
    if (nt > 1) {
#pragma omp parallel num_threads(nt)
        run_thread(uk, w, omp_get_thread_num(), omp_get_num_threads(), xk, n, bias, y, buf, nc,
                   SK_NM_TILE(omp_get_thread_num()), &nonfinite);
    } else
#endif
    {
        run_thread(uk, w, 0, 1, xk, n, bias, y, buf, nc, tiles, &nonfinite);
    }
#undef SK_NM_TILE
    const int copied = buf != NULL;
    free(buf);
    free(xa);
    free(tiles);
    if (w->cols > 0 &&
        (copied ? (nonfinite & 0x80000000u) != 0 : sk_xview_has_nonfinite(x, w->cols, n)))
        return propagate_nonfinite(w, x, n, y);
    return SK_OK;
}

int sk_f32_spmm_nm_strided(const sk_nm_f32 *w, const float *x, int64_t n, int64_t x_stride_k,
                           int64_t x_stride_n, const float *bias, float *y, int64_t y_stride_m,
                           int64_t y_stride_n) {
    return sk_f32_spmm_nm_strided_isa(sk_isa_current(), w, x, n, x_stride_k, x_stride_n, bias, y,
                                      y_stride_m, y_stride_n);
}

int sk_f32_spmm_nm_isa(int isa, const sk_nm_f32 *w, const float *x, int64_t n, int64_t ldx,
                       const float *bias, float *y, int64_t ldy) {
    return sk_f32_spmm_nm_strided_isa(isa, w, x, n, ldx, 1, bias, y, ldy, 1);
}

int sk_f32_spmm_nm(const sk_nm_f32 *w, const float *x, int64_t n, int64_t ldx, const float *bias,
                   float *y, int64_t ldy) {
    return sk_f32_spmm_nm_isa(sk_isa_current(), w, x, n, ldx, bias, y, ldy);
}
