"""matmul and linear: numpy arrays in, float32 numpy arrays out.

Inputs that are not float32 C-contiguous are converted (a copy); no input array is
ever modified. Shapes follow numpy's ``matmul`` and torch's ``linear``.
"""
from __future__ import annotations

import numpy as np

from .. import _backends
from .._errors import F32, as_bias, as_f32
from ..formats._base import PackedMatrix
from ..formats.act import ActMatrix
from . import act

__all__ = ["matmul", "linear", "product"]


def product(W):
    """The function computing W's product: f(W, X[K, N], bias or None, out[M, N])."""
    if isinstance(W, ActMatrix):
        return act.matmul
    return getattr(_backends.backend(), W._kernel)


def _check_packed(W, name: str):
    if not isinstance(W, PackedMatrix):
        raise TypeError(f"{name} must be a packed matrix from sparsekern.pack (got {type(W).__name__})")
    if W.ndim != 2:
        raise ValueError(f"{name} is a packed {W.ndim}-D weight (format {W.format!r}); matmul and "
                         f"linear need a 2-D one (use sparsekern.conv2d for conv weights)")


def _as_matrix(X, name: str) -> np.ndarray:
    """X as float32, C-contiguous or the transpose of a C-contiguous array (what the kernels
    read in place: a Fortran-ordered X is not copied); any other array is converted."""
    if (type(X) is np.ndarray and X.ndim == 2 and X.dtype == F32 and X.flags.aligned
            and X.flags.f_contiguous and not X.flags.c_contiguous):
        return X
    return as_f32(X, name)


def matmul(W, X) -> np.ndarray:
    """W @ X for packed W[M, K] and X of shape (K,), (K, N) or (..., K, N), like numpy.matmul."""
    _check_packed(W, "W")
    X = _as_matrix(X, "X")
    m, k = W._shape
    nd = X.ndim
    if nd == 2:
        if X.shape[0] != k:
            raise ValueError(f"matmul: W is {m}x{k} but X has {X.shape[0]} rows (shape {X.shape})")
        out = np.empty((m, X.shape[1]), F32)
        product(W)(W, X, None, out)
        return out
    if nd == 1:
        if X.shape[0] != k:
            raise ValueError(f"matmul: W is {m}x{k} but X has length {X.shape[0]}")
        out = np.empty((m, 1), F32)
        product(W)(W, X.reshape(k, 1), None, out)
        return out.reshape(m)
    if nd == 0:
        raise ValueError("matmul: X must have at least one dimension (got a scalar)")
    if X.shape[-2] != k:
        raise ValueError(f"matmul: W is {m}x{k} but X has {X.shape[-2]} rows (shape {X.shape})")
    batch, n = X.shape[:-2], X.shape[-1]
    count = int(np.prod(batch, dtype=np.int64))
    out = np.empty(batch + (m, n), F32)
    if n == 1:   # a stack of vectors is a token-major [count, K]: one call, no copies
        product(W)(W, X.reshape(count, k).T, None, out.reshape(count, m).T)
    elif n >= _BATCH_IN_PLACE_N:   # wide enough that W streams once per item anyway
        Xs, outs = X.reshape(count, k, n), out.reshape(count, m, n)
        for i in range(count):
            product(W)(W, Xs[i], None, outs[i])
    else:   # narrow items: one call over [K, count * n] streams W once, not count times
        flat = np.ascontiguousarray(np.moveaxis(X.reshape(count, k, n), 1, 0)).reshape(k, count * n)
        res = np.empty((m, count * n), F32)
        product(W)(W, flat, None, res)
        out.reshape(count, m, n)[...] = np.moveaxis(res.reshape(m, count, n), 0, 1)
    return out


# From this many columns per matrix a batched matmul runs one call per matrix: the kernels
# process X in blocks of 64 columns, each streaming W once, so nothing is lost by splitting.
_BATCH_IN_PLACE_N = 64


def linear(input, weight, bias=None, *, threshold=None, topk=None, select=None) -> np.ndarray:
    """input @ weight.T + bias for input (..., K) and packed weight (M, K), like
    torch.nn.functional.linear; returns (..., M).

    For activation-sparse weights (``pack(W, "act")``) the inputs can be sparsified
    first: ``threshold=t`` drops |x| <= t, ``topk=k`` keeps the k largest per row,
    ``select="wina"`` ranks by |x_k|·‖W[:, k]‖₂ instead of |x_k| (see sparsekern.act).
    Other formats reject these arguments (TypeError)."""
    _check_packed(weight, "weight")
    x = as_f32(input, "input")
    m, k = weight._shape
    if x.ndim == 0:
        raise ValueError("linear: input must have at least one dimension (got a scalar)")
    if x.shape[-1] != k:
        raise ValueError(f"linear: weight is {m}x{k} but input has {x.shape[-1]} features "
                         f"(shape {x.shape})")
    b = as_bias(bias, m, "linear")
    if weight.format == "act" or threshold is not None or topk is not None or select is not None:
        if not isinstance(weight, ActMatrix):
            raise TypeError(f"linear: threshold=, topk= and select= need weights packed with "
                            f"sk.pack(W, 'act') (got format {weight.format!r})")
        return act.linear(x, weight, b, threshold, topk, select)
    lead = x.shape[:-1]
    rows = int(np.prod(lead, dtype=np.int64))
    out = np.empty(lead + (m,), F32)
    # token-major views: the kernels read x and write out in place (x.T is W @ X's X)
    product(weight)(weight, x.reshape(rows, k).T, b, out.reshape(rows, m).T)
    return out

