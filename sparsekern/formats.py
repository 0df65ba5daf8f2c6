"""Packed sparse formats: immutable objects over plain numpy arrays.

Every format validates its arrays once, when it is built or loaded; the kernels
trust what they are given. Arrays are stored read-only.

Unstructured layout (``"unstructured"``), compressed rows of W[M, K]:

* ``row_ptr``  int64[M + 1]: row m's nonzeros are entries row_ptr[m]:row_ptr[m+1]
* ``col_idx``  uint16[nnz] when K <= 65536, else int32[nnz]; strictly increasing
  within each row
* ``values``   float32[nnz]

Bytes per nonzero: 6 with 16-bit indices (4 value + 2 index), 8 with 32-bit ones,
plus 8·(M+1) bytes of row offsets.
"""
from __future__ import annotations

import numbers
import os

import numpy as np

from ._errors import F32, check_fraction

__all__ = ["PackedMatrix", "UnstructuredMatrix", "pack", "save", "load"]

_FILE_VERSION = 1
_MAX_COLS = 2**31 - 1


def _empty_aligned(shape, dtype=F32, align: int = 64) -> np.ndarray:
    """np.empty starting on a cache-line boundary (numpy's large arrays start 16 bytes
    into one): the kernels' 64-byte vector loads and stores then never split a line."""
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    buf = np.empty(nbytes + align, np.uint8)
    off = -buf.__array_interface__["data"][0] % align
    return buf[off:off + nbytes].view(dtype).reshape(shape)


def _readonly(a: np.ndarray, dtype=None, copy: bool = False) -> np.ndarray:
    """A read-only, cache-line-aligned view of ``a`` (converted to ``dtype``), copied
    when ``copy`` is set, the dtype differs or ``a`` is not aligned. Unlike the array
    itself, the view cannot be made writeable again with setflags(write=True): the C
    kernels trust these arrays."""
    dtype = np.dtype(dtype or a.dtype)
    if copy or a.dtype != dtype or a.__array_interface__["data"][0] % 64:
        out = _empty_aligned(a.shape, dtype)
        out[...] = a
        out.base.setflags(write=False)   # the buffer too, so no view becomes writeable
        a = out
    a.setflags(write=False)
    return a.view()


class PackedMatrix:
    """Base of the packed formats: shape, nnz, density, nbytes, format, to_dense(), ``@``."""

    format: str = ""
    format_help: str = ""       # how pack()'s error message lists this format
    _kernel: str = ""           # the backend method that multiplies this format

    @classmethod
    def _accepts(cls, name: str) -> bool:
        return name == cls.format

    @classmethod
    def _pack(cls, W, format: str, **options) -> "PackedMatrix":
        raise NotImplementedError

    @classmethod
    def _load(cls, format: str, shape: tuple, arrays: dict) -> "PackedMatrix":
        """Rebuild (validated) from save()/pickle data: the inverse of ``_arrays``."""
        return cls(shape, **arrays)
    __slots__ = ("_shape", "__weakref__")

    @property
    def shape(self) -> tuple[int, int]:
        return self._shape

    @property
    def ndim(self) -> int:
        return 2

    @property
    def dtype(self) -> np.dtype:
        return F32

    @property
    def size(self) -> int:
        return self._shape[0] * self._shape[1]

    @property
    def density(self) -> float:
        return self.nnz / self.size if self.size else 0.0

    # numpy defers to us for `X @ Wp` instead of trying to treat Wp as an array
    __array_ufunc__ = None

    def __rmatmul__(self, other):
        raise TypeError(f"X @ W with a packed W on the right is not supported; compute "
                        f"linear(X, W) for X @ W.T, or W @ X (got {type(other).__name__} @ "
                        f"{type(self).__name__})")

    def __repr__(self) -> str:
        m, k = self._shape
        return (f"<{type(self).__name__} {m}x{k} format={self.format!r} nnz={self.nnz} "
                f"density={self.density:.4g} nbytes={self.nbytes}>")

    def _arrays(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def __reduce__(self):
        return (_rebuild, (self.format, self._shape, self._arrays()))

    def __eq__(self, other):
        if type(other) is not type(self) or other._shape != self._shape:
            return NotImplemented if not isinstance(other, PackedMatrix) else False
        a, b = self._arrays(), other._arrays()
        return a.keys() == b.keys() and all(
            a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k], equal_nan=True) for k in a)

    __hash__ = None


