/* sparsekern.h - the only public header of libsparsekern.
 *
 * Plain C11, no Python inside. Formats are plain structs that point at memory
 * the caller owns; entry points return status codes and never print or abort.
 *
 * The region between SK_CDEF_BEGIN and SK_CDEF_END is also read by the Python
 * binding (cffi ABI mode) as its cdef, so it must stay free of preprocessor
 * directives and of anything pycparser cannot parse.
 */
#ifndef SPARSEKERN_H
#define SPARSEKERN_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Everything declared here is exported; the library builds with hidden visibility. */
#if defined(__GNUC__)
#pragma GCC visibility push(default)
#endif

/* SK_CDEF_BEGIN */

/* Status codes. */
enum {
    SK_OK = 0,
    SK_ERR_INVALID_ARG = -1, /* a null pointer, a negative size, a stride too small */
    SK_ERR_NOMEM = -2,
    SK_ERR_UNSUPPORTED = -3 /* an ISA this CPU or build cannot run */
};

/* Instruction-set levels, in increasing order on each architecture. */
enum {
    SK_ISA_SCALAR = 0,
    SK_ISA_AVX2 = 1, /* AVX2 + FMA + F16C */
    SK_ISA_AVX512 = 2, /* AVX-512 F, CD, BW, DQ, VL (OS-enabled ZMM state) */
    SK_ISA_NEON = 3,
    SK_ISA_WASMSIMD = 4,
    SK_ISA_COUNT = 5
};

/* Unstructured sparse matrix W[rows, cols] in compressed rows.
 *   row_ptr[rows + 1]  int64, row_ptr[0] == 0, non-decreasing, row_ptr[rows] == nnz
 *   col_idx[nnz]       uint16 when idx_bits == 16 (cols <= 65536), else int32;
 *                      strictly increasing within a row, each in [0, cols)
 *   values[nnz]        float32
 * The kernels trust this struct: it is validated once, when packed or loaded. */
typedef struct {
    int64_t rows;
    int64_t cols;
    int64_t nnz;
    int32_t idx_bits;
    const int64_t *row_ptr;
    const void *col_idx;
    const float *values;
    /* Optional, NULL when absent: the same entries in panel order, built by
     * sk_f32_unstructured_panels_build for batch > 1 on dense-ish rows. For each quad of
     * rows q < rows/4 and panel p of SK_PANEL_K = 128 columns, entries
     * [panel_off[q*P+p], panel_off[q*P+p+1]) hold len steps of 4 interleaved entries (one
     * per row of the quad), each a value and a column within the panel (padding: value
     * 0, column 0; the library does not use the layout when X holds inf/NaN);
     * P = ceil(cols / 128). */
    const int64_t *panel_off;
    const float *panel_val;
    const uint8_t *panel_col;
} sk_csr_f32;

/* Y[rows, n] = W @ X[cols, n] (+ bias[rows], broadcast along n).
 * X and Y are row-major with leading dimensions ldx >= n and ldy >= n.
 * bias may be NULL. Non-finite values in X propagate as dense BLAS would:
 * a structural zero of W times inf or NaN gives NaN.
 * Runs on the selected ISA with the configured number of threads. */
int sk_f32_spmm_unstructured(const sk_csr_f32 *w, const float *x, int64_t n, int64_t ldx,
                             const float *bias, float *y, int64_t ldy);

/* The panel layout: entries needed (padded) and the build into caller-owned arrays of
 * quads*P + 1 offsets and that many values and columns. SK_ERR_INVALID_ARG when rows < 4. */
int64_t sk_f32_unstructured_panels_size(const sk_csr_f32 *w);
int sk_f32_unstructured_panels_build(const sk_csr_f32 *w, int64_t *panel_off, float *panel_val,
                                     uint8_t *panel_col);

/* The same with an explicit ISA variant (for tests and benchmarks). */
int sk_f32_spmm_unstructured_isa(int isa, const sk_csr_f32 *w, const float *x, int64_t n,
                                 int64_t ldx, const float *bias, float *y, int64_t ldy);

