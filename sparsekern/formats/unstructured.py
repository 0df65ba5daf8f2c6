"""The unstructured format (``"unstructured"``): compressed rows of W[M, K].

* ``row_ptr``  int64[M + 1]: row m's nonzeros are entries row_ptr[m]:row_ptr[m+1]
* ``col_idx``  uint16[nnz] when K <= 65536, else int32[nnz]; strictly increasing
  within each row
* ``values``   float32[nnz]

Bytes per nonzero: 6 with 16-bit indices (4 value + 2 index), 8 with 32-bit ones,
plus 8·(M+1) bytes of row offsets.
"""
from __future__ import annotations

import numpy as np

from .._errors import F32, check_fraction
from ._base import (_CHUNK, PackedMatrix, _as_matrix, _check_int_spec, _check_real_spec,
                    _check_shape, _expect_arrays, _readonly, _specs, _stored_ints,
                    register_format)

__all__ = ["UnstructuredMatrix", "magnitude_mask"]


class UnstructuredMatrix(PackedMatrix):
    """W[M, K] with arbitrary nonzero positions, in compressed rows (see module doc)."""

    format = "unstructured"
    format_help = "'unstructured'"
    _kernel = "spmm_unstructured"
    _conv_order = "ci_ky_kx"      # torch's weight.reshape(C_out, -1)
    # _c: the C library's view of the arrays; _panels: the panel layout it builds for
    # batch > 1 on dense-ish rows (derived data, built lazily by the C backend)
    __slots__ = ("_row_ptr", "_col_idx", "_values", "_c", "_panels")

    # read-only: the C handle cached in _c points into these very arrays
    row_ptr = property(lambda self: self._row_ptr, doc="int64[M + 1] row offsets")
    col_idx = property(lambda self: self._col_idx, doc="uint16 or int32 [nnz] column indices")
    values = property(lambda self: self._values, doc="float32[nnz] nonzero values")

    def __init__(self, shape, row_ptr, col_idx, values):
        """Build from compressed-row arrays; validates them (ValueError/TypeError on any fault)."""
        arrays = {"row_ptr": np.asarray(row_ptr), "col_idx": np.asarray(col_idx),
                  "values": np.asarray(values)}
        self._check_layout(self.format, shape, _specs(arrays), {})
        self._shape, self._row_ptr, self._col_idx, self._values = _validate_csr(
            _check_shape(shape), **arrays)
        self._c = None
        self._panels = None

    @classmethod
    def _trusted(cls, shape, row_ptr, col_idx, values):
        obj = cls.__new__(cls)
        obj._shape = shape
        obj._row_ptr, obj._col_idx, obj._values = (_readonly(row_ptr), _readonly(col_idx),
                                                   _readonly(values))
        obj._c = None
        obj._panels = None
        return obj

    @classmethod
    def _pack(cls, W, format: str, *, sparsity=None) -> "UnstructuredMatrix":
        return cls.from_dense(W, sparsity=sparsity)

    @classmethod
    def from_dense(cls, W, sparsity=None) -> "UnstructuredMatrix":
        """Keep the nonzeros of W; with ``sparsity`` first magnitude-prune W so that at
        least that fraction of its entries are zero (the smallest |w| go first)."""
        W = _as_matrix(W)
        if sparsity is not None:
            keep = magnitude_mask(W, sparsity)
        else:
            keep = W != 0
        return cls._from_mask(W, keep)

    @classmethod
    def _from_mask(cls, W: np.ndarray, keep: np.ndarray) -> "UnstructuredMatrix":
        m, k = W.shape
        rows, cols = np.nonzero(keep)
        counts = np.bincount(rows, minlength=m) if m else np.zeros(0, np.int64)
        row_ptr = np.zeros(m + 1, np.int64)
        np.cumsum(counts, out=row_ptr[1:])
        col_idx = cols.astype(_index_dtype(k))
        values = np.ascontiguousarray(W[rows, cols], dtype=F32)
        return cls._trusted((m, k), row_ptr, col_idx, values)

    @classmethod
    def from_scipy(cls, S) -> "UnstructuredMatrix":
        """From any scipy.sparse matrix or array (duplicates summed, explicit zeros kept)."""
        import scipy.sparse as sp

        if not sp.issparse(S):
            raise TypeError(f"expected a scipy.sparse matrix, got {type(S).__name__}")
        if S.dtype.kind not in "biuf":
            raise TypeError(f"S must hold real numbers (got dtype {S.dtype})")
        csr = sp.csr_array(S, dtype=F32, copy=True)
        csr.sum_duplicates()
        csr.sort_indices()
        return cls(csr.shape, csr.indptr, csr.indices, csr.data)

    @property
    def nnz(self) -> int:
        return int(self.values.shape[0])

    @property
    def nbytes(self) -> int:
        return self.row_ptr.nbytes + self.col_idx.nbytes + self.values.nbytes

    def to_dense(self) -> np.ndarray:
        m, k = self._shape
        out = np.zeros((m, k), F32)
        rows = np.repeat(np.arange(m), np.diff(self.row_ptr))
        out[rows, self.col_idx] = self.values
        return out

    def to_scipy(self):
        """The same matrix as scipy's usual ``csr_array``: int32 indices where they fit,
        and its own writeable copies of the arrays."""
        import scipy.sparse as sp

        idx = np.int32 if max(self.nnz, self._shape[1]) < 2**31 else np.int64
        return sp.csr_array((self.values.copy(), self.col_idx.astype(idx),
                             self.row_ptr.astype(idx)), shape=self._shape)

    def _arrays(self):
        return {"row_ptr": self.row_ptr, "col_idx": self.col_idx, "values": self.values}

    @classmethod
    def _check_layout(cls, format, shape, specs, names):
        m, k = _check_shape(shape)
        _expect_arrays(specs, ("row_ptr", "col_idx", "values"), (), "an unstructured matrix")
        (rp_shape, _), (ci_shape, _), (v_shape, _) = (
            specs["row_ptr"], specs["col_idx"], specs["values"])
        _check_int_spec(specs["row_ptr"], "row_ptr")
        _check_int_spec(specs["col_idx"], "col_idx")
        if len(v_shape) != 1:
            raise ValueError(f"values must be 1-D (got shape {v_shape})")
        _check_real_spec(specs["values"], "values")
        if rp_shape[0] != m + 1:
            raise ValueError(f"row_ptr must have M + 1 = {m + 1} entries (got {rp_shape[0]})")
        if ci_shape[0] != v_shape[0]:
            raise ValueError(f"col_idx and values differ in length ({ci_shape[0]} vs "
                             f"{v_shape[0]})")
        if v_shape[0] > m * k:
            raise ValueError(f"nnz = {v_shape[0]} exceeds M*K = {m * k}")


