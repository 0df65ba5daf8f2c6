"""THE reference for every sparsekern op: dense numpy, float64 accumulation.

Nothing else in ``tests/`` may compute an expected product (``test_reference_lint.py``
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

__all__ = ["EPS32", "C_TOL", "tolerance", "matmul", "linear", "assert_matmul", "assert_linear"]

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