/* The same for X and Y in either layout, by strides in floats: X[k, j] is
 * x[k * x_stride_k + j * x_stride_n] and Y[m, j] is y[m * y_stride_m + j * y_stride_n].
 * Each is row-major (stride_n == 1, the other stride >= n) or token-major, one row per
 * column j as linear's x[n, cols] and y[n, rows] (stride_k or stride_m == 1, stride_n >= cols
 * or rows); with n == 1 only stride_k and stride_m (>= 1) are read. Token-major X is
 * transposed into the blocks the operator copies anyway and Y through a cache-sized tile,
 * so linear's y = x @ W.T needs no copies around the call. */
int sk_f32_spmm_unstructured_strided(const sk_csr_f32 *w, const float *x, int64_t n,
                                     int64_t x_stride_k, int64_t x_stride_n, const float *bias,
                                     float *y, int64_t y_stride_m, int64_t y_stride_n);
int sk_f32_spmm_unstructured_strided_isa(int isa, const sk_csr_f32 *w, const float *x, int64_t n,
                                         int64_t x_stride_k, int64_t x_stride_n, const float *bias,
                                         float *y, int64_t y_stride_m, int64_t y_stride_n);

/* N:M structured sparse matrix W[rows, cols]: in every group of m consecutive
 * columns (the last group padded when m does not divide cols) exactly n entries
 * are stored, 1 <= n < m, m in {4, 8, 16}.
 *   groups = ceil(cols / m); each row stores groups * n slots, group by group
 *   values[rows * groups * n]     float32, row-major
 *   meta[rows * meta_stride]      row r's positions as a little-endian bit stream
 *                                 (byte i holds bits 8i..8i+7, LSB first): slot j's
 *                                 position p in [0, m) is bits [j*pos_bits, (j+1)*pos_bits);
 *                                 strictly increasing within a group; slot j's column
 *                                 is (j / n) * m + p. Slots whose column is >= cols
 *                                 (padding, last group only) hold 0 and are never read.
 *   pos_bits = ceil(log2 m) (2, 3, 4); meta_stride (bytes per row) is a multiple of 8,
 *   at least ceil(groups * n * pos_bits / 64) * 8.
 * The kernels trust this struct: it is validated once, when packed or loaded. */
typedef struct {
    int64_t rows;
    int64_t cols;
    int32_t n;
    int32_t m;
    int32_t pos_bits;
    int64_t meta_stride;
    const float *values;
    const uint8_t *meta;
} sk_nm_f32;

/* Y[rows, ncols] = W @ X[cols, ncols] (+ bias) for N:M W; conventions as
 * sk_f32_spmm_unstructured (strides, bias, non-finite X propagating as dense BLAS). */
int sk_f32_spmm_nm(const sk_nm_f32 *w, const float *x, int64_t n, int64_t ldx, const float *bias,
                   float *y, int64_t ldy);

/* The same with an explicit ISA variant (for tests and benchmarks). */
int sk_f32_spmm_nm_isa(int isa, const sk_nm_f32 *w, const float *x, int64_t n, int64_t ldx,
                       const float *bias, float *y, int64_t ldy);

/* X and Y in either layout, as sk_f32_spmm_unstructured_strided. */
int sk_f32_spmm_nm_strided(const sk_nm_f32 *w, const float *x, int64_t n, int64_t x_stride_k,
                           int64_t x_stride_n, const float *bias, float *y, int64_t y_stride_m,
                           int64_t y_stride_n);
int sk_f32_spmm_nm_strided_isa(int isa, const sk_nm_f32 *w, const float *x, int64_t n,
                               int64_t x_stride_k, int64_t x_stride_n, const float *bias, float *y,
                               int64_t y_stride_m, int64_t y_stride_n);

/* Activation-sparse weights (format "act"): W[rows, cols] stored input-major.
 *   wt[cols * rows]   float32, W transposed: row k (rows floats) is W[:, k]
 *   norms[cols]       float32, ||W[:, k]||_2 (computed in float64, rounded)
 *   finite            1 when every weight is finite (then selected inputs that are
 *                     exactly 0 are skipped; otherwise they are multiplied)
 * The kernels trust this struct: it is validated once, when packed or loaded. */
typedef struct {
    int64_t rows;
    int64_t cols;
    int32_t finite;
    const float *wt;
    const float *norms;
} sk_act_f32;

/* Selection policies of sk_f32_act_linear. */
enum { SK_ACT_MAGNITUDE = 0, SK_ACT_WINA = 1 };

