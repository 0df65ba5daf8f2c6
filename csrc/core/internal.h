/* Internal declarations shared by the core, the operators and the kernels. */
#ifndef SK_INTERNAL_H
#define SK_INTERNAL_H

#include <stddef.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include "sparsekern.h"

#if defined(__GNUC__)
#define SK_INLINE static inline __attribute__((always_inline))
#define SK_NOINLINE static __attribute__((noinline))
#define SK_RESTRICT __restrict__
#else
#define SK_INLINE static inline
#define SK_NOINLINE static
#define SK_RESTRICT
#endif

/* A microkernel computes rows [row_begin, row_end) of Y[:, 0:n] = W @ X[:, 0:n] (+ bias).
 * It handles any n >= 1, any row lengths (empty rows write bias or 0), reads
 * nothing past the arrays' ends and writes only Y[row_begin:row_end, 0:n].
 * Non-finite inputs are the operator's business, not the kernel's. */
typedef void sk_f32_spmm_unstructured_ukernel_fn(const sk_csr_f32 *w, int64_t row_begin,
                                                 int64_t row_end, const float *x, int64_t n,
                                                 int64_t ldx, const float *bias, float *y,
                                                 int64_t ldy);
typedef sk_f32_spmm_unstructured_ukernel_fn *sk_f32_spmm_unstructured_ukernel;

sk_f32_spmm_unstructured_ukernel_fn sk_f32_spmm_unstructured_scalar;
extern const sk_tiling sk_f32_spmm_unstructured_tiling_scalar;
#if defined(SK_HAVE_AVX2)
sk_f32_spmm_unstructured_ukernel_fn sk_f32_spmm_unstructured_avx2;
extern const sk_tiling sk_f32_spmm_unstructured_tiling_avx2;
#endif
#if defined(SK_HAVE_NEON)
sk_f32_spmm_unstructured_ukernel_fn sk_f32_spmm_unstructured_neon;
extern const sk_tiling sk_f32_spmm_unstructured_tiling_neon;
#endif
#if defined(SK_HAVE_WASMSIMD)
sk_f32_spmm_unstructured_ukernel_fn sk_f32_spmm_unstructured_wasmsimd;
extern const sk_tiling sk_f32_spmm_unstructured_tiling_wasmsimd;
#endif
#if defined(SK_HAVE_AVX512)
sk_f32_spmm_unstructured_ukernel_fn sk_f32_spmm_unstructured_avx512;
extern const sk_tiling sk_f32_spmm_unstructured_tiling_avx512;
#endif

/* The kernels' tilings (sparsekern.h: sk_tiling), one per compiled ISA variant, next to
 * each kernel; each family's operator completes its own fields and dispatches on the ISA
 * (SK_OK, or SK_ERR_UNSUPPORTED when the variant is not compiled in). */
int sk_f32_spmm_unstructured_tiling(int isa, sk_tiling *out);
int sk_f32_spmm_nm_tiling(int isa, sk_tiling *out);
int sk_f32_act_linear_tiling(int isa, sk_tiling *out);
int sk_f32_conv2d_sparse_tiling(int isa, sk_tiling *out);

/* Dispatch: the ISA in use (after detection, SPARSEKERN_ISA and sk_set_isa). */
int sk_isa_current(void);
int sk_isa_supported(int isa);
int sk_threads_current(void);

/* Column index of entry j of a compressed row array with 16- or 32-bit indices. */
SK_INLINE int64_t sk_col_at(const void *col_idx, int32_t idx_bits, int64_t j) {
    return idx_bits == 16 ? (int64_t)((const uint16_t *)col_idx)[j]
                          : (int64_t)((const int32_t *)col_idx)[j];
}

/* inf/NaN detection shared by the operators. A float is inf or NaN when its exponent
 * field is all ones; adding one to that field then carries into bit 31. Only and/add/or,
 * so these loops vectorize with the baseline flags. Bit 31 of the result: found one. */
SK_INLINE int sk_is_nonfinite(const float *p) {
    uint32_t u;
    memcpy(&u, p, sizeof u);
    return (u & 0x7f800000u) == 0x7f800000u;
}

SK_INLINE uint32_t sk_nonfinite_bits(const float *row, int64_t n) {
    const uint32_t *u = (const uint32_t *)row;
    uint32_t a[16] = {0}, r = 0; /* 16 independent ORs: 2.4x the speed of one */
    int64_t j = 0;
    for (; j + 16 <= n; j += 16)
        for (int i = 0; i < 16; ++i) a[i] |= (u[j + i] & 0x7f800000u) + 0x00800000u;
    for (int i = 0; i < 16; ++i) r |= a[i];
    for (; j < n; ++j) r |= (u[j] & 0x7f800000u) + 0x00800000u;
    return r;
}