class UnstructuredMatrix(PackedMatrix):
    """W[M, K] with arbitrary nonzero positions, in compressed rows (see module doc)."""

    format = "unstructured"
    format_help = "'unstructured'"
    _kernel = "spmm_unstructured"
    # _c: the C library's view of the arrays; _panels: the panel layout it builds for
    # batch > 1 on dense-ish rows (derived data, built lazily by the C backend)
    __slots__ = ("_row_ptr", "_col_idx", "_values", "_c", "_panels")

    # read-only: the C handle cached in _c points into these very arrays
    row_ptr = property(lambda self: self._row_ptr, doc="int64[M + 1] row offsets")
    col_idx = property(lambda self: self._col_idx, doc="uint16 or int32 [nnz] column indices")
    values = property(lambda self: self._values, doc="float32[nnz] nonzero values")

    def __init__(self, shape, row_ptr, col_idx, values):
        """Build from compressed-row arrays; validates them (ValueError/TypeError on any fault)."""
        self._shape, self._row_ptr, self._col_idx, self._values = _validate_csr(
            shape, row_ptr, col_idx, values)
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


def _index_dtype(k: int) -> np.dtype:
    return np.dtype(np.uint16) if k <= 65536 else np.dtype(np.int32)


def _as_matrix(W) -> np.ndarray:
    arr = np.asarray(W)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"W must be a real numeric array (got dtype {arr.dtype})")
    if arr.ndim != 2:
        raise ValueError(f"W must be 2-D (M, K), or 4-D (C_out, C_in, kh, kw) for a conv weight; got shape {arr.shape}")
    if arr.shape[1] > _MAX_COLS:
        raise ValueError(f"W has {arr.shape[1]} columns; at most {_MAX_COLS} are supported")
    return np.asarray(arr, dtype=F32)


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


def _check_shape(shape) -> tuple[int, int]:
    try:
        dims = tuple(shape)
    except TypeError:
        raise TypeError(f"shape must be a pair of non-negative integers (got {shape!r})") from None
    if len(dims) != 2 or not all(isinstance(d, numbers.Integral) and not isinstance(d, bool)
                                 for d in dims):
        raise ValueError(f"shape must be a pair of non-negative integers (got {shape!r})")
    m, k = int(dims[0]), int(dims[1])
    if m < 0 or k < 0:
        raise ValueError(f"shape must be non-negative (got {shape!r})")
    if k > _MAX_COLS or m > 2**62:
        raise ValueError(f"shape {shape!r} is too large")
    return m, k


def _int_array(a, name: str) -> np.ndarray:
    arr = np.asarray(a)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (got shape {arr.shape})")
    if arr.dtype.kind not in "iu":
        if arr.size == 0 and arr.dtype.kind == "f":
            return np.zeros(0, np.int64)
        raise TypeError(f"{name} must hold integers (got dtype {arr.dtype})")
    return arr


def _validate_csr(shape, row_ptr, col_idx, values):
    m, k = _check_shape(shape)
    rp = _int_array(row_ptr, "row_ptr")
    ci = _int_array(col_idx, "col_idx")
    vals = np.asarray(values)
    if vals.ndim != 1:
        raise ValueError(f"values must be 1-D (got shape {vals.shape})")
    if vals.dtype.kind not in "biuf":
        raise TypeError(f"values must be real numbers (got dtype {vals.dtype})")
    if rp.shape[0] != m + 1:
        raise ValueError(f"row_ptr must have M + 1 = {m + 1} entries (got {rp.shape[0]})")
    if ci.shape[0] != vals.shape[0]:
        raise ValueError(f"col_idx and values differ in length ({ci.shape[0]} vs {vals.shape[0]})")
    nnz = vals.shape[0]
    if rp.dtype.kind == "u" and rp.dtype.itemsize == 8 and rp.size and rp.max() > 2**62:
        raise ValueError("row_ptr entries are out of range")
    rp = rp.astype(np.int64, copy=False)
    if rp[0] != 0:
        raise ValueError(f"row_ptr[0] must be 0 (got {rp[0]})")
    if m and np.any(rp[1:] < rp[:-1]):
        bad = int(np.argmax(rp[1:] < rp[:-1]))
        raise ValueError(f"row_ptr must be non-decreasing (row_ptr[{bad + 1}] < row_ptr[{bad}])")
    if rp[-1] != nnz:
        raise ValueError(f"row_ptr[-1] must equal nnz = {nnz} (got {rp[-1]})")
    if nnz > m * k:
        raise ValueError(f"nnz = {nnz} exceeds M*K = {m * k}")
    if nnz:
        ci64 = ci.astype(np.int64, copy=False)
        lo, hi = int(ci64.min()), int(ci64.max())
        if lo < 0 or hi >= k:
            raise ValueError(f"col_idx must lie in [0, {k}) (found {lo if lo < 0 else hi})")
        step = np.diff(ci64)
        row_start = np.zeros(nnz, bool)
        starts = rp[:-1][rp[:-1] < rp[1:]]
        row_start[starts] = True
        if np.any((step <= 0) & ~row_start[1:]):
            bad = int(np.argmax((step <= 0) & ~row_start[1:])) + 1
            row = int(np.searchsorted(rp, bad, side="right")) - 1
            raise ValueError(f"col_idx must be strictly increasing within each row "
                             f"(row {row}, entry {bad})")
    # own copies: the stored arrays are made read-only, the caller's never are
    return ((m, k), _readonly(rp, np.int64, copy=True), _readonly(ci, _index_dtype(k), copy=True),
            _readonly(vals, F32, copy=True))