/* y[i, :] = sum over the selected channels k of row i of x[i, k] * W[:, k] (+ bias)
 * for the n rows of x (row stride ldx >= cols) into y (row stride ldy >= rows).
 * score_k = |x[i, k]| (SK_ACT_MAGNITUDE) or |x[i, k]| * norms[k] (SK_ACT_WINA);
 * k is a candidate when !(score_k <= threshold) (NaN scores are candidates; a
 * negative threshold makes every channel one); topk >= 0 keeps only the topk largest
 * candidate scores per row (NaN ranks above +inf; ties go to the lower channel);
 * topk < 0: no limit. Channels not selected contribute nothing, whatever W holds.
 * threshold must not be NaN. *nactive (may be NULL) receives the number of
 * (row, channel) pairs multiplied. */
int sk_f32_act_linear(const sk_act_f32 *w, int64_t n, const float *x, int64_t ldx,
                      const float *bias, float *y, int64_t ldy, float threshold, int64_t topk,
                      int select, int64_t *nactive);
int sk_f32_act_linear_isa(int isa, const sk_act_f32 *w, int64_t n, const float *x, int64_t ldx,
                          const float *bias, float *y, int64_t ldy, float threshold, int64_t topk,
                          int select, int64_t *nactive);

/* Delta step for n rows: d = x[i, :] - xref[i, :]; the channels with !(|d| <= theta)
 * are kept: y[i, :] += sum_kept d_k * W[:, k] and xref[i, k] = x[i, k] there.
 * xref is [n, cols] and y is [n, rows], both contiguous, both updated in place;
 * theta >= 0. *nactive (may be NULL) receives the number of kept (row, channel) pairs. */
int sk_f32_act_delta(const sk_act_f32 *w, int64_t n, const float *x, int64_t ldx, float *xref,
                     float *y, float theta, int64_t *nactive);
int sk_f32_act_delta_isa(int isa, const sk_act_f32 *w, int64_t n, const float *x, int64_t ldx,
                         float *xref, float *y, float theta, int64_t *nactive);

/* 2-D convolution geometry (NCHW, like torch.nn.functional.conv2d). The input is
 * x[batch, c_in, h, w], the output y[batch, c_out, h_out, w_out], both contiguous.
 * Output pixel (oy, ox) of channel co reads input rows oy*stride_h - pad_h + ky*dil_h
 * and columns ox*stride_w - pad_w + kx*dil_w; positions outside the input are zeros
 * (pad_h/pad_w are the top/left padding; the bottom/right padding is implied by
 * h_out/w_out, so asymmetric "same" padding needs nothing more). groups divides c_in
 * and c_out; channel co uses input channels g*(c_in/groups) .. of its group g. */
typedef struct {
    int64_t batch;
    int64_t c_in;
    int64_t h;
    int64_t w;
    int64_t c_out;
    int64_t kh;
    int64_t kw;
    int64_t groups;
    int64_t stride_h;
    int64_t stride_w;
    int64_t pad_h;
    int64_t pad_w;
    int64_t dil_h;
    int64_t dil_w;
    int64_t h_out;
    int64_t w_out;
} sk_conv2d_geom;

/* Direct sparse convolution: y = conv2d(x, W) (+ bias[c_out]) with W[c_out, c_in/groups,
 * kh, kw] stored as the unstructured matrix w[c_out, (c_in/groups)*kh*kw] (column
 * (ci*kh + ky)*kw + kx, torch's weight.reshape(c_out, -1)). Each stored weight
 * accumulates a shifted input row into the output row; no im2col buffer. Non-finite
 * values in x propagate as the dense convolution would (a structural zero of W that
 * meets inf/NaN inside the input gives NaN); padding positions contribute exactly
 * nothing (the op layer requires finite weights). bias may be NULL.
 * 1x1 kernels with stride 1, no padding and one group run as sk_f32_spmm_unstructured
 * over each image's [c_in, h*w] plane (in column chunks, ldx = h*w).
 * SK_ERR_INVALID_ARG also when a size, offset or coordinate of the geometry does not fit
 * int64 (w and w_out: int32), or the byte size of x or y does not fit size_t; the stride
 * of an axis with one output is not used. Scratch memory, whatever the strides and
 * paddings: at most one copy of an image, O(stored weights + 4096) decoded taps and a
 * mask table no larger than y plus 1 MiB. */
int sk_f32_conv2d_sparse(const sk_csr_f32 *w, const sk_conv2d_geom *g, const float *x,
                         const float *bias, float *y);
