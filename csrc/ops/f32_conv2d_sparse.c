/* Operator: direct sparse 2-D convolution (see sparsekern.h). Checks the arguments,
 * decodes every stored weight into a tap (input plane offset, row and column shift),
 * splits the output channels across threads and repairs non-finite propagation.
 * Compiled with no ISA flags.
 *
 * Strided columns: for stride_w = s > 1 each image is first copied into min(s, w)
 * column-phase planes, phase r holding input columns r, r + s, r + 2s, ...
 * ([c_in, h, ceil((w - r)/s)] each; together exactly one copy of the image). Input column
 * ox*s + d is then column ox + floor(d/s) of phase d mod s (no columns when d mod s >= w),
 * so the kernels always read consecutive columns. Rows need nothing: a row is a pointer.
 *
 * Geometry: every size, offset and coordinate is checked to fit int64 (and every
 * allocation size_t) before anything is allocated; a stride along an axis with one
 * output is never used, so it is taken as 1. */
#include <stdlib.h>
#include <string.h>

#include "conv_internal.h"

#if defined(_OPENMP)
#include <omp.h>
#endif

#define SK_MIN_PARALLEL_WORK (1 << 16)
/* output rows per block of the kernel calls (1..16 measured within noise at 56x56) */
#define SK_CONV_ROW_BLOCK 4

static sk_f32_conv2d_sparse_ukernel ukernel_for(int isa) {
    switch (isa) {
    case SK_ISA_SCALAR: return sk_f32_conv2d_sparse_scalar;
#if defined(SK_HAVE_AVX2)
    case SK_ISA_AVX2: return sk_f32_conv2d_sparse_avx2;
#endif
#if defined(SK_HAVE_AVX512)
    case SK_ISA_AVX512: return sk_f32_conv2d_sparse_avx512;
#endif
#if defined(SK_HAVE_NEON)
    case SK_ISA_NEON: return sk_f32_conv2d_sparse_neon;
#endif
#if defined(SK_HAVE_WASMSIMD)
    case SK_ISA_WASMSIMD: return sk_f32_conv2d_sparse_wasmsimd;
#endif
    default: return NULL;
    }
}

static const sk_tiling *tiling_for(int isa) {
    switch (isa) {
    case SK_ISA_SCALAR: return &sk_f32_conv2d_sparse_tiling_scalar;
#if defined(SK_HAVE_AVX2)
    case SK_ISA_AVX2: return &sk_f32_conv2d_sparse_tiling_avx2;
#endif
#if defined(SK_HAVE_AVX512)
    case SK_ISA_AVX512: return &sk_f32_conv2d_sparse_tiling_avx512;
#endif
#if defined(SK_HAVE_NEON)
    case SK_ISA_NEON: return &sk_f32_conv2d_sparse_tiling_neon;
#endif
#if defined(SK_HAVE_WASMSIMD)
    case SK_ISA_WASMSIMD: return &sk_f32_conv2d_sparse_tiling_wasmsimd;
#endif
    default: return NULL;
    }
}

/* The variant's tiling and the operator's row block (sparsekern.h: sk_kernel_tiling). */
int sk_f32_conv2d_sparse_tiling(int isa, sk_tiling *out) {
    const sk_tiling *t = tiling_for(isa);
    if (!t) return SK_ERR_UNSUPPORTED;
    *out = *t;
    out->row_group = SK_CONV_ROW_BLOCK;
    return SK_OK;
}

/* floor(a / b) for b > 0 */
static int64_t floordiv(int64_t a, int64_t b) {
    const int64_t q = a / b;
    return (a % b != 0 && a < 0) ? q - 1 : q;
}

/* Bounds every coordinate formed along one axis: |o*stride + k*dil - pad| and
 * |i + pad - k*dil| for o < out, k < ksize, i < in, and every sum of those terms the
 * operator and the kernels form, stay within this; -1 when it overflows. */
