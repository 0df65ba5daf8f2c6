"""Y = W @ X (+ bias) for the unstructured (compressed-row) format."""
from __future__ import annotations

import numba as nb
import numpy as np

from ._common import NO_BIAS, JIT as _JIT, has_nonfinite as _has_nonfinite, propagate_nonfinite


@nb.njit(parallel=True, **_JIT)
def _spmm_rows(row_ptr, col_idx, values, x, bias, has_bias, y):
    m_rows = row_ptr.shape[0] - 1
    n = x.shape[1]
    for m in nb.prange(m_rows):
        yrow = y[m]
        b = bias[m] if has_bias else np.float32(0.0)
        for j in range(n):
            yrow[j] = b
        for p in range(row_ptr[m], row_ptr[m + 1]):
            v = values[p]
            xrow = x[col_idx[p]]
            for j in range(n):
                yrow[j] += v * xrow[j]


@nb.njit(parallel=True, **_JIT)
def _spmv_rows(row_ptr, col_idx, values, x, bias, has_bias, y):
    # n == 1: a dot product per row (the general loop pays its inner-loop setup per nonzero)
    for m in nb.prange(row_ptr.shape[0] - 1):
        acc = np.float32(0.0)
        for p in range(row_ptr[m], row_ptr[m + 1]):
            acc += values[p] * x[col_idx[p], 0]
        y[m, 0] = acc + (bias[m] if has_bias else np.float32(0.0))


def spmm_unstructured(row_ptr, col_idx, values, x, bias, out) -> None:
    has_bias = bias is not None
    rows = _spmv_rows if x.shape[1] == 1 else _spmm_rows
    rows(row_ptr, col_idx, values, x, bias if has_bias else NO_BIAS, has_bias, out)
    if x.size and _has_nonfinite(x):
        propagate_nonfinite(row_ptr, col_idx, x, out)
