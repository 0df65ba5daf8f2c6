"""Direct sparse 2-D convolution on the unstructured (compressed-row) arrays; the same
semantics as csrc/ops/f32_conv2d_sparse.c, non-finite propagation included."""
from __future__ import annotations

import numba as nb
import numpy as np

from ._common import JIT as _JIT, has_nonfinite as _has_nonfinite


@nb.njit(parallel=True, **_JIT)
def _conv(row_ptr, col_idx, values, x, g, bias, has_bias, y):
    bsz, c_in, h, w, c_out, kh, kw, groups, sh, sw, ph, pw, dh, dw, ho, wo = g
    cg = c_in // groups
    og = c_out // groups
    khw = kh * kw
    nnz = values.shape[0]
    # decode every stored weight once: input channel (within the group), row and column shift
    tci = np.empty(nnz, np.int64)
    tdy = np.empty(nnz, np.int64)
    tdx = np.empty(nnz, np.int64)
    for p in range(nnz):
        c = np.int64(col_idx[p])
        tci[p] = c // khw
        tdy[p] = ((c // kw) % kh) * dh - ph
        tdx[p] = (c % kw) * dw - pw
    for t in nb.prange(bsz * c_out):
        b = t // c_out
        co = t % c_out
        base = (co // og) * cg
        bv = bias[co] if has_bias else np.float32(0.0)
        acc = np.empty(wo, np.float32)   # a private row: no aliasing with x, so it vectorizes
        for oy in range(ho):
            for ox in range(wo):
                acc[ox] = bv
            for p in range(row_ptr[co], row_ptr[co + 1]):
                iy = oy * sh + tdy[p]
                if iy < 0 or iy >= h:
                    continue
                x0 = tdx[p]
                ci = base + tci[p]
                # valid ox: 0 <= ox*sw + x0 < w
                lo = 0 if x0 >= 0 else (-x0 + sw - 1) // sw
                hi = (w - 1 - x0) // sw + 1 if w - 1 - x0 >= 0 else 0
                if hi > wo:
                    hi = wo
                v = values[p]
                xr = x[b, ci, iy]
                if sw == 1:   # unit stride: a loop LLVM vectorizes
                    xs = xr[lo + x0:hi + x0]
                    for j in range(hi - lo):
                        acc[lo + j] += v * xs[j]
                else:
                    for ox in range(lo, hi):
                        acc[ox] += v * xr[ox * sw + x0]
            y[b, co, oy, :] = acc


@nb.njit(**_JIT)
def _propagate_nonfinite(row_ptr, col_idx, x, g, y):
    # Dense convolution gives NaN where a zero weight meets inf/NaN; the sparse loop
    # skips those zeros, so mark them here (rare path).
    bsz, c_in, h, w, c_out, kh, kw, groups, sh, sw, ph, pw, dh, dw, ho, wo = g
    cg = c_in // groups
    og = c_out // groups
    for b in range(bsz):
        if not _has_nonfinite(x[b]):
            continue
        for co in range(c_out):
            base = (co // og) * cg
            for oy in range(ho):
                for ox in range(wo):
                    y0 = oy * sh - ph
                    x0 = ox * sw - pw
                    total = 0
                    for ci in range(cg):
                        for ky in range(kh):
                            iy = y0 + ky * dh
                            if iy < 0 or iy >= h:
                                continue
                            for kx in range(kw):
                                ix = x0 + kx * dw
                                if 0 <= ix < w and not np.isfinite(x[b, base + ci, iy, ix]):
                                    total += 1
                    if total == 0:
                        continue
                    covered = 0
                    for p in range(row_ptr[co], row_ptr[co + 1]):
                        c = np.int64(col_idx[p])
                        ci = c // (kh * kw)
                        iy = y0 + ((c // kw) % kh) * dh
                        ix = x0 + (c % kw) * dw
                        if 0 <= iy < h and 0 <= ix < w and not np.isfinite(x[b, base + ci, iy, ix]):
                            covered += 1
                    if covered < total:
                        y[b, co, oy, ox] = np.float32(np.nan)


def conv2d_sparse(row_ptr, col_idx, values, x, geom, bias, out) -> None:
    g = np.array(geom, np.int64)
    has_bias = bias is not None
    b = bias if has_bias else np.zeros(1, np.float32)
    _conv(row_ptr, col_idx, values, x, g, b, has_bias, out)
    if x.size and _has_nonfinite(x):
        _propagate_nonfinite(row_ptr, col_idx, x, g, out)
