"""Sparse 2-D convolution: ``conv2d`` (NCHW, like torch.nn.functional.conv2d) and
:class:`ConvWeight`, the packed form of a 4-D conv weight.

    Wc = sk.pack(W4, "unstructured", sparsity=0.9)   # W4 (C_out, C_in/groups, kh, kw)
    Wc = sk.pack(W4, "2:4")                          # N:M along C_in*kh*kw (C_in for 1x1)
    y = sk.conv2d(x, Wc, bias, stride=1, padding=0, dilation=1, groups=1)
    y = sk.conv2d(x, W_dw, bias, stride=2, padding=1, groups=C)   # dense numpy weights too

Packing: a conv weight is the 2-D matrix ``W4.reshape(C_out, -1)`` (column
``(ci*kh + ky)*kw + kx``, torch's order) packed in the requested format, plus the
4-D shape. Magnitude pruning (``sparsity=``) therefore runs over the whole tensor.
N:M formats group along C_in: their matrix is ``W4.transpose(0, 2, 3, 1).reshape(C_out,
-1)`` (column ``(ky*kw + kx)*C_in/groups + ci``), so every group of M holds M input
channels of one kernel position (for 1x1 kernels the two orders coincide).
``to_dense()`` gives back the 4-D array; save/load/pickle work as for every format
(format name ``"conv2d"``; the inner format is stored with it). Conv weights must
be finite (padding is implicit and contributes exactly nothing).

Execution:

* 1x1, groups=1, no padding: SpMM ``W[C_out, C_in] @ X[C_in, H*W]`` per image (stride
  > 1: the plane is subsampled first, a copy). Unstructured weights on the C backend go
  through ``sk_f32_conv2d_sparse``, which calls ``sk_f32_spmm_unstructured`` with
  ``ldx = H*W`` on L2-sized column chunks of the plane; N:M weights and the numba
  backend call the format's own matmul kernel per image.
* everything else: direct sparse convolution (``sk_f32_conv2d_sparse``): each stored
  weight accumulates a shifted input row into the output row, vectorized along the
  output width; borders are clipped, padding never materialized, no im2col buffer.
  Dense weights (a numpy array, e.g. depthwise) run the same kernel with every weight
  stored, so they multiply zeros too.

Non-finite inputs propagate as in the dense convolution: inf/NaN in ``x`` meeting a
structural zero of W gives NaN, exactly like torch's dense conv2d; padding zeros are
real zeros, and the weights are finite, so padding never produces NaN.
"""
from __future__ import annotations

import collections
import functools
import numbers
import threading

import numpy as np

from . import _dispatch
from ._errors import F32, as_bias, as_f32
from .formats import (PackedMatrix, UnstructuredMatrix, _all_finite, _empty_aligned, _readonly,
                      _rebuild, register_format)

__all__ = ["ConvWeight", "conv2d", "conv_output_size"]


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
        from .formats import _format_class

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
        from .formats import _format_class

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
            with _dispatch._build_lock:   # built once, published when complete
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


register_format(ConvWeight)


def _cin_last(cls) -> bool:
    """N:M groups run along C_in: such matrices store columns in (ky, kx, ci) order
    (``W4.transpose(0, 2, 3, 1)``); unstructured ones in torch's (ci, ky, kx) order.
    For 1x1 kernels both orders are the same."""
    return not issubclass(cls, UnstructuredMatrix)


def _to_matrix(W4: np.ndarray, cin_last: bool) -> np.ndarray:
    co, cg, kh, kw = W4.shape
    if cin_last:
        W4 = W4.transpose(0, 2, 3, 1)
    return np.ascontiguousarray(W4.reshape(co, cg * kh * kw))


def _conv_format_ok(cls) -> bool:
    """The 2-D formats a conv weight can hold: unstructured and N:M."""
    if issubclass(cls, UnstructuredMatrix):
        return True
    try:
        from .nm import NMMatrix
    except ImportError:  # pragma: no cover - N:M is part of the package
        return False
    return issubclass(cls, NMMatrix)


def _inner_format(value) -> str:
    """A conv weight's stored inner format (a string, or a 0-d string array from a file),
    checked to be one a conv weight can hold."""
    from .formats import _format_class

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


@functools.lru_cache(maxsize=64)
def _dense_structure(m: int, k: int):
    """row_ptr and col_idx of an (m, k) matrix with every entry stored (read-only, shared)."""
    row_ptr = np.arange(m + 1, dtype=np.int64) * k
    col_idx = np.tile(np.arange(k, dtype=np.uint16 if k <= 65536 else np.int32), m)
    return _readonly(row_ptr), _readonly(col_idx)