static int64_t axis_reach(int64_t in, int64_t out, int64_t ksize, int64_t stride, int64_t pad,
                          int64_t dil) {
    const int64_t span =
        sk_add_nn(sk_mul_nn(out > 0 ? out - 1 : 0, stride), sk_mul_nn(ksize - 1, dil));
    return sk_add_nn(sk_add_nn(span, pad), in);
}

static int geom_ok(const sk_csr_f32 *w, const sk_conv2d_geom *g) {
    if (g->batch < 0 || g->c_in < 0 || g->h < 0 || g->w < 0 || g->c_out < 0) return 0;
    if (g->kh < 1 || g->kw < 1 || g->groups < 1) return 0;
    if (g->stride_h < 1 || g->stride_w < 1 || g->dil_h < 1 || g->dil_w < 1) return 0;
    if (g->pad_h < 0 || g->pad_w < 0 || g->h_out < 0 || g->w_out < 0) return 0;
    if (g->c_in % g->groups || g->c_out % g->groups) return 0;
    if (g->w > INT32_MAX || g->w_out > INT32_MAX) return 0; /* a tap's widths are int32 */
    const int64_t cols = sk_mul_nn(g->c_in / g->groups, sk_mul_nn(g->kh, g->kw));
    if (cols < 0 || w->rows != g->c_out || w->cols != cols) return 0;
    const int64_t xn = sk_mul_nn(g->batch, sk_mul_nn(g->c_in, sk_mul_nn(g->h, g->w)));
    const int64_t yn = sk_mul_nn(g->batch, sk_mul_nn(g->c_out, sk_mul_nn(g->h_out, g->w_out)));
    if (sk_mul_nn(xn, 4) < 0 || sk_mul_nn(yn, 4) < 0) return 0;
    if (sk_bytes(xn, sizeof(float)) == 0 || sk_bytes(yn, sizeof(float)) == 0) return 0;
    const int64_t reach_h = axis_reach(g->h, g->h_out, g->kh, g->stride_h, g->pad_h, g->dil_h);
    const int64_t reach_w = axis_reach(g->w, g->w_out, g->kw, g->stride_w, g->pad_w, g->dil_w);
    return reach_h >= 0 && reach_w >= 0;
}

/* A tap's column shift as int32: a shift beyond +-INT32_MAX leaves no valid output
 * column, and so does the clamped one (widths and w_out are at most INT32_MAX). */
static int32_t clamp_dx(int64_t q) {
    return q > INT32_MAX ? INT32_MAX : q < -INT32_MAX ? -INT32_MAX : (int32_t)q;
}

/* The column part of the tap of kernel column kx (dx, width, ld) and where its input
 * plane for channel ci is: *base + ci * *chan. */
static void tap_columns(const sk_conv2d_geom *g, int64_t kx, sk_conv_tap *t, int64_t *base,
                        int64_t *chan) {
    const int64_t s = g->stride_w, d = kx * g->dil_w - g->pad_w;
    if (s == 1) {
        *base = 0;
        *chan = g->h * g->w;
        t->ld = t->width = (int32_t)g->w;
        t->dx = clamp_dx(d);
        return;
    }
    const int64_t q = floordiv(d, s), r = d - q * s;
    t->dx = clamp_dx(q);
    if (r >= g->w) { /* a phase with no columns */
        *base = *chan = 0;
        t->ld = t->width = 0;
        return;
    }
    /* phase r: w = Q*s + rem columns, of which Q + (r < rem) are r mod s, and
     * Q*r + min(r, rem) are in the phases before it */
    const int64_t Q = g->w / s, rem = g->w % s, width = Q + (r < rem);
    *base = g->c_in * g->h * (Q * r + (r < rem ? r : rem));
    *chan = g->h * width;
    t->ld = t->width = (int32_t)width;
}

