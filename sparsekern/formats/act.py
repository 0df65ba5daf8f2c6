"""The activation-sparse format (``"act"``): W stored input-major for activation-sparse
``linear`` and ``DeltaLinear`` (sparsekern.ops.act has the ops and their semantics).

Layout: ``wt`` float32 [K, M], W transposed, so the weights an input channel
multiplies are one contiguous row (M·4 bytes) and a skipped channel is a row never
read; ``norms`` float32 [K], the column norms ‖W[:, k]‖₂ (float64 sums, rounded) that
WINA ranks by. Bytes: 4·M·K + 4·K, as dense.
"""
from __future__ import annotations

import numpy as np

from .._errors import F32
from ._base import (PackedMatrix, _all_finite, _as_matrix, _check_shape, _expect_arrays,
                    _readonly, _specs, register_format)

__all__ = ["ActMatrix", "column_norms"]


def column_norms(wt: np.ndarray, chunk: int = 256) -> np.ndarray:
    """float32 ‖W[:, k]‖₂ for every row k of ``wt`` = W.T, summed in float64."""
    k = wt.shape[0]
    out = np.empty(k, np.float64)
    with np.errstate(all="ignore"):
        for a in range(0, k, chunk):
            w = wt[a:a + chunk].astype(np.float64)
            out[a:a + chunk] = np.sqrt((w * w).sum(axis=1))
    return out.astype(F32)


class ActMatrix(PackedMatrix):
    """Dense W[M, K] stored input-major (``wt`` = W.T, float32 [K, M]) with the column
    norms ``norms`` (float32 [K]), for activation-sparse ``linear`` (see module doc)."""

    format = "act"
    format_help = "'act'"
    __slots__ = ("_wt", "_norms", "_finite", "_nnz", "_c")

    wt = property(lambda self: self._wt, doc="float32 [K, M]: W transposed")
    norms = property(lambda self: self._norms, doc="float32 [K]: column norms of W")
    finite = property(lambda self: self._finite, doc="True when every weight is finite")

    def __init__(self, shape, wt, norms=None):
        """Build from W.T (``wt``, shape (K, M)) and optionally its column norms, which are
        checked against a recomputation (ValueError/TypeError on any fault)."""
        arrays = {"wt": np.asarray(wt)}
        if norms is not None:
            arrays["norms"] = np.asarray(norms)
        self._check_layout(self.format, shape, _specs(arrays), {})
        m, k = _check_shape(shape)
        wt = _readonly(arrays["wt"], F32)       # the checks below run on this copy
        calc = column_norms(wt)
        if norms is not None:
            nv = arrays["norms"].astype(F32)
            if not np.allclose(nv, calc, rtol=1e-5, atol=0, equal_nan=True):
                raise ValueError("norms do not match the column norms of the weights")
            calc = nv
        self._init(m, k, wt, calc)

    def _init(self, m, k, wt, norms):
        self._shape = (m, k)
        self._wt, self._norms = _readonly(wt, F32), _readonly(norms, F32)
        self._finite = _all_finite(self._wt)
        self._nnz = int(np.count_nonzero(wt))
        self._c = None

    @classmethod
    def _pack(cls, W, format: str) -> "ActMatrix":
        return cls.from_dense(W)

    @classmethod
    def from_dense(cls, W) -> "ActMatrix":
        W = _as_matrix(W)
        m, k = W.shape
        if k > 2**31 - 1:
            raise ValueError(f"K = {k} is too large (at most 2**31 - 1 inputs)")
        wt = _readonly(W.T, F32)
        obj = cls.__new__(cls)
        obj._init(m, k, wt, column_norms(wt))
        return obj

    @property
    def nnz(self) -> int:
        return self._nnz

    @property
    def nbytes(self) -> int:
        return self._wt.nbytes + self._norms.nbytes

    def to_dense(self) -> np.ndarray:
        return np.ascontiguousarray(self._wt.T)

    def _arrays(self):
        return {"wt": self._wt, "norms": self._norms}

    @classmethod
    def _check_layout(cls, format, shape, specs, names):
        m, k = _check_shape(shape)
        _expect_arrays(specs, ("wt",), ("norms",), "an act matrix")
        wt_shape, wt_dtype = specs["wt"]
        if wt_dtype.kind not in "biuf" or wt_dtype.fields is not None:
            raise TypeError(f"wt must hold real numbers (got dtype {wt_dtype})")
        if wt_shape != (k, m):
            raise ValueError(f"wt must have shape (K, M) = {(k, m)} for shape {(m, k)} "
                             f"(got {wt_shape})")
        if k > 2**31 - 1:
            raise ValueError(f"K = {k} is too large (at most 2**31 - 1 inputs)")
        if "norms" in specs:
            nv_shape, nv_dtype = specs["norms"]
            if nv_dtype.kind not in "biuf" or nv_dtype.fields is not None:
                raise TypeError(f"norms must hold real numbers (got dtype {nv_dtype})")
            if nv_shape != (k,):
                raise ValueError(f"norms must have shape ({k},) (got {nv_shape})")


register_format(ActMatrix)


