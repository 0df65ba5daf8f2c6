"""Activation sparsity: the selection policies of ``linear`` on ``"act"`` weights and
:class:`DeltaLinear`.

    Wa = sk.pack(W, "act")                  # W (M, K) stored input-major + column norms
    y = sk.linear(x, Wa, b)                 # exact: skips inputs that are exactly 0
    y = sk.linear(x, Wa, b, threshold=t)    # TEAL: |x| <= t counts as zero
    y = sk.linear(x, Wa, b, topk=k)         # per row of x keep the k largest |x|
    y = sk.linear(x, Wa, b, topk=k, select="wina")   # rank by |x_k| * ||W[:, k]||_2
    d = sk.DeltaLinear(Wa, b, threshold=theta)        # temporal (delta) sparsity

The weights are an :class:`~sparsekern.formats.act.ActMatrix` (``sk.pack(W, "act")``).

Semantics (``tests/reference.py`` implements them densely):

* Every row of x selects its channels; the result is the sum over the selected
  channels k of ``x[k] * W[:, k]``, plus the bias. Channels not selected contribute
  nothing, whatever W holds (an inf weight on a dropped channel does not give NaN).
* score = |x_k| (``select="magnitude"``, the default) or |x_k|·‖W[:, k]‖₂ (``"wina"``),
  computed in float32. With ``threshold=t`` a channel is a candidate when
  ``not (score <= t)``, with t converted to float32 first: a NaN input is always a
  candidate and propagates, as in dense BLAS. ``topk=k`` keeps the k largest candidate
  scores of each row (all of them when there are at most k); NaN ranks above +inf;
  among equal scores any choice is valid (the C kernels take the lower channels).
* Exact mode (neither threshold nor topk) selects every channel, so it equals dense
  ``x @ W.T + b`` including non-finite weights: when W is all finite (checked at pack
  time) inputs that are exactly 0 are skipped, since they contribute exactly 0; when W
  holds inf/NaN nothing is skipped (0·inf = NaN, as dense BLAS gives).

Batches: the rows of x are taken in blocks of 16. When a block's rows use at least half
of the (row, channel) pairs of the union of their channels, the block reads each weight
row of the union once for all its rows (each row with its own values, 0 where it dropped
the channel; 4 rows share every weight load); otherwise each row streams its own
channels (more weight bytes, later rows mostly from L2/L3, but no multiply-adds of
zeros). Measured (4096x4096 cold, 8 rows of 90% zeros, 1 thread, Zen 5): zero sets
shared (union 10% of K): union 0.70 ms vs per row 1.1 ms; independent zeros (union 57%
of K): union 2.8 ms vs per row 1.6 ms before the rule, both 1.5 ms with it. With
non-finite weights every row runs alone (a shared 0·inf would be NaN in a row that
dropped the channel).
"""
from __future__ import annotations

import numbers

import numpy as np

from .. import _backends
from .._errors import F32, as_bias, as_f32
from ..formats._base import _readonly
from ..formats.act import ActMatrix

__all__ = ["DeltaLinear", "linear", "matmul", "selection"]

SELECT = {"magnitude": 0, "wina": 1}


# ----------------------------------------------------------------------------- selection

def _check_threshold(t, name: str = "threshold") -> float:
    if isinstance(t, (bool, np.bool_)) or not isinstance(t, numbers.Real):
        raise TypeError(f"{name} must be a real number >= 0 (got {t!r})")
    v = float(t)
    if np.isnan(v) or v < 0:
        raise ValueError(f"{name} must be a number >= 0 (got {t!r})")
    with np.errstate(over="ignore"):
        return float(np.float32(v))       # the kernels compare in float32 (huge -> inf)


def _check_topk(k) -> int:
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, numbers.Integral):
        raise TypeError(f"topk must be a non-negative integer (got {k!r})")
    v = int(k)
    if v < 0:
        raise ValueError(f"topk must be >= 0 (got {v})")
    return min(v, 2**62)


def selection(W: ActMatrix, threshold=None, topk=None, select=None) -> tuple[float, int, int]:
    """Validated (threshold, topk, select) for the C/numba kernels: threshold -1 keeps every
    channel, topk -1 means no limit, select 0 magnitude / 1 wina."""
    if threshold is None and topk is None and select is None:      # exact mode, the fast path
        return (0.0 if W._finite else -1.0), -1, 0
    if select is None:
        sel = 0
    elif not isinstance(select, str):
        raise TypeError(f"select must be 'magnitude' or 'wina' (got {select!r})")
    elif select not in SELECT:
        raise ValueError(f"select must be 'magnitude' or 'wina' (got {select!r})")
    else:
        sel = SELECT[select]
    t = None if threshold is None else _check_threshold(threshold)
    k = None if topk is None else _check_topk(topk)
    if sel == 1 and t is None and k is None:
        raise ValueError("select='wina' ranks inputs for topk= or threshold=; give one of them")
    if t is None and k is None:           # exact: every channel (zeros skipped if W is finite)
        return (0.0 if W.finite else -1.0), -1, 0
    return (-1.0 if t is None else t), (-1 if k is None else k), sel


