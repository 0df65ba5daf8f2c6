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
def mark_nonfinite_column(x, j, bad):
    """bad[k] = x[k, j] is inf or NaN; returns how many are."""
    nbad = 0
    for k in range(x.shape[0]):
        bad[k] = not np.isfinite(x[k, j])
        nbad += bad[k]
    return nbad