/* masks[row * nvec + v]: output columns 16v.. that exist in the tap's input row */
static void tap_masks(const sk_conv_tap *t, int64_t w_out, int64_t nvec, uint16_t *row) {
    int64_t lo, hi;
    sk_conv_tap_cols(t, w_out, &lo, &hi);
    for (int64_t v = 0; v < nvec; ++v) {
        int64_t a0 = lo - 16 * v, b0 = hi - 16 * v;
        a0 = a0 < 0 ? 0 : (a0 > 16 ? 16 : a0);
        b0 = b0 < 0 ? 0 : (b0 > 16 ? 16 : b0);
        row[v] = b0 <= a0 ? 0 : (uint16_t)(((1u << b0) - 1u) & ~((1u << a0) - 1u));
    }
}

static int has_nonfinite_any(int isa, const float *x, int64_t count) {
#if defined(SK_HAVE_AVX512)
    if (isa == SK_ISA_AVX512) return sk_f32_conv2d_nonfinite_avx512(x, count);
#endif
    (void)isa;
    return sk_has_nonfinite(x, 1, count, count);
}

/* Dense convolution computes 0 * inf = NaN for every zero weight whose input is
 * non-finite; the sparse kernels skip those zeros. y becomes NaN where the receptive
 * field holds more non-finite inputs than the stored weights cover. Rare path: only the
 * outputs whose receptive field holds a non-finite input (marked from those inputs) are
 * examined. */
static int propagate_nonfinite(const sk_csr_f32 *w, const sk_conv2d_geom *g, const float *x,
                               float *y) {
    const union {
        uint32_t u;
        float f;
    } qnan = {0x7fc00000u};
    const int64_t cg = g->c_in / g->groups, og = g->c_out / g->groups, plane = g->h * g->w;
    const int64_t out_plane = g->h_out * g->w_out;
    unsigned char *cand = (unsigned char *)sk_malloc_n(g->groups * out_plane, 1);
    if (!cand) return SK_ERR_NOMEM;
    for (int64_t b = 0; b < g->batch; ++b) {
        const float *xb = x + b * g->c_in * plane;
        if (!sk_has_nonfinite(xb, 1, g->c_in * plane, g->c_in * plane)) continue;
        memset(cand, 0, (size_t)(g->groups * out_plane));
        for (int64_t ci = 0; ci < g->c_in; ++ci) {
            unsigned char *cg_mark = cand + (ci / cg) * out_plane;
            for (int64_t iy = 0; iy < g->h; ++iy)
                for (int64_t ix = 0; ix < g->w; ++ix) {
                    if (!sk_is_nonfinite(xb + ci * plane + iy * g->w + ix)) continue;
                    for (int64_t ky = 0; ky < g->kh; ++ky) {
                        const int64_t t = iy + g->pad_h - ky * g->dil_h;
                        if (t < 0 || t % g->stride_h || t / g->stride_h >= g->h_out) continue;
                        for (int64_t kx = 0; kx < g->kw; ++kx) {
                            const int64_t u = ix + g->pad_w - kx * g->dil_w;
                            if (u < 0 || u % g->stride_w || u / g->stride_w >= g->w_out) continue;
                            cg_mark[(t / g->stride_h) * g->w_out + u / g->stride_w] = 1;
                        }
                    }
                }
        }
        for (int64_t co = 0; co < g->c_out; ++co) {
            const float *xg = xb + (co / og) * cg * plane;
            const unsigned char *mark = cand + (co / og) * out_plane;
            float *yc = y + (b * g->c_out + co) * out_plane;
            for (int64_t oy = 0; oy < g->h_out; ++oy)
                for (int64_t ox = 0; ox < g->w_out; ++ox) {
                    if (!mark[oy * g->w_out + ox]) continue;
                    const int64_t y0 = oy * g->stride_h - g->pad_h,
                                  x0 = ox * g->stride_w - g->pad_w;
                    int64_t total = 0, covered = 0;
                    for (int64_t ci = 0; ci < cg; ++ci)
                        for (int64_t ky = 0; ky < g->kh; ++ky) {
                            const int64_t iy = y0 + ky * g->dil_h;
                            if (iy < 0 || iy >= g->h) continue;
                            for (int64_t kx = 0; kx < g->kw; ++kx) {
                                const int64_t ix = x0 + kx * g->dil_w;
                                if (ix >= 0 && ix < g->w)
                                    total += sk_is_nonfinite(xg + ci * plane + iy * g->w + ix);
                            }
                        }
                    if (total == 0) continue;
                    for (int64_t p = w->row_ptr[co]; p < w->row_ptr[co + 1]; ++p) {
                        const int64_t c = sk_col_at(w->col_idx, w->idx_bits, p);
                        const int64_t ci = c / (g->kh * g->kw), ky = (c / g->kw) % g->kh,
                                      kx = c % g->kw;
                        const int64_t iy = y0 + ky * g->dil_h, ix = x0 + kx * g->dil_w;
                        if (iy >= 0 && iy < g->h && ix >= 0 && ix < g->w)
                            covered += sk_is_nonfinite(xg + ci * plane + iy * g->w + ix);
                    }
                    if (covered < total) yc[oy * g->w_out + ox] = qnan.f;
                }
        }
    }
    free(cand);
    return SK_OK;
}