/* The same while copying the row (the operators' X-block copies double as the scan). */
SK_INLINE uint32_t sk_copy_nonfinite_bits(float *SK_RESTRICT dst, const float *SK_RESTRICT src,
                                          int64_t n) {
    const uint32_t *u = (const uint32_t *)src;
    uint32_t a[16] = {0}, r = 0;
    int64_t j = 0;
    for (; j + 16 <= n; j += 16)
        for (int i = 0; i < 16; ++i) {
            dst[j + i] = src[j + i];
            a[i] |= (u[j + i] & 0x7f800000u) + 0x00800000u;
        }
    for (int i = 0; i < 16; ++i) r |= a[i];
    for (; j < n; ++j) {
        dst[j] = src[j];
        r |= (u[j] & 0x7f800000u) + 0x00800000u;
    }
    return r;
}

SK_INLINE int sk_has_nonfinite(const float *x, int64_t rows, int64_t n, int64_t ldx) {
    uint32_t a = 0;
    for (int64_t k = 0; k < rows; ++k) a |= sk_nonfinite_bits(x + k * ldx, n);
    return (a & 0x80000000u) != 0;
}

/* The SpMM operators' X and Y: element (k, j) of X[cols, n] at x[k * sk + j * sn], element
 * (m, j) of Y[rows, n] at y[m * sm + j * sn]. Row-major has sn == 1 (sk, sm: the leading
 * dimension); token-major (x[n, cols], y[n, rows], as linear's x @ W.T) has sk, sm == 1. */
typedef struct {
    const float *p;
    int64_t sk, sn;
} sk_xview;
typedef struct {
    float *p;
    int64_t sm, sn;
} sk_yview;

/* X[0:rows, 0:n] holds an inf or NaN. */
SK_INLINE int sk_xview_has_nonfinite(sk_xview x, int64_t rows, int64_t n) {
    uint32_t a = 0;
    if (x.sn == 1)
        for (int64_t k = 0; k < rows; ++k) a |= sk_nonfinite_bits(x.p + k * x.sk, n);
    else if (x.sk == 1)
        for (int64_t j = 0; j < n; ++j) a |= sk_nonfinite_bits(x.p + j * x.sn, rows);
    else
        for (int64_t k = 0; k < rows; ++k)
            for (int64_t j = 0; j < n; ++j) a |= sk_nonfinite_bits(x.p + k * x.sk + j * x.sn, 1);
    return (a & 0x80000000u) != 0;
}

/* bad[k] = X[k, j] is inf or NaN, for k < rows; returns how many are. */
SK_INLINE int64_t sk_mark_nonfinite_column(sk_xview x, int64_t rows, int64_t j,
                                           unsigned char *bad) {
    int64_t nbad = 0;
    for (int64_t k = 0; k < rows; ++k) {
        bad[k] = (unsigned char)sk_is_nonfinite(x.p + k * x.sk + j * x.sn);
        nbad += bad[k];
    }
    return nbad;
}

/* Copies X[:, c0:c0+cn] to buf (row-major, rows ldb floats apart), split across the
 * OpenMP team when called inside a parallel region; returns this thread's nonfinite
 * bits. Token-major X is transposed here, in tiles of SK_XT_K of its columns, so each
 * source line is read whole. */
#define SK_XT_K 16
SK_INLINE uint32_t sk_copy_x_block(float *buf, int64_t ldb, sk_xview x, int64_t rows, int64_t c0,
                                   int64_t cn) {
    uint32_t bits = 0;
    if (x.sn == 1) {
#pragma omp for schedule(static)
        for (int64_t k = 0; k < rows; ++k)
            bits |= sk_copy_nonfinite_bits(buf + k * ldb, x.p + k * x.sk + c0, cn);
        return bits;
    }
    const int64_t tiles = (rows + SK_XT_K - 1) / SK_XT_K;
#pragma omp for schedule(static)
    for (int64_t t = 0; t < tiles; ++t) {
        const int64_t k0 = t * SK_XT_K, kn = rows - k0 < SK_XT_K ? rows - k0 : SK_XT_K;
        uint32_t a = 0;
        for (int64_t j = 0; j < cn; ++j) {
            const float *src = x.p + k0 * x.sk + (c0 + j) * x.sn;
            for (int64_t i = 0; i < kn; ++i) {
                float v = src[i * x.sk];
                uint32_t u;
                memcpy(&u, &v, sizeof u);
                a |= (u & 0x7f800000u) + 0x00800000u;
                buf[(k0 + i) * ldb + j] = v;
            }
        }
        bits |= a;
    }
    return bits;
}

/* Rows [r, r + rn) of Y[:, c0:c0+cn] from tile (rows ldt floats apart, tile row 0 is row
 * r): the stores of a Y that is not row-major. */
SK_INLINE void sk_store_y_tile(sk_yview y, int64_t r, int64_t rn, int64_t c0, int64_t cn,
                               const float *tile, int64_t ldt) {
    if (y.sm == 1)
        for (int64_t j = 0; j < cn; ++j) {
            float *dst = y.p + r + (c0 + j) * y.sn;
            for (int64_t i = 0; i < rn; ++i) dst[i] = tile[i * ldt + j];
        }
    else
        for (int64_t i = 0; i < rn; ++i)
            for (int64_t j = 0; j < cn; ++j)
                y.p[(r + i) * y.sm + (c0 + j) * y.sn] = tile[i * ldt + j];
}