# The format registry. Each class names its format (``format``, or ``_accepts`` for a
# family of names such as "2:4"), the backend method its kernels run under (``_kernel``),
# how pack() builds it (``_pack``) and how a file or pickle rebuilds it (``_load``).
_FORMATS: list[type] = [UnstructuredMatrix]


def register_format(cls: type) -> type:
    _FORMATS.append(cls)
    return cls


def _format_class(name: str):
    for cls in _FORMATS:
        if cls._accepts(name):
            return cls
    return None


def _format_names() -> list[str]:
    return [cls.format_help for cls in _FORMATS]


def _rebuild(fmt: str, shape, arrays: dict):
    cls = _format_class(fmt)
    if cls is None:
        raise ValueError(f"unknown packed format {fmt!r}")
    return cls._load(fmt, tuple(shape), arrays)


def pack(W, format: str = "unstructured", **options) -> PackedMatrix:
    """Pack dense weights W (M, K) into a sparse format.

    ``format="unstructured"`` keeps the nonzeros of W at any positions; with
    ``sparsity`` (a fraction in [0, 1]) W is first magnitude-pruned so that
    round(sparsity·W.size) of its entries are zero. W is converted to float32 and
    never modified. Other formats take their own options (see each format class).
    """
    if not isinstance(format, str):
        raise TypeError(f"format must be a string (got {format!r})")
    cls = _format_class(format)
    if cls is None:
        raise ValueError(f"unknown format {format!r}; available: {', '.join(_format_names())}")
    if np.ndim(W) == 4:   # a conv weight (C_out, C_in/groups, kh, kw): see sparsekern.conv
        from .conv import ConvWeight

        return ConvWeight.from_dense(W, format, **options)
    return cls._pack(W, format, **options)


def save(file, W: PackedMatrix) -> None:
    """Save a packed matrix as an ``.npz`` archive to exactly the path given (or a file object)."""
    if not isinstance(W, PackedMatrix):
        raise TypeError(f"expected a packed matrix, got {type(W).__name__}")
    if isinstance(file, (str, os.PathLike)):   # np.savez would append ".npz" to other names
        with open(file, "wb") as f:
            save(f, W)
        return
    np.savez(file, sparsekern_format=np.array(W.format), shape=np.array(W.shape, np.int64),
             version=np.array(_FILE_VERSION, np.int64), **W._arrays())


def load(file) -> PackedMatrix:
    """Load and validate a packed matrix written by :func:`save`."""
    if isinstance(file, (str, os.PathLike)) and not os.path.exists(file):
        raise FileNotFoundError(file)
    try:
        with np.load(file, allow_pickle=False) as z:
            data = {name: z[name] for name in z.files}
    except (ValueError, OSError, EOFError, KeyError) as e:
        raise ValueError(f"not a readable sparsekern .npz file: {e}") from e
    except Exception as e:  # zipfile.BadZipFile and friends
        raise ValueError(f"not a readable sparsekern .npz file: {e}") from e
    for key in ("sparsekern_format", "shape", "version"):
        if key not in data:
            raise ValueError(f"not a sparsekern file: missing {key!r}")
    fmt = data.pop("sparsekern_format")
    if fmt.shape != () or fmt.dtype.kind != "U":
        raise ValueError("corrupt sparsekern file: bad format field")
    version = data.pop("version")
    if version.shape != () or version.dtype.kind not in "iu" or int(version) != _FILE_VERSION:
        raise ValueError(f"unsupported sparsekern file version {version!r}")
    shape = data.pop("shape")
    if shape.ndim != 1 or shape.dtype.kind not in "iu":
        raise ValueError(f"corrupt sparsekern file: bad shape {shape!r}")
    cls = _format_class(str(fmt))
    if cls is None:
        raise ValueError(f"unknown packed format {str(fmt)!r} in file")
    try:
        return cls._load(str(fmt), tuple(int(d) for d in shape), data)
    except TypeError as e:
        raise ValueError(f"corrupt sparsekern file: {e}") from e