_DENSE_CACHE: "collections.OrderedDict" = collections.OrderedDict()
_DENSE_CACHE_SIZE = 64
_DENSE_LOCK = threading.Lock()   # conv2d may run in many threads: guards _DENSE_CACHE


def _dense_csr(W: np.ndarray) -> UnstructuredMatrix:
    """Every entry of W (C_out, Cg, kh, kw) float32 C-contiguous stored, zeros included
    (they multiply NaN too). The last few are cached (a network calls its depthwise layers
    with the same arrays every time), keyed by address and shape and checked by content,
    so an array changed in place is never served stale; the cached matrix holds a copy."""
    key = (W.__array_interface__["data"][0], W.shape)
    flat = W.reshape(-1)
    with _DENSE_LOCK:
        hit = _DENSE_CACHE.get(key)
        if hit is not None and np.array_equal(hit.values, flat):
            _DENSE_CACHE.move_to_end(key)
            return hit
    m = W.shape[0]
    k = int(np.prod(W.shape[1:], dtype=np.int64))
    row_ptr, col_idx = _dense_structure(m, k)
    csr = UnstructuredMatrix._trusted((m, k), row_ptr, col_idx, flat)   # copies the values
    with _DENSE_LOCK:
        _DENSE_CACHE[key] = csr
        while len(_DENSE_CACHE) > _DENSE_CACHE_SIZE:
            _DENSE_CACHE.popitem(last=False)
    return csr


# -------------------------------------------------------------------------- arguments

def _pair(v, name: str, minimum: int) -> tuple[int, int]:
    if isinstance(v, (tuple, list)):
        if len(v) != 2:
            raise ValueError(f"conv2d: {name} must be an int or a pair (got {v!r})")
        a, b = v
    else:
        a = b = v
    out = []
    for x in (a, b):
        if isinstance(x, (bool, np.bool_)) or not isinstance(x, numbers.Integral):
            raise TypeError(f"conv2d: {name} must be an int or a pair of ints (got {v!r})")
        if int(x) < minimum:
            raise ValueError(f"conv2d: {name} must be >= {minimum} (got {v!r})")
        out.append(int(x))
    return out[0], out[1]


def _padding(padding, k: tuple[int, int], stride, dilation):
    """(top, bottom, left, right)."""
    if isinstance(padding, str):
        p = padding.lower()
        if p == "valid":
            return 0, 0, 0, 0
        if p == "same":
            if stride != (1, 1):
                raise ValueError("conv2d: padding='same' is not supported for strided "
                                 "convolutions (as in torch)")
            th, tw = dilation[0] * (k[0] - 1), dilation[1] * (k[1] - 1)
            return th // 2, th - th // 2, tw // 2, tw - tw // 2
        raise ValueError(f"conv2d: padding must be an int, a pair, 'same' or 'valid' "
                         f"(got {padding!r})")
    ph, pw = _pair(padding, "padding", 0)
    return ph, ph, pw, pw


def conv_output_size(size: int, k: int, stride: int, pad_total: int, dilation: int) -> int:
    """torch's output length: floor((size + pad - dilation*(k-1) - 1) / stride) + 1."""
    return (size + pad_total - dilation * (k - 1) - 1) // stride + 1


# -------------------------------------------------------------------------- the op

_MAX_EXTENT = 2**62      # any extent of the geometry, so that C's int64 arithmetic cannot overflow