/* Rows of Y per tile when Y is not row-major: 64 rows of up to 64 columns (16 KiB) stay
 * in L1 between the kernel's stores and their transposed copy into Y. */
#define SK_Y_TILE_ROWS 64
#define SK_Y_TILE_COLS 64

/* The kernels address Y by absolute row (y + m * ldy for rows [r, r + rn)); the Y tile
 * stands in for those rows, so a kernel gets the tile's address less r rows. */
SK_INLINE float *sk_tile_as_rows(float *tile, int64_t r, int64_t ldt) {
    return (float *)((uintptr_t)tile - (uintptr_t)r * (uintptr_t)ldt * sizeof(float));
}

/* Rows [r0, r1) of Y[:, c0:c0+cn] from a microkernel uk (the family's signature: w, rows,
 * X[:, 0:cn] row-major with rows ldx floats apart, bias, Y and its ldy): in place when Y
 * is row-major, else tile by tile (tile: SK_Y_TILE_ROWS x SK_Y_TILE_COLS floats). */
#define SK_RUN_ROWS(uk, w, r0, r1, x, cn, ldx, bias, y, c0, tile)                            \
    do {                                                                                     \
        if ((y).sn == 1) {                                                                   \
            uk(w, r0, r1, x, cn, ldx, bias, (y).p + (c0), (y).sm);                           \
            break;                                                                           \
        }                                                                                    \
        for (int64_t j_ = 0; j_ < (cn); j_ += SK_Y_TILE_COLS)                                \
            for (int64_t r_ = (r0); r_ < (r1); r_ += SK_Y_TILE_ROWS) {                       \
                const int64_t re_ = (r1) - r_ < SK_Y_TILE_ROWS ? (r1) : r_ + SK_Y_TILE_ROWS, \
                              jn_ = (cn) - j_ < SK_Y_TILE_COLS ? (cn) - j_ : SK_Y_TILE_COLS; \
                uk(w, r_, re_, (x) + j_, jn_, ldx, bias,                                     \
                   sk_tile_as_rows(tile, r_, SK_Y_TILE_COLS), SK_Y_TILE_COLS);               \
                sk_store_y_tile(y, r_, re_ - r_, (c0) + j_, jn_, tile, SK_Y_TILE_COLS);      \
            }                                                                                \
    } while (0)

/* Columns per copied block of X when X is not row-major: nc, or fewer when cols is so
 * large that the buffer would exceed max_cols * nc floats. */
SK_INLINE int64_t sk_block_cols(sk_xview x, int64_t cols, int64_t nc, int64_t max_cols) {
    if (x.sn == 1 || cols <= max_cols) return nc;
    const int64_t c = max_cols * nc / cols;
    return c < 1 ? 1 : c;
}

/* The layouts the SpMM operators accept (sparsekern.h): X[cols, n] and Y[rows, n] each
 * row-major (stride_n == 1, stride_k or stride_m >= n) or token-major (stride_k or stride_m
 * == 1, stride_n >= cols or rows); with n == 1 only a positive stride_k / stride_m. */
SK_INLINE int sk_layout_valid(int64_t len, int64_t n, int64_t s_row, int64_t s_col) {
    if (n == 1) return s_row >= 1;
    return (s_col == 1 && s_row >= n) || (s_row == 1 && s_col >= len && s_col >= 1);
}

/* a * b and a + b of non-negative sizes; -1 when an operand is negative or the result
 * exceeds INT64_MAX (so -1 propagates through chains of these). */
SK_INLINE int64_t sk_mul_nn(int64_t a, int64_t b) {
    return (a < 0 || b < 0 || (b != 0 && a > INT64_MAX / b)) ? -1 : a * b;
}
SK_INLINE int64_t sk_add_nn(int64_t a, int64_t b) {
    return (a < 0 || b < 0 || a > INT64_MAX - b) ? -1 : a + b;
}

/* Bytes of count elements of size bytes, or 0 when count < 0 or the product does not
 * fit size_t (32 bits on wasm32); count 0 gives size (never a zero-byte request). */
SK_INLINE size_t sk_bytes(int64_t count, size_t size) {
    if (count < 0) return 0;
    if (count == 0) return size;
    if ((uint64_t)count > (uint64_t)(SIZE_MAX / size)) return 0;
    return (size_t)count * size;
}

/* malloc of count elements of size bytes; NULL on overflow or when out of memory. */
SK_INLINE void *sk_malloc_n(int64_t count, size_t size) {
    const size_t b = sk_bytes(count, size);
    return b ? malloc(b) : NULL;
}

/* 64-byte aligned memory for the operators' scratch buffers; release with free(). */
SK_INLINE void *sk_aligned_alloc(size_t bytes) {
    void *p = NULL;
    return posix_memalign(&p, 64, bytes ? bytes : 64) == 0 ? p : NULL;
}

/* The same for count elements of size bytes; NULL on overflow. */
SK_INLINE void *sk_aligned_alloc_n(int64_t count, size_t size) {
    const size_t b = sk_bytes(count, size);
    return b ? sk_aligned_alloc(b) : NULL;
}

#endif /* SK_INTERNAL_H */
