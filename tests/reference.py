"""THE reference for every sparsekern op: dense numpy, float64 accumulation.

Nothing else in ``tests/`` may compute an expected product (``test_reference.py``
enforces it). Every backend and every ISA variant is compared against this module.

Semantics
---------
Inputs are first converted to float32, as the ops do, then widened to float64 and
multiplied densely. Non-finite values follow IEEE dense arithmetic (what dense BLAS
gives): a zero of W times inf/NaN is NaN, inf + -inf is NaN, NaN is sticky. For
inputs that contain inf/NaN the product is computed with ``np.einsum(...,
optimize=False)``, numpy's own sum-of-products loop, which never skips zeros; for
finite inputs ``np.matmul`` (float64 BLAS) is used, which is exact enough and fast.

Tolerance
---------
The kernels accumulate in float32 (with FMA, in several partial sums). For one
output entry ``y = sum_k w_k x_k (+ b)`` the rounding error is bounded by
``gamma · S`` with ``S = sum_k |w_k| |x_k| (+ |b|)`` (the magnitude scale, computed in
float64) and ``gamma`` ~ K·eps32 in the worst case, ~ sqrt(K)·eps32 for the random
rounding errors of a real sum. We use

    |actual - expected| <= tolerance(K) · S,   tolerance(K) = C_TOL · sqrt(max(K, 1)) · eps32 + 2·eps32

with ``C_TOL = 4`` (≈ 8 standard deviations of the random-walk error) and the
``2·eps32`` covering the rounding of the products, of the bias and of the final
float32 store. The same factor works as atol and rtol: the bound is relative to the
magnitudes that were summed, so it is an absolute bound for entries whose exact value
is ~0 by cancellation and a relative one otherwise. Where S == 0 (an empty row of W,
or X zero where W is stored) the result must be exactly the bias (or 0).

Non-finite entries must match exactly: NaN where the reference is NaN, +inf/-inf
with the same sign.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["EPS32", "C_TOL", "tolerance", "matmul", "linear", "assert_matmul", "assert_linear",
           "nm_mask"]

EPS32 = float(np.finfo(np.float32).eps)
C_TOL = 4.0


def tolerance(k: int) -> float:
    """Allowed |error| per unit of magnitude scale S for a sum over k products."""
    return C_TOL * math.sqrt(max(int(k), 1)) * EPS32 + 2 * EPS32


def _f64(a) -> np.ndarray:
    """As the ops see it: converted to float32, then widened."""
    return np.asarray(np.asarray(a, dtype=np.float32), dtype=np.float64)


def _dense_product(W: np.ndarray, X: np.ndarray) -> np.ndarray:
    """W (M, K) float64 times X (K, N) float64 with IEEE dense semantics."""
    with np.errstate(all="ignore"):
        if np.isfinite(W).all() and np.isfinite(X).all():
            return np.matmul(W, X)
        return np.einsum("mk,kn->mn", W, X, optimize=False)


def _matmul_parts(W, X):
    """(expected, scale, K) for W (M, K) dense and X of shape (K,), (K, N) or (..., K, N)."""
    W = _f64(W)
    X = _f64(X)
    if W.ndim != 2:
        raise ValueError("reference: W must be 2-D")
    m, k = W.shape
    if X.ndim == 1:
        e, s, _ = _matmul_parts(W, X.reshape(k, 1))
        return e.reshape(m), s.reshape(m), k
    batch, n = X.shape[:-2], X.shape[-1]
    # (..., K, N) -> (K, B*N): one 2-D product, then back
    flat = np.moveaxis(X, -2, 0).reshape(k, int(np.prod(batch, dtype=np.int64)) * n)
    e = _dense_product(W, flat)
    finite_x = np.where(np.isfinite(flat), np.abs(flat), 0.0)
    finite_w = np.where(np.isfinite(W), np.abs(W), 0.0)
    s = _dense_product(finite_w, finite_x)
    back = lambda a: np.moveaxis(a.reshape((m,) + batch + (n,)), 0, -2)  # noqa: E731
    return back(e), back(s), k


def matmul(W, X) -> np.ndarray:
    """Expected ``W @ X`` (float64) for dense W (M, K) and X (K,), (K, N) or (..., K, N)."""
    return _matmul_parts(W, X)[0]


def _linear_parts(x, W, b=None):
    x = _f64(x)
    W = _f64(W)
    m, k = W.shape
    lead = x.shape[:-1]
    rows = int(np.prod(lead, dtype=np.int64))
    x2 = x.reshape(rows, k)
    e, s, _ = _matmul_parts(W, x2.T)
    e, s = e.T, s.T
    if b is not None:
        b = _f64(b)
        with np.errstate(all="ignore"):
            e = e + b
        s = s + np.where(np.isfinite(b), np.abs(b), 0.0)
    return e.reshape(lead + (m,)), s.reshape(lead + (m,)), k


def linear(x, W, b=None) -> np.ndarray:
    """Expected ``x @ W.T + b`` (float64), like torch.nn.functional.linear."""
    return _linear_parts(x, W, b)[0]


def _assert_close(actual, expected, scale, k, what: str):
    assert isinstance(actual, np.ndarray), f"{what}: result is {type(actual).__name__}, not ndarray"
    assert actual.dtype == np.float32, f"{what}: result dtype {actual.dtype}, expected float32"
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape}, expected {expected.shape}"
    a = actual.astype(np.float64)
    nan_e, nan_a = np.isnan(expected), np.isnan(a)
    if not np.array_equal(nan_e, nan_a):
        idx = np.argwhere(nan_e != nan_a)[:5]
        raise AssertionError(f"{what}: NaN pattern differs at {idx.tolist()} "
                             f"(actual {[a[tuple(i)] for i in idx]}, "
                             f"expected {[expected[tuple(i)] for i in idx]})")
    inf_e = np.isinf(expected)
    # float64 sums can exceed float32's range only with huge inputs; tests don't use them
    if not np.array_equal(np.where(inf_e, expected, 0), np.where(np.isinf(a), a, 0)):
        idx = np.argwhere((inf_e | np.isinf(a)) & (expected != a))[:5]
        raise AssertionError(f"{what}: inf pattern differs at {idx.tolist()} "
                             f"(actual {[a[tuple(i)] for i in idx]}, "
                             f"expected {[expected[tuple(i)] for i in idx]})")
    fin = np.isfinite(expected)
    tol = tolerance(k) * scale
    with np.errstate(invalid="ignore"):
        err = np.abs(a - expected)
    bad = fin & ~(err <= tol)
    if bad.any():
        idx = np.argwhere(bad)[:5]
        worst = np.unravel_index(np.argmax(np.where(fin, err - tol, -np.inf)), err.shape)
        raise AssertionError(
            f"{what}: {int(bad.sum())} of {bad.size} entries outside tolerance "
            f"(K={k}, tolerance(K)={tolerance(k):.3g} x scale); first at {idx.tolist()}; worst "
            f"{worst}: actual {a[worst]!r} expected {expected[worst]!r} err {err[worst]:.3g} "
            f"allowed {tol[worst]:.3g}")


def assert_matmul(actual, W, X, what: str = "matmul") -> None:
    """Assert ``actual`` (float32) equals ``W @ X`` within :func:`tolerance`; W dense (M, K)."""
    e, s, k = _matmul_parts(W, X)
    _assert_close(actual, e, s, k, what)


def assert_linear(actual, x, W, b=None, what: str = "linear") -> None:
    """Assert ``actual`` (float32) equals ``x @ W.T + b`` within :func:`tolerance`."""
    e, s, k = _linear_parts(x, W, b)
    _assert_close(actual, e, s, k, what)


def nm_mask(W, n: int, m: int) -> np.ndarray:
    """Expected N:M magnitude-pruning mask (what ``sk.nm_mask`` and ``sk.pack(W, "n:m")``
    keep), one group at a time: in every group of ``m`` consecutive columns of each row
    (the last group may be narrower), keep the ``n`` entries of largest |w|, ties going to
    the lower column; a group narrower than ``n`` keeps all its columns."""
    W = np.abs(np.asarray(W, dtype=np.float32).astype(np.float64))
    rows, k = W.shape
    mask = np.zeros((rows, k), bool)
    for r in range(rows):
        for c0 in range(0, k, m):
            group = W[r, c0:c0 + m]
            # sort by (-|w|, column): the n first are kept
            order = sorted(range(group.shape[0]), key=lambda i: (-group[i], i))
            for i in order[:n]:
                mask[r, c0 + i] = True
    return mask


# -- activation sparsity (the "act" format) -----------------------------------------------
#
# linear(x, Wa, b, threshold=, topk=, select=) is "the sparsified x times W.T plus b":
# each row of x selects its channels and only those are multiplied (IEEE, dense loop over
# them); channels not selected contribute nothing, whatever W holds. Selection, per row:
#   score_k = |x_k| ("magnitude") or |x_k| * ||W[:, k]||_2 ("wina"), in float32, the norm
#             summed in float64 over the column and rounded to float32;
#   candidate when not (score_k <= float32(threshold)) (NaN always is; no threshold:
#             every channel);
#   topk: the k largest candidate scores (all when there are <= k); NaN above +inf; any
#             choice among scores equal to the k-th largest is valid.
# Exact mode (no threshold, no topk) selects every channel: plain dense linear().

__all__ += ["act_column_norms", "act_selection", "assert_act_linear", "DeltaCheck"]


def act_column_norms(W) -> np.ndarray:
    """float32 ||W[:, k]||_2, summed in float64 (pairwise, along each column)."""
    wt = np.ascontiguousarray(_f64(W).T)
    with np.errstate(all="ignore"):
        return np.sqrt((wt * wt).sum(axis=1)).astype(np.float32)


def act_selection(x, W, threshold=None, topk=None, select=None):
    """Per row of x (R, K): (forced, ties, need) boolean masks (R, K) and counts (R,):
    the selection is ``forced`` plus any ``need[r]`` channels of ``ties[r]``."""
    x32 = np.asarray(x, dtype=np.float32)
    r, k = x32.shape
    with np.errstate(all="ignore"):
        score = np.abs(x32)
        if select == "wina":
            score = (score * act_column_norms(W)).astype(np.float32)
    if threshold is None:
        cand = np.ones((r, k), bool)
    else:
        with np.errstate(over="ignore"):
            cand = ~(score <= np.float32(threshold))
    if topk is None:
        return cand, np.zeros((r, k), bool), np.zeros(r, np.int64)
    key = (score.view(np.uint32) & np.uint32(0x7FFFFFFF)).astype(np.int64)
    key = np.where(cand, key, -1)
    forced = np.zeros((r, k), bool)
    ties = np.zeros((r, k), bool)
    need = np.zeros(r, np.int64)
    for i in range(r):
        n_cand = int(cand[i].sum())
        if topk >= n_cand:
            forced[i] = cand[i]
            continue
        if topk == 0:
            continue
        kth = np.sort(key[i])[::-1][topk - 1]
        forced[i] = key[i] > kth
        ties[i] = key[i] == kth
        need[i] = topk - int(forced[i].sum())
    return forced, ties, need


def _act_row(x_row, W, sel, b):
    """(expected, scale) of one row using the channels in boolean mask ``sel``."""
    e, s, _ = _linear_parts(np.asarray(x_row, np.float32)[sel][None, :],
                            np.asarray(W, np.float32)[:, sel], b)
    return e[0], s[0]


def assert_act_linear(actual, x, W, b=None, threshold=None, topk=None, select=None,
                      what: str = "act linear", max_choices: int = 5000) -> None:
    """Assert ``actual`` (float32, shape (..., M)) is ``linear(x, pack(W, "act"), b,
    threshold=, topk=, select=)`` within :func:`tolerance`; any valid choice among tied
    top-k scores is accepted (every choice is tried, at most ``max_choices`` per row)."""
    import itertools
    from itertools import combinations

    W = np.asarray(W, np.float32)
    m, k = W.shape
    x = np.asarray(x, np.float32)
    lead = x.shape[:-1]
    assert isinstance(actual, np.ndarray) and actual.shape == lead + (m,), \
        f"{what}: shape {getattr(actual, 'shape', None)}, expected {lead + (m,)}"
    rows = int(np.prod(lead, dtype=np.int64))
    x2 = x.reshape(rows, k)
    a2 = actual.reshape(rows, m)
    forced, ties, need = act_selection(x2, W, threshold, topk, select)
    if m == 0:
        return
    null_col = ~np.any(W != 0, axis=0)
    finite_col = np.isfinite(W).all(axis=0)
    for i in range(x2.shape[0]):
        # tied channels whose contribution is exactly 0 (a zero column and finite x, or
        # x == 0 and a finite column) are interchangeable: choose how many of them, then
        # which of the others
        tie_all = np.flatnonzero(ties[i])
        xt = x2[i, tie_all]
        null = (null_col[tie_all] & np.isfinite(xt)) | ((xt == 0) & finite_col[tie_all])
        tie_idx, n_null = tie_all[~null], int(null.sum())
        r = int(need[i])
        sizes = range(max(0, r - n_null), min(r, len(tie_idx)) + 1)
        n_choices = sum(math.comb(len(tie_idx), q) for q in sizes)
        if n_choices > max_choices:
            raise ValueError(f"{what}: row {i} has {n_choices} tie choices; "
                             "make fewer ties in the test")
        choices = itertools.chain.from_iterable(combinations(tie_idx, q) for q in sizes)
        first_error = None
        for ch in choices:
            sel = forced[i].copy()
            sel[list(ch)] = True
            e, s = _act_row(x2[i], W, sel, b)
            try:
                _assert_close(a2[i], e, s, k, f"{what} (row {i})")
                break
            except AssertionError as err:
                first_error = first_error or err
        else:
            raise first_error


class DeltaCheck:
    """The bound every step of ``DeltaLinear(pack(W, "act"), b, threshold=theta)`` must meet.

    After each step ``|x_t - x_ref| <= theta`` on every channel, so the output is
    ``W @ x_ref + b`` and differs from the exact ``W @ x_t + b`` by at most
    ``theta * sum_k |W[m, k]|`` plus the float32 rounding of the running sum: each step
    adds at most ``tolerance(K)`` times the magnitudes it sums (the previous output and
    the update, both bounded through x_t, x_{t-1} and theta), so that allowance grows by
    one such term per step (rows of x: independent streams)."""

    def __init__(self, W, b=None, theta=0.0):
        self.W = _f64(W)
        self.absW = np.abs(self.W)
        self.b = None if b is None else _f64(b)
        self.theta = float(np.float32(theta))
        self.rounding = 0.0
        self.prev = None
        self.steps = 0

    def check(self, actual, x, what: str = "delta step") -> None:
        x = _f64(x)
        k = self.W.shape[1]
        prev = np.zeros_like(x) if self.prev is None else self.prev
        e, _, _ = _linear_parts(x, self.W, self.b)
        absb = 0.0 if self.b is None else np.abs(self.b)
        step_scale = (np.abs(x) + 2 * np.abs(prev) + 3 * self.theta) @ self.absW.T + absb
        self.rounding = self.rounding + tolerance(k) * step_scale
        allowed = self.theta * (1 + 4 * EPS32) * self.absW.sum(axis=1) + self.rounding
        self.prev = x
        self.steps += 1
        a = np.asarray(actual, np.float64)
        assert a.shape == e.shape, f"{what}: shape {a.shape}, expected {e.shape}"
        err = np.abs(a - e)
        bad = ~(err <= allowed)
        if bad.any():
            j = np.unravel_index(np.argmax(np.where(bad, err - allowed, -np.inf)), err.shape)
            raise AssertionError(f"{what} {self.steps}: {int(bad.sum())} entries off by more "
                                 f"than theta*sum|W| + rounding; worst {j}: actual {a[j]!r} "
                                 f"expected {e[j]!r} err {err[j]:.3g} allowed {allowed[j]:.3g}")


# -- conv2d ----------------------------------------------------------------------------------
#
# conv2d(x, W, b, stride, padding, dilation, groups) as torch.nn.functional.conv2d defines it:
# x (B, C_in, H, W) zero-padded (top/bottom ph, left/right pw; "same": total d*(k-1), the
# extra one at the bottom/right; "valid": none), then
#   y[b, o, i, j] = bias[o] + sum_{c, ky, kx} W[o, c, ky, kx] * xp[b, g*Cg + c, i*sh + ky*dh, j*sw + kx*dw]
# with g = o // (C_out / groups), Cg = C_in / groups. Output size floor((H + pads -
# dh*(kh-1) - 1) / sh) + 1. Computed tap by tap in float64 with IEEE dense semantics
# (a zero weight times inf/NaN is NaN; padding zeros are zeros). Tolerance: K = Cg*kh*kw.

__all__ += ["conv2d", "assert_conv2d"]


def _conv_pair(v):
    return (int(v[0]), int(v[1])) if isinstance(v, (tuple, list)) else (int(v), int(v))


def _conv2d_parts(x, W, b=None, stride=1, padding=0, dilation=1, groups=1):
    x = _f64(x)
    W = _f64(W)
    unbatched = x.ndim == 3
    if unbatched:
        x = x[None]
    bsz, c_in, h, w = x.shape
    c_out, cg, kh, kw = W.shape
    assert c_in == cg * groups and c_out % groups == 0, "reference: bad channel counts"
    sh, sw = _conv_pair(stride)
    dh, dw = _conv_pair(dilation)
    if padding == "valid":
        pads = (0, 0, 0, 0)
    elif padding == "same":
        th, tw = dh * (kh - 1), dw * (kw - 1)
        pads = (th // 2, th - th // 2, tw // 2, tw - tw // 2)
    else:
        ph, pw = _conv_pair(padding)
        pads = (ph, ph, pw, pw)
    xp = np.zeros((bsz, c_in, h + pads[0] + pads[1], w + pads[2] + pads[3]))
    xp[:, :, pads[0]:pads[0] + h, pads[2]:pads[2] + w] = x
    ho = (xp.shape[2] - dh * (kh - 1) - 1) // sh + 1
    wo = (xp.shape[3] - dw * (kw - 1) - 1) // sw + 1
    assert ho >= 1 and wo >= 1, "reference: empty output"
    og = c_out // groups
    e = np.zeros((bsz, c_out, ho, wo))
    s = np.zeros((bsz, c_out, ho, wo))
    absW = np.where(np.isfinite(W), np.abs(W), 0.0)
    finite = bool(np.isfinite(W).all() and np.isfinite(xp).all())
    with np.errstate(all="ignore"):
        for ky in range(kh):
            for kx in range(kw):
                patch = xp[:, :, ky * dh: ky * dh + sh * (ho - 1) + 1: sh,
                           kx * dw: kx * dw + sw * (wo - 1) + 1: sw]
                apatch = np.where(np.isfinite(patch), np.abs(patch), 0.0)
                for g in range(groups):
                    o, c = slice(g * og, (g + 1) * og), slice(g * cg, (g + 1) * cg)
                    e[:, o] += np.einsum("oc,bchw->bohw", W[o, :, ky, kx], patch[:, c],
                                         optimize=finite)
                    s[:, o] += np.einsum("oc,bchw->bohw", absW[o, :, ky, kx], apatch[:, c],
                                         optimize=True)
        if b is not None:
            b = _f64(b)
            e = e + b[None, :, None, None]
            s = s + np.where(np.isfinite(b), np.abs(b), 0.0)[None, :, None, None]
    if unbatched:
        e, s = e[0], s[0]
    return e, s, cg * kh * kw


def conv2d(x, W, b=None, stride=1, padding=0, dilation=1, groups=1) -> np.ndarray:
    """Expected ``torch.nn.functional.conv2d(x, W, b, ...)`` (float64), W dense 4-D."""
    return _conv2d_parts(x, W, b, stride, padding, dilation, groups)[0]


def assert_conv2d(actual, x, W, b=None, stride=1, padding=0, dilation=1, groups=1,
                  what: str = "conv2d") -> None:
    """Assert ``actual`` (float32) equals the dense conv2d within :func:`tolerance`."""
    e, s, k = _conv2d_parts(x, W, b, stride, padding, dilation, groups)
    _assert_close(actual, e, s, k, what)


def torch_conv2d(x, W, b=None, stride=1, padding=0, dilation=1, groups=1):
    """torch.nn.functional.conv2d in float64 (the second oracle where torch is installed);
    ImportError without torch."""
    import torch

    t = lambda a: torch.from_numpy(_f64(a))  # noqa: E731
    with torch.no_grad():
        return torch.nn.functional.conv2d(t(x), t(W), None if b is None else t(b), stride=stride,
                                          padding=padding, dilation=dilation,
                                          groups=groups).numpy()


__all__ += ["torch_conv2d"]