def linear(x: np.ndarray, W: ActMatrix, b, threshold=None, topk=None, select=None) -> np.ndarray:
    """ops.linear for the "act" format; x float32 C-contiguous (..., K), b checked or None."""
    m, k = W.shape
    thr, kk, sel = selection(W, threshold, topk, select)
    lead = x.shape[:-1]
    if x.ndim == 1:
        out = np.empty(m, F32)
        _backends.backend().act_linear(W, x, b, out, thr, kk, sel, 1)
        return out
    rows = int(np.prod(lead, dtype=np.int64))
    out = np.empty((rows, m), F32)
    _backends.backend().act_linear(W, x.reshape(rows, k), b, out, thr, kk, sel, rows)
    return out.reshape(lead + (m,))


def matmul(W: ActMatrix, X: np.ndarray, bias, out: np.ndarray) -> None:
    """out[M, N] = W @ X[K, N] (+ bias), exact mode, through the row kernel on X.T."""
    m, k = W.shape
    n = X.shape[1]
    if n == 0 or m == 0:
        return
    xt = np.ascontiguousarray(X.T)   # no copy for linear's token-major X
    in_place = out.T.flags.c_contiguous   # linear's token-major out
    tmp = out.T if in_place else np.empty((n, m), F32)
    thr, kk, sel = selection(W)
    _backends.backend().act_linear(W, xt, bias, tmp, thr, kk, sel, n)
    if not in_place:
        out[...] = tmp.T


# ----------------------------------------------------------------------------- delta

class DeltaLinear:
    """Temporal (delta) sparsity: a stateful linear layer for streams of similar inputs.

    ``y_t = d(x_t)`` computes ``y_t = y_{t-1} + W @ delta`` with ``delta = x_t - x_ref``
    where the channels with ``|delta| <= threshold`` are zeroed; ``x_ref`` takes ``x_t``
    on the channels used. So ``|x_t - x_ref| <= threshold`` after every step and
    ``y_t = W @ x_ref + b``: the error against the exact ``W @ x_t + b`` never exceeds
    ``threshold * sum_k |W[m, k]|`` (plus float32 rounding of the running sum), however
    long the stream. The first call starts from ``x_ref = 0, y = b``.

    x may be (K,) or (..., K); the leading shape is fixed by the first call after
    construction or :meth:`reset` (a different one raises ValueError). The state lives
    in numpy arrays (``x_ref``, ``y``) and is updated in place: a DeltaLinear is **not
    thread-safe**; give each thread/stream its own. Inputs with inf/NaN propagate into
    the state (as into a running sum) until :meth:`reset`.

    ``stats``: the fraction of input channels skipped so far (since the last reset).
    """

    def __init__(self, weight, bias=None, threshold=0.0):
        if not isinstance(weight, ActMatrix):
            raise TypeError(f"DeltaLinear needs weights packed with sk.pack(W, 'act') (got "
                            f"{type(weight).__name__})")
        self.weight = weight
        m, _ = weight.shape
        self.bias = None
        if bias is not None:
            self.bias = _readonly(as_bias(bias, m, "DeltaLinear"), F32)
        self.threshold = _check_threshold(threshold)
        self.reset()

    def reset(self) -> None:
        """Forget the state: the next call starts from x_ref = 0, y = bias, any batch shape."""
        self._lead = None
        self.x_ref = None
        self.y = None
        self._steps = 0
        self._skipped = 0
        self._total = 0

    @property
    def steps(self) -> int:
        return self._steps

    @property
    def stats(self) -> float:
        """Fraction of input channels (rows x K per step) skipped since the last reset."""
        return self._skipped / self._total if self._total else 0.0

    def __call__(self, x) -> np.ndarray:
        m, k = self.weight.shape
        x = as_f32(x, "x")
        if x.ndim == 0 or x.shape[-1] != k:
            raise ValueError(f"DeltaLinear: expected input of shape (..., {k}) (got {x.shape})")
        lead = x.shape[:-1]
        if self._lead is None:
            rows = int(np.prod(lead, dtype=np.int64))
            self.x_ref = np.zeros((rows, k), F32)
            self.y = np.zeros((rows, m), F32)
            if self.bias is not None:
                self.y[...] = self.bias
            self._lead = lead
        elif lead != self._lead:
            raise ValueError(f"DeltaLinear: input shape {x.shape} differs from the batch shape "
                             f"{self._lead + (k,)} of the state; call reset() first")
        rows = self.x_ref.shape[0]
        active = _backends.backend().act_delta(self.weight, x.reshape(rows, k), self.x_ref, self.y,
                                      self.threshold)
        self._steps += 1
        self._total += rows * k
        self._skipped += rows * k - int(active)
        return self.y.reshape(lead + (m,)).copy()

    def __repr__(self) -> str:
        m, k = self.weight.shape
        return (f"<DeltaLinear {m}x{k} threshold={self.threshold:g} steps={self._steps} "
                f"skipped={self.stats:.3f}>")