int sk_f32_conv2d_sparse_isa(int isa, const sk_csr_f32 *w, const sk_conv2d_geom *geom,
                             const float *x, const float *bias, float *y) {
    if (!w || !geom || w->rows < 0 || w->cols < 0 || w->nnz < 0) return SK_ERR_INVALID_ARG;
    if (w->idx_bits != 16 && w->idx_bits != 32) return SK_ERR_INVALID_ARG;
    sk_conv2d_geom gl = *geom;
    if (gl.h_out == 1) gl.stride_h = 1;
    if (gl.w_out == 1) gl.stride_w = 1;
    const sk_conv2d_geom *g = &gl;
    if (!geom_ok(w, g)) return SK_ERR_INVALID_ARG;
    const int64_t out_plane = g->h_out * g->w_out, in_image = g->c_in * g->h * g->w;
    if (g->batch == 0 || g->c_out == 0 || out_plane == 0) return SK_OK;
    if (!y || !w->row_ptr || (in_image > 0 && !x)) return SK_ERR_INVALID_ARG;
    if (w->nnz > 0 && (!w->col_idx || !w->values)) return SK_ERR_INVALID_ARG;
    if (!sk_isa_supported(isa)) return SK_ERR_UNSUPPORTED;
    sk_f32_conv2d_sparse_ukernel uk = ukernel_for(isa);
    if (!uk) return SK_ERR_UNSUPPORTED;

    /* 1x1, stride 1, no padding, one group: W[c_out, c_in] @ X[c_in, h*w] per image, by the
     * unstructured SpMM (which makes non-finite inputs propagate itself), in column chunks
     * whose X and Y parts stay in L2 between the SpMM's kernel and its non-finite scan. */
    if (g->kh == 1 && g->kw == 1 && g->stride_h == 1 && g->stride_w == 1 && g->pad_h == 0 &&
        g->pad_w == 0 && g->groups == 1 && g->h_out == g->h && g->w_out == g->w && g->c_in > 0) {
        const int64_t n = g->h * g->w;
        int64_t cn = (int64_t)(256 * 1024) / 4 / (g->c_in + g->c_out) / 64 * 64;
        if (cn < 64) cn = 64;
        for (int64_t b = 0; b < g->batch; ++b)
            for (int64_t c0 = 0; c0 < n; c0 += cn) {
                const int st = sk_f32_spmm_unstructured_isa(isa, w, x + b * g->c_in * n + c0,
                                                            n - c0 < cn ? n - c0 : cn, n, bias,
                                                            y + b * g->c_out * n + c0, n);
                if (st != SK_OK) return st;
            }
        return SK_OK;
    }

    const int64_t s = g->stride_w, cg = g->c_in / g->groups, og = g->c_out / g->groups;
    const int64_t khw = g->kh * g->kw, nvec = (g->w_out + 15) / 16;
    /* Taps are decoded through a table of the weight matrix's columns (no divisions per
     * stored weight) unless it has far more columns than stored weights. AVX-512 reads a
     * mask table: one row per kernel column kx (what the masks depend on), or per tap
     * without the column table; when that table would outgrow the output, the AVX2 kernel
     * (which computes its masks) runs instead. */
    const int by_col = w->cols / 4 <= w->nnz + 1024;
    uint16_t *masks = NULL;
#if defined(SK_HAVE_AVX512) && defined(SK_HAVE_AVX2)
    if (isa == SK_ISA_AVX512 && w->nnz > 0) {
        const int64_t mrows = by_col ? g->kw : w->nnz;
        const int64_t mbytes = sk_mul_nn(sk_mul_nn(mrows, nvec), 2);
        if (mrows <= INT32_MAX && mbytes >= 0 &&
            mbytes <= (int64_t)(1 << 20) + 4 * g->batch * g->c_out * out_plane) {
            masks = (uint16_t *)sk_malloc_n(mrows * nvec, sizeof(uint16_t));
            if (!masks) return SK_ERR_NOMEM;
        } else {
            uk = sk_f32_conv2d_sparse_avx2;
        }
    }
#endif
    sk_conv_tap *taps = (sk_conv_tap *)sk_malloc_n(w->nnz, sizeof(sk_conv_tap));
    float *pbuf = NULL;
    if (s > 1 && in_image > 0) pbuf = (float *)sk_malloc_n(in_image, sizeof(float));
    if (!taps || (s > 1 && in_image > 0 && !pbuf)) {
        free(masks);
        free(taps);
        free(pbuf);
        return SK_ERR_NOMEM;
    }
    if (by_col) {
        /* the tap of every column of the group's weight matrix, then one copy per stored
         * weight with its group's channel offset added */
        sk_conv_tap *col_tap = (sk_conv_tap *)sk_malloc_n(w->cols, sizeof(sk_conv_tap));
        int64_t *col_chan = (int64_t *)sk_malloc_n(w->cols, sizeof(int64_t));
        if (!col_tap || !col_chan) {
            free(col_tap);
            free(col_chan);
            free(masks);
            free(taps);
            free(pbuf);
            return SK_ERR_NOMEM;
        }
        for (int64_t c = 0; c < w->cols; ++c) {
            const int64_t ci = c / khw, ky = (c / g->kw) % g->kh, kx = c % g->kw;
            sk_conv_tap *t = &col_tap[c];
            int64_t base;
            tap_columns(g, kx, t, &base, &col_chan[c]);
            t->off = base + ci * col_chan[c];
            t->dy = ky * g->dil_h - g->pad_h;
            t->col = (int32_t)kx;
            if (masks && c < g->kw) tap_masks(t, g->w_out, nvec, masks + kx * nvec);
        }
        for (int64_t co = 0; co < g->c_out; ++co) {
            const int64_t base = (co / og) * cg;
            for (int64_t p = w->row_ptr[co]; p < w->row_ptr[co + 1]; ++p) {
                const int64_t c = sk_col_at(w->col_idx, w->idx_bits, p);
                taps[p] = col_tap[c];
                taps[p].off += base * col_chan[c];
            }
        }
        free(col_tap);
        free(col_chan);
    } else {
        for (int64_t co = 0; co < g->c_out; ++co) {
            const int64_t cbase = (co / og) * cg;
            for (int64_t p = w->row_ptr[co]; p < w->row_ptr[co + 1]; ++p) {
                const int64_t c = sk_col_at(w->col_idx, w->idx_bits, p);
                const int64_t ci = cbase + c / khw, ky = (c / g->kw) % g->kh, kx = c % g->kw;
                sk_conv_tap *t = &taps[p];
                int64_t base, chan;
                tap_columns(g, kx, t, &base, &chan);
                t->off = base + ci * chan;
                t->dy = ky * g->dil_h - g->pad_h;
                t->col = (int32_t)p;
                if (masks) tap_masks(t, g->w_out, nvec, masks + p * nvec);
            }
        }
    }

    /* scanned before the kernels, not after: the scan then brings x into the caches
     * the kernels read it from, instead of reading it a second time from further out */
    const int x_bad = in_image > 0 && has_nonfinite_any(isa, x, g->batch * in_image);
    int nt = sk_threads_current();
    if (((double)w->nnz + (double)g->c_out) * (double)out_plane < SK_MIN_PARALLEL_WORK) nt = 1;
    if (nt > g->c_out) nt = (int)g->c_out;
    for (int64_t b = 0; b < g->batch; ++b) {
        const float *xb = x + b * in_image;
        if (pbuf) {
            const int64_t Q = g->w / s, rem = g->w % s, nph = s < g->w ? s : g->w;
            if (s == 2) { /* the common case, one pass (the compiler vectorizes it) */
                const int64_t w0 = Q + (rem > 0), w1 = Q;
                float *SK_RESTRICT d0 = pbuf;
                float *SK_RESTRICT d1 = pbuf + g->c_in * g->h * w0;
                for (int64_t row = 0; row < g->c_in * g->h; ++row) {
                    const float *SK_RESTRICT src = xb + row * g->w;
                    float *SK_RESTRICT e = d0 + row * w0;
                    float *SK_RESTRICT o = d1 + row * w1;
                    for (int64_t j = 0; j < w1; ++j) {
                        e[j] = src[2 * j];
                        o[j] = src[2 * j + 1];
                    }
                    if (w0 > w1) e[w1] = src[2 * w1];
                }
            } else {
                float *dst = pbuf;
                for (int64_t r = 0; r < nph; ++r) {
                    const int64_t wr = Q + (r < rem);
                    for (int64_t row = 0; row < g->c_in * g->h; ++row) {
                        const float *src = xb + row * g->w + r;
                        float *d = dst + row * wr;
                        for (int64_t j = 0; j < wr; ++j) d[j] = src[j * s];
                    }
                    dst += g->c_in * g->h * wr;
                }
            }
            xb = pbuf;
        }
        float *yb = y + b * g->c_out * out_plane;
        /* Loop order: with several input channels per group, blocks of rb output rows
         * outermost and every output channel inside, so the few input rows a block reads
         * (cg * (rb + kh - 1) rows) stay in L1 while every channel's weights pass over
         * them; with one (depthwise), channel by channel. */
        const int64_t rb = cg > 1 ? SK_CONV_ROW_BLOCK : g->h_out;
        const int64_t nblk = (g->h_out + rb - 1) / rb;
#if defined(_OPENMP)
        if (nt > 1 && nblk > 1) {
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
            for (int64_t i = 0; i < nblk; ++i)
                uk(w->values, w->row_ptr, taps, 0, g->c_out, xb, g->h, g->stride_h, i * rb,
                   (i + 1) * rb < g->h_out ? (i + 1) * rb : g->h_out, g->h_out, g->w_out, bias, yb,
                   masks, nvec);
        } else if (nt > 1) {
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
            for (int64_t c0 = 0; c0 < g->c_out; c0 += 4)
                uk(w->values, w->row_ptr, taps, c0, c0 + 4 < g->c_out ? c0 + 4 : g->c_out, xb, g->h,
                   g->stride_h, 0, g->h_out, g->h_out, g->w_out, bias, yb, masks, nvec);
        } else
#endif
        {
            for (int64_t i = 0; i < nblk; ++i)
                uk(w->values, w->row_ptr, taps, 0, g->c_out, xb, g->h, g->stride_h, i * rb,
                   (i + 1) * rb < g->h_out ? (i + 1) * rb : g->h_out, g->h_out, g->w_out, bias, yb,
                   masks, nvec);
        }
    }
    free(masks);
    free(pbuf);
    free(taps);
    return x_bad ? propagate_nonfinite(w, g, x, y) : SK_OK;
}

int sk_f32_conv2d_sparse(const sk_csr_f32 *w, const sk_conv2d_geom *g, const float *x,
                         const float *bias, float *y) {
    return sk_f32_conv2d_sparse_isa(sk_isa_current(), w, g, x, bias, y);
}
