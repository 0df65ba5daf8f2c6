"""The "numba" backend: the kernels of sparsekern._numba on the same packed arrays."""
from __future__ import annotations

import numpy as np

__all__ = ["NumbaBackend"]


class NumbaBackend:
    name = "numba"

    def __init__(self):
        from .. import _numba   # ImportError when numba is not installed

        self._mod = _numba

    def isas(self) -> list[str]:
        return []

    def isa(self) -> str:
        return "numba"

    def set_isa(self, name: str) -> None:
        raise ValueError("the numba backend has no ISA variants to choose")

    def get_num_threads(self) -> int:
        return self._mod.get_num_threads()

    def set_num_threads(self, n: int) -> None:
        self._mod.set_num_threads(n)

    # The kernels take X and out C-contiguous; token-major views (linear's x.T, y.T) are
    # copied here, in the fallback backend only.
    @staticmethod
    def _spmm(kernel, X, out) -> None:
        y = out if out.flags.c_contiguous else np.empty(out.shape, out.dtype)
        kernel(np.ascontiguousarray(X), y)
        if y is not out:
            out[...] = y

    def spmm_unstructured(self, W, X, bias, out) -> None:
        self._spmm(lambda x, y: self._mod.spmm_unstructured(W.row_ptr, W.col_idx, W.values, x,
                                                            bias, y), X, out)

    # -- N:M structured kernels
    def spmm_nm(self, W, X, bias, out) -> None:
        n, m = W.pattern
        self._spmm(lambda x, y: self._mod.spmm_nm(W.values, W.meta, W.shape[1], n, m, W.pos_bits,
                                                  x, bias, y), X, out)

    # -- activation-sparse kernels
    def act_linear(self, W, x, bias, out, threshold, topk, select, rows) -> None:
        self._mod.act_linear(W.wt, W.norms, W.finite, x.reshape(rows, W.shape[1]), bias,
                             out.reshape(rows, W.shape[0]), threshold, topk, select)

    def act_delta(self, W, x, xref, y, theta) -> int:
        return self._mod.act_delta(W.wt, x, xref, y, theta)

    # -- sparse conv2d kernels
    def conv2d_sparse(self, W, x, geom, bias, out) -> None:
        self._mod.conv2d_sparse(W.row_ptr, W.col_idx, W.values, x, geom, bias, out)