int sk_f32_conv2d_sparse_isa(int isa, const sk_csr_f32 *w, const sk_conv2d_geom *g, const float *x,
                             const float *bias, float *y);

/* Kernel families, for sk_kernel_tiling. */
enum {
    SK_FAMILY_SPMM_UNSTRUCTURED = 0,
    SK_FAMILY_SPMM_NM = 1,
    SK_FAMILY_ACT_LINEAR = 2,
    SK_FAMILY_CONV2D_SPARSE = 3,
    SK_FAMILY_COUNT = 4
};

/* How a family's ISA variant blocks its work: the sizes at which its code paths change,
 * for tests that want shapes at, below and above each edge. Informational: nothing
 * else depends on it. "Columns" are the N of X (SpMM), the outputs (act_linear) or the
 * output row width w_out (conv2d); "a row's entries" are its nonzeros (unstructured, and
 * conv2d's taps per output channel), its slots (N:M) or its active channels (act).
 *   n_tiles     column widths the kernel steps through, widest first, 0-padded; the last
 *               is one vector (fewer columns: a masked or partial tail). N:M x86: the
 *               widest tile and one vector (the rest is one tile of whole vectors, the
 *               last masked)
 *   k_step      a row's entries consumed per inner step (n > 1 path)
 *   k_step1     the same on the batch-1 path (n == 1; N:M: slots per step, a step
 *               covering k_step1 / n groups; conv2d: as k_step)
 *   k_block     a row length at which the blocking changes (0: none): N:M, columns of W
 *               per K block of the widest tile; unstructured, the mean row length from
 *               which rows run row_block at a time; conv2d, the taps per channel above
 *               which rows wider than k_block run row_block1 rows at a time
 *   row_block   rows per register tile (unstructured: row quads; act: batch rows)
 *   row_block1  rows per register tile of the kernel's other row path: N:M, one-vector
 *               tiles; conv2d, long channels of wide rows (row_block where there is no
 *               such path); unstructured and act, the rows outside row tiles (1)
 *   row_group   rows per outer block (0: none): N:M, the kernel's row blocks; act, the
 *               operator's union blocks of batch rows; conv2d, the operator's blocks of
 *               output rows (more than one input channel per group)
 *   col_block   the operator's block of columns (0: none): SpMM, X is copied in blocks
 *               of this many columns (when N exceeds it); act, outputs per column tile
 *               of a batch block, divided among its rows (at least 64, a multiple of 16)
 *   col_block1  act: batch 1 runs whole rows of up to this many outputs, longer ones in
 *               tiles of half that (0: none) */
typedef struct {
    int32_t n_tiles[6];
    int32_t k_step;
    int32_t k_step1;
    int32_t k_block;
    int32_t row_block;
    int32_t row_block1;
    int32_t row_group;
    int32_t col_block;
    int32_t col_block1;
} sk_tiling;

/* The tiling of family (SK_FAMILY_*) on ISA variant isa, whether or not this CPU runs it.
 * SK_ERR_INVALID_ARG for an unknown family or ISA or a NULL out; SK_ERR_UNSUPPORTED when
 * that ISA is not compiled in. */
int sk_kernel_tiling(int family, int isa, sk_tiling *out);

/* Configuration. The ISA in use is the best one this CPU supports, capped by
 * the environment variable SPARSEKERN_ISA (scalar|avx2|avx512|neon|wasmsimd)
 * read once at first use, and by sk_set_isa. */
const char *sk_version(void);
uint64_t sk_cpu_isa_mask(void); /* bit i set: ISA i runs on this CPU and is compiled in */
int sk_get_isa(void);
int sk_set_isa(int isa); /* SK_ERR_UNSUPPORTED if not in sk_cpu_isa_mask() */
const char *sk_isa_name(int isa); /* "scalar", "avx2", ...; NULL when out of range */
int sk_isa_env_error(void); /* nonzero if SPARSEKERN_ISA named an unknown or unsupported ISA */
int sk_get_num_threads(void);
int sk_set_num_threads(int n); /* n >= 1; capped by what the build supports */
int sk_max_threads(void); /* 1 when built without OpenMP */

/* SK_CDEF_END */

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#ifdef __cplusplus
}
#endif

#endif /* SPARSEKERN_H */
