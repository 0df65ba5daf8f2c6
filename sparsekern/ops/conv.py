"""Sparse 2-D convolution: ``conv2d`` (NCHW, like torch.nn.functional.conv2d).

    y = sk.conv2d(x, Wc, bias, stride=1, padding=0, dilation=1, groups=1)  # Wc = sk.pack(W4, ...)
    y = sk.conv2d(x, W_dw, bias, stride=2, padding=1, groups=C)   # dense numpy weights too

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
import typing

import numpy as np

from .. import _backends
from .._errors import as_bias, as_f32
from ..formats._base import PackedMatrix, _empty_aligned, _readonly
from ..formats.conv import ConvWeight
from ..formats.unstructured import UnstructuredMatrix
from .linear import product

__all__ = ["ConvGeometry", "conv2d", "conv_output_size"]


class ConvGeometry(typing.NamedTuple):
    """The fields of the C library's sk_conv2d_geom, in its order (the numba backend
    takes the same tuple)."""
    batch: int
    c_in: int
    h: int
    w: int
    c_out: int
    kh: int
    kw: int
    groups: int
    stride_h: int
    stride_w: int
    pad_h: int
    pad_w: int
    dil_h: int
    dil_w: int
    h_out: int
    w_out: int


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
    be = _backends.backend()
    if out.size == 0:
        pass
    elif (Wc is not None and kh == kw == 1 and groups == 1 and pt == pb == pl == pr == 0
          and c_in > 0):
        M = Wc.matrix
        xs = (x if (h, w) == (ho, wo)
              else np.ascontiguousarray(x[:, :, ::st[0], ::st[1]][:, :, :ho, :wo]))
        if be.name == "c" and isinstance(M, UnstructuredMatrix):
            # the C operator runs the unstructured SpMM over the plane in L2-sized chunks
            geom = ConvGeometry(bsz, c_in, ho, wo, c_out, 1, 1, 1, 1, 1, 0, 0, 1, 1, ho, wo)
            be.conv2d_sparse(M, xs, geom, b, out)
        else:
            kern = product(M)
            for i in range(bsz):
                kern(M, xs[i].reshape(c_in, ho * wo), b, out[i].reshape(c_out, ho * wo))
    else:
        csr = Wc.csr() if Wc is not None else _dense_csr(Wd)
        geom = ConvGeometry(bsz, c_in, h, w, c_out, kh, kw, groups, *st, pt, pl, *dl, ho, wo)
        be.conv2d_sparse(csr, x, geom, b, out)
    return out[0] if unbatched else out