def _index_dtype(k: int) -> np.dtype:
    return np.dtype(np.uint16) if k <= 65536 else np.dtype(np.int32)


def magnitude_mask(W: np.ndarray, sparsity) -> np.ndarray:
    """Boolean mask keeping the largest |W|: round(sparsity·W.size) entries are pruned
    (like torch.nn.utils.prune.l1_unstructured), and zeros are never kept."""
    s = check_fraction(sparsity, "sparsity")
    if not np.isfinite(W).all():
        raise ValueError("W has NaN or inf entries; magnitude pruning needs finite weights")
    size = W.size
    n_prune = int(round(s * size))
    keep = W != 0
    if n_prune == 0:
        return keep
    if n_prune >= size:
        return np.zeros(W.shape, bool)
    flat = np.abs(W).ravel()
    kept = np.argpartition(flat, n_prune)[n_prune:]
    mask = np.zeros(size, bool)
    mask[kept] = True
    return mask.reshape(W.shape) & keep


def _validate_csr(shape, row_ptr, col_idx, values):
    """The content checks of an unstructured matrix whose layout _check_layout passed."""
    m, k = shape
    rp, ci, vals = row_ptr, col_idx, values
    nnz = vals.shape[0]
    # every check below runs on the stored copies, never on the caller's arrays
    if rp.dtype.kind == "u" and rp.dtype.itemsize == 8 and rp.size and rp.max() > 2**62:
        raise ValueError("row_ptr entries are out of range")
    rp = _stored_ints(rp, np.int64, -2**63, 2**63, "row_ptr")   # bounded by the checks below
    if rp[0] != 0:
        raise ValueError(f"row_ptr[0] must be 0 (got {rp[0]})")
    if m and np.any(rp[1:] < rp[:-1]):
        bad = int(np.argmax(rp[1:] < rp[:-1]))
        raise ValueError(f"row_ptr must be non-decreasing (row_ptr[{bad + 1}] < row_ptr[{bad}])")
    if rp[-1] != nnz:
        raise ValueError(f"row_ptr[-1] must equal nnz = {nnz} (got {rp[-1]})")
    ci = _stored_ints(ci, _index_dtype(k), 0, k, "col_idx")
    starts = rp[:-1][rp[:-1] < rp[1:]]          # first entry of each non-empty row
    prev = -1
    for a in range(0, nnz, _CHUNK):
        c = ci[a:a + _CHUNK].astype(np.int64)
        row_start = np.zeros(c.size, bool)
        row_start[starts[(starts >= a) & (starts < a + c.size)] - a] = True
        bad = (np.diff(c, prepend=prev) <= 0) & ~row_start
        if bad.any():
            e = a + int(np.argmax(bad))
            row = int(np.searchsorted(rp, e, side="right")) - 1
            raise ValueError(f"col_idx must be strictly increasing within each row "
                             f"(row {row}, entry {e})")
        prev = int(c[-1])
    return (m, k), rp, ci, _readonly(vals, F32)


register_format(UnstructuredMatrix)
