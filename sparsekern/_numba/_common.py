"""Pieces every numba kernel module uses."""
from __future__ import annotations

import numba as nb
import numpy as np

JIT = dict(cache=True, nogil=True)
NO_BIAS = np.zeros(0, np.float32)   # the bias argument of a kernel called without one


@nb.njit(**JIT)
def has_nonfinite(x):
    for v in x.ravel():
        if not np.isfinite(v):
            return True
    return False


@nb.njit(**JIT)
def propagate_nonfinite(row_ptr, col_idx, x, y):
    """Dense BLAS gives NaN where a zero of W meets inf/NaN in X; the sparse loops skip those
    zeros, so mark them here (rare path). Row m of W stores the columns
    col_idx[row_ptr[m]:row_ptr[m + 1]]; an index >= x.shape[0] stands for no column."""
    k_cols, n = x.shape
    bad = np.zeros(k_cols + 1, np.bool_)     # bad[k_cols]: the "no column" index
    for j in range(n):
        nbad = 0
        for k in range(k_cols):
            bad[k] = not np.isfinite(x[k, j])
            nbad += bad[k]
        if nbad == 0:
            continue
        for m in range(row_ptr.shape[0] - 1):
            covered = 0
            for p in range(row_ptr[m], row_ptr[m + 1]):
                covered += bad[min(col_idx[p], k_cols)]
            if covered < nbad:
                y[m, j] = np.nan