def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> np.ndarray:
    """2-D convolution of ``input`` (B, C_in, H, W) or (C_in, H, W) with ``weight``
    (a :class:`ConvWeight` from ``sk.pack(W4, ...)``, or a dense 4-D array such as a
    depthwise kernel), like ``torch.nn.functional.conv2d``: same argument names, output
    shape and padding/stride/dilation/groups semantics. Returns float32 (B, C_out, H', W')."""
    x = as_f32(input, "input")
    if isinstance(weight, ConvWeight):
        Wc = weight
        wshape = Wc.shape
    elif isinstance(weight, PackedMatrix):
        raise TypeError(f"conv2d: weight must be packed from a 4-D conv weight (got a "
                        f"{weight.shape[0]}x{weight.shape[1]} {type(weight).__name__}); "
                        f"use sk.pack(W4, ...) with W4 of shape (C_out, C_in/groups, kh, kw)")
    else:
        Wd = as_f32(weight, "weight")
        if Wd.ndim != 4:
            raise ValueError(f"conv2d: weight must be 4-D (C_out, C_in/groups, kh, kw); "
                             f"got shape {Wd.shape}")
        if Wd.shape[2] < 1 or Wd.shape[3] < 1:
            raise ValueError(f"conv2d: weight has an empty kernel (shape {Wd.shape})")
        if not np.isfinite(Wd).all():
            raise ValueError("conv2d: weight has NaN or inf entries; conv weights must be finite")
        Wc = None
        wshape = Wd.shape
    unbatched = x.ndim == 3
    if unbatched:
        x = x[None]
    if x.ndim != 4:
        raise ValueError(f"conv2d: input must be (B, C_in, H, W) or (C_in, H, W); got shape "
                         f"{x.shape}")
    if isinstance(groups, (bool, np.bool_)) or not isinstance(groups, numbers.Integral) or groups < 1:
        raise ValueError(f"conv2d: groups must be a positive integer (got {groups!r})")
    groups = int(groups)
    c_out, cg, kh, kw = wshape
    bsz, c_in, h, w = x.shape
    if c_in != cg * groups:
        raise ValueError(f"conv2d: weight {tuple(wshape)} with groups={groups} expects "
                         f"{cg * groups} input channels, but input has {c_in} (shape {x.shape})")
    if c_out % groups:
        raise ValueError(f"conv2d: C_out = {c_out} is not divisible by groups = {groups}")
    st = _pair(stride, "stride", 1)
    dl = _pair(dilation, "dilation", 1)
    pt, pb, pl, pr = _padding(padding, (kh, kw), st, dl)
    ho = conv_output_size(h, kh, st[0], pt + pb, dl[0])
    wo = conv_output_size(w, kw, st[1], pl + pr, dl[1])
    if max(h + pt + pb, w + pl + pr, dl[0] * kh, dl[1] * kw) > _MAX_EXTENT:
        raise ValueError(f"conv2d: padding {padding!r} or dilation {dilation!r} is too large "
                         f"(the padded input and the dilated kernel must span at most "
                         f"2**62 elements)")
    if ho < 1 or wo < 1:
        raise ValueError(f"conv2d: the kernel ({kh}x{kw}, dilation {dl}) is larger than the "
                         f"padded input ({h + pt + pb}x{w + pl + pr}); output would be "
                         f"{ho}x{wo}")
    if bsz * c_out * ho * wo > _MAX_EXTENT // 4:
        raise ValueError(f"conv2d: the output ({bsz}, {c_out}, {ho}, {wo}) would be too large "
                         f"to allocate (check padding={padding!r} and stride={stride!r})")
    # a single output row or column never steps: stride 1 there gives the same result and
    # keeps strides that do not fit the kernels' 64-bit geometry away from them
    # (with two or more outputs along an axis, its stride is at most the padded input)
    st = (1 if ho == 1 else st[0], 1 if wo == 1 else st[1])
    b = as_bias(bias, c_out, "conv2d")
    out = _empty_aligned((bsz, c_out, ho, wo))
    be = _dispatch.current or _dispatch.backend()
    if out.size == 0:
        pass
    elif (Wc is not None and kh == kw == 1 and groups == 1 and pt == pb == pl == pr == 0
          and c_in > 0):
        M = Wc.matrix
        xs = (x if (h, w) == (ho, wo)
              else np.ascontiguousarray(x[:, :, ::st[0], ::st[1]][:, :, :ho, :wo]))
        if be.name == "c" and isinstance(M, UnstructuredMatrix):
            # the C operator runs the unstructured SpMM over the plane in L2-sized chunks
            geom = (bsz, c_in, ho, wo, c_out, 1, 1, 1, 1, 1, 0, 0, 1, 1, ho, wo)
            be.conv2d_sparse(M, xs, geom, b, out)
        else:
            kern = getattr(be, M._kernel)
            for i in range(bsz):
                kern(M, xs[i].reshape(c_in, ho * wo), b, out[i].reshape(c_out, ho * wo))
    else:
        csr = Wc.csr() if Wc is not None else _dense_csr(Wd)
        geom = (bsz, c_in, h, w, c_out, kh, kw, groups, st[0], st[1], pt, pl, dl[0], dl[1], ho, wo)
        be.conv2d_sparse(csr, x, geom, b, out)
    return out[0] if unbatched else out
