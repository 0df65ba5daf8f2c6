"""Pieces every numba kernel module uses."""
from __future__ import annotations

import numba as nb
import numpy as np

JIT = dict(cache=True, nogil=True)


@nb.njit(**JIT)
def has_nonfinite(x):
    for v in x.ravel():
        if not np.isfinite(v):
            return True
    return False
