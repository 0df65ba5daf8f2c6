"""numba implementations of every op, on the same packed arrays as the C kernels.

This is the backend of an install without libsparsekern, and the test suite runs
against it exactly as against the C library.
"""
from __future__ import annotations

import numba

from .act import act_delta, act_linear
from .conv import conv2d_sparse
from .spmm_nm import spmm_nm
from .spmm_unstructured import spmm_unstructured

__all__ = ["spmm_unstructured", "spmm_nm", "act_linear", "act_delta", "conv2d_sparse",
           "get_num_threads", "set_num_threads"]


def get_num_threads() -> int:
    return int(numba.get_num_threads())


def set_num_threads(n: int) -> None:
    numba.set_num_threads(max(1, min(int(n), numba.config.NUMBA_NUM_THREADS)))


