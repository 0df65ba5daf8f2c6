"""The packed form of a 4-D conv weight: :class:`ConvWeight` (format name ``"conv2d"``).

    Wc = sk.pack(W4, "unstructured", sparsity=0.9)   # W4 (C_out, C_in/groups, kh, kw)
    Wc = sk.pack(W4, "2:4")                          # N:M along C_in*kh*kw (C_in for 1x1)

A conv weight is the 2-D matrix ``W4.reshape(C_out, -1)`` (column
``(ci*kh + ky)*kw + kx``, torch's order) packed in the requested format, plus the
4-D shape. Magnitude pruning (``sparsity=``) therefore runs over the whole tensor.
N:M formats group along C_in: their matrix is ``W4.transpose(0, 2, 3, 1).reshape(C_out,
-1)`` (column ``(ky*kw + kx)*C_in/groups + ci``), so every group of M holds M input
channels of one kernel position (for 1x1 kernels the two orders coincide). Each 2-D
format says which order it takes (``_conv_order``; None: it cannot hold a conv weight).
``to_dense()`` gives back the 4-D array; save/load/pickle work as for every format
(the inner format is stored with it). Conv weights must be finite (padding is
implicit and contributes exactly nothing). sparsekern.ops.conv runs them.
"""
from __future__ import annotations

import numbers

import numpy as np

from .._errors import F32
from ._base import (PackedMatrix, _all_finite, _format_class, _lazy_lock, _rebuild,
                    register_format)
from .unstructured import UnstructuredMatrix

__all__ = ["ConvWeight"]


class ConvWeight(PackedMatrix):
    """A packed conv weight (C_out, C_in/groups, kh, kw): the packed 2-D matrix
    ``matrix`` (C_out, C_in/groups*kh*kw) in any 2-D format, plus the 4-D shape."""

    format = "conv2d"
    format_help = "'conv2d' (4-D weights: pack(W4, 'unstructured' or 'N:M'))"
    _kernel = ""
    __slots__ = ("_matrix", "_csr")

    def __init__(self, shape, matrix: PackedMatrix):
        shape = _check_shape4(shape)
        if not isinstance(matrix, PackedMatrix) or isinstance(matrix, ConvWeight):
            raise TypeError(f"matrix must be a packed 2-D matrix (got {type(matrix).__name__})")
        if matrix.shape != (shape[0], shape[1] * shape[2] * shape[3]):
            raise ValueError(f"a conv weight of shape {shape} needs a packed matrix of shape "
                             f"{(shape[0], shape[1] * shape[2] * shape[3])} (got {matrix.shape})")
        if not _conv_format_ok(type(matrix)):
            raise ValueError(f"matrix: conv2d weights in format {matrix.format!r} are not "
                             f"supported; use 'unstructured' or an N:M pattern")
        self._shape = shape
        self._matrix = matrix
        self._csr = None
        if not _all_finite(self._inner_values()):
            raise ValueError("conv weights must be finite (W has NaN or inf entries)")

    def _inner_values(self) -> np.ndarray:
        v = getattr(self._matrix, "values", None)
        return v if isinstance(v, np.ndarray) else self._matrix.to_dense()

    @classmethod
    def _accepts(cls, name: str) -> bool:
        return name == "conv2d"

    @classmethod
    def _pack(cls, W, format: str, **options) -> "ConvWeight":
        return cls.from_dense(W, "unstructured", **options)

    @classmethod
    def from_dense(cls, W, format: str = "unstructured", **options) -> "ConvWeight":
        """Pack a dense 4-D weight W (C_out, C_in/groups, kh, kw) in 2-D ``format``
        (with that format's options, e.g. ``sparsity=`` for "unstructured")."""
        arr = np.asarray(W)
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"W must be a real numeric array (got dtype {arr.dtype})")
        if arr.ndim != 4:
            raise ValueError(f"a conv weight must be 4-D (C_out, C_in/groups, kh, kw); "
                             f"got shape {arr.shape}")
        arr = np.asarray(arr, dtype=F32)
        if not np.isfinite(arr).all():
            raise ValueError("conv weights must be finite (W has NaN or inf entries)")
        fmt = "unstructured" if format == "conv2d" else format
        inner_cls = _format_class(fmt) if isinstance(fmt, str) else None
        if inner_cls is None or inner_cls is ConvWeight:
            raise ValueError(f"unknown format {format!r} for a conv weight")
        if not _conv_format_ok(inner_cls):
            raise ValueError(f"conv2d weights in format {fmt!r} are not supported; use "
                             f"'unstructured' or an N:M pattern such as '2:4'")
        inner = inner_cls._pack(_to_matrix(arr, _cin_last(inner_cls)), fmt, **options)
        return cls(arr.shape, inner)

    @classmethod
    def _load(cls, format: str, shape: tuple, arrays: dict) -> "ConvWeight":
        arrays = dict(arrays)
        inner_fmt = _inner_format(arrays.pop("inner_format", None))
        s = _check_shape4(shape)
        inner = _rebuild(inner_fmt, (s[0], s[1] * s[2] * s[3]), arrays)
        return cls(s, inner)

    @classmethod
    def _check_layout(cls, format, shape, specs, names):
        co, cg, kh, kw = _check_shape4(shape)
        specs = dict(specs)
        specs.pop("inner_format", None)        # its value, when it is a string, is in names
        inner = _inner_format(names.get("inner_format"))
        _format_class(inner)._check_layout(inner, (co, cg * kh * kw), specs, {})

    def _arrays(self):
        d = dict(self._matrix._arrays())
        d["inner_format"] = np.array(self._matrix.format)
        return d

    # -- properties ------------------------------------------------------------------
    matrix = property(lambda self: self._matrix, doc="the packed (C_out, C_in/groups*kh*kw) matrix")
    kernel_size = property(lambda self: (self._shape[2], self._shape[3]))
    inner_format = property(lambda self: self._matrix.format)

    @property
    def ndim(self) -> int:
        return 4

    @property
    def size(self) -> int:
        return int(np.prod(self._shape, dtype=np.int64))

    @property
    def nnz(self) -> int:
        return self._matrix.nnz

    @property
    def nbytes(self) -> int:
        return self._matrix.nbytes

    def to_dense(self) -> np.ndarray:
        D = self._matrix.to_dense()
        co, cg, kh, kw = self._shape
        if _cin_last(type(self._matrix)):
            return np.ascontiguousarray(D.reshape(co, kh, kw, cg).transpose(0, 3, 1, 2))
        return D.reshape(self._shape)

    def csr(self) -> UnstructuredMatrix:
        """The weights as an unstructured matrix (what the direct convolution runs on)."""
        csr = self._csr
        if csr is None:
            with _lazy_lock:   # built once, published when complete
                csr = self._csr
                if csr is None:
                    csr = (self._matrix if isinstance(self._matrix, UnstructuredMatrix)
                           else UnstructuredMatrix.from_dense(
                               self.to_dense().reshape(self._shape[0], -1)))
                    self._csr = csr
        return csr

    def __repr__(self) -> str:
        return (f"<ConvWeight {'x'.join(map(str, self._shape))} format={self.inner_format!r} "
                f"nnz={self.nnz} density={self.density:.4g} nbytes={self.nbytes}>")

    def __eq__(self, other):
        if not isinstance(other, ConvWeight):
            return NotImplemented if not isinstance(other, PackedMatrix) else False
        return other._shape == self._shape and self._matrix == other._matrix

    __hash__ = None

    def __matmul__(self, other):
        raise TypeError("a conv weight has no matrix product; use sparsekern.conv2d(x, W), "
                        "or W.matrix @ X for the (C_out, C_in*kh*kw) matrix")


register_format(ConvWeight, input_ndim=4)


def _cin_last(cls) -> bool:
    """True when ``cls`` stores conv columns in (ky, kx, ci) order (``W4.transpose(0, 2, 3,
    1)``), False for torch's (ci, ky, kx) order; for 1x1 kernels both are the same."""
    return cls._conv_order == "ky_kx_ci"


def _to_matrix(W4: np.ndarray, cin_last: bool) -> np.ndarray:
    co, cg, kh, kw = W4.shape
    if cin_last:
        W4 = W4.transpose(0, 2, 3, 1)
    return np.ascontiguousarray(W4.reshape(co, cg * kh * kw))


def _conv_format_ok(cls) -> bool:
    """The 2-D formats a conv weight can hold: those that name a column order."""
    return cls._conv_order is not None


def _inner_format(value) -> str:
    """A conv weight's stored inner format (a string, or a 0-d string array from a file),
    checked to be one a conv weight can hold."""
    if isinstance(value, np.ndarray) and value.shape == () and value.dtype.kind == "U":
        value = str(value)
    if not isinstance(value, str):
        raise ValueError(f"corrupt conv2d weight: missing or bad inner_format ({value!r})")
    cls = _format_class(value)
    if cls is None or not _conv_format_ok(cls):
        raise ValueError(f"corrupt conv2d weight: inner_format {value!r} is not 'unstructured' "
                         f"or an N:M pattern")
    return value


def _check_shape4(shape) -> tuple[int, int, int, int]:
    try:
        dims = tuple(shape)
    except TypeError:
        raise TypeError(f"a conv weight shape must be 4 non-negative integers (got {shape!r})") from None
    if not all(isinstance(d, numbers.Integral) and not isinstance(d, (bool, np.bool_))
               for d in dims):
        raise TypeError(f"a conv weight shape must be 4 non-negative integers (got {shape!r})")
    dims = tuple(int(d) for d in dims)
    if len(dims) != 4 or min(dims) < 0 or dims[2] < 1 or dims[3] < 1:
        raise ValueError(f"a conv weight shape must be (C_out, C_in/groups, kh, kw) with "
                         f"kh, kw >= 1 (got {shape!r})")
    return dims
