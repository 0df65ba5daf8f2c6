"""N:M structured sparsity, the ops: W @ X / linear on every backend (each C ISA variant and
numba) against reference.py, including the padding edge cases K < M, K = M, K = M + 1,
non-finite X, zero sizes and threads."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sparsekern as sk
from _cases import NM_PATTERNS as PATTERNS
from _cases import make_weights, make_x
from _cases import nm_pruned as _pruned
from _cases import nm_split as _nm
from reference import assert_linear, assert_matmul

HYPOTHESIS = settings(max_examples=25, deadline=None, derandomize=False,
                      suppress_health_check=[HealthCheck.function_scoped_fixture,
                                             HealthCheck.too_slow])


# -- the matmul grid ---------------------------------------------------------------------

def _grid():
    cases = []
    # padding edges for every M: K < M, K = M, K = M + 1, one group short and long rows
    for pattern in PATTERNS:
        n, m = _nm(pattern)
        for k in sorted({1, n, m - 1, m, m + 1, 2 * m + n}):
            cases.append((pattern, 6, k, 3))
    # every pattern: the batch-1 steps + scalar tail, the N tiles and X column blocks
    for pattern in PATTERNS:
        for k, n in ((517, 1), (200, 1), (131, 17), (64, 65)):
            cases.append((pattern, 9, k, n))
    # the common patterns: more N around tile edges (whole and masked tails of 1-4 vectors), rows % 4
    for pattern in ("2:4", "1:4", "1:8", "4:16"):
        for n in (2, 5, 8, 16, 24, 31, 33, 56, 63, 64, 100, 130):
            cases.append((pattern, 7, 96, n))
    # the AVX-512 batch >= 64 kernel of 2:4/1:4/1:8: several K blocks (a leftover group of
    # 1:M, the padded group), more rows than a row block (256), an odd last row
    for pattern in ("2:4", "1:4", "1:8"):
        for m, k, n in ((261, 300, 64), (5, 133, 130)):
            cases.append((pattern, m, k, n))
    return cases


GRID = _grid()


@pytest.mark.parametrize("pattern,m,k,n", GRID, ids=[f"{p}-{m}x{k}-n{n}" for p, m, k, n in GRID])
def test_nm_matmul_grid(backend, rng, pattern, m, k, n):
    W = make_weights(rng, m, k, pattern="dense")
    Wp = sk.pack(W, pattern)
    X = make_x(rng, k, n)
    Y = Wp @ X
    assert_matmul(Y, _pruned(W, pattern), X, what=f"{backend} {pattern} {m}x{k} n={n}")


@pytest.mark.parametrize("pattern", ["2:4", "3:8", "4:16"])
def test_nm_linear_bias_vector_stacked(backend, rng, pattern):
    W = make_weights(rng, 11, 45, pattern="dense")
    Wp = sk.pack(W, pattern)
    P = _pruned(W, pattern)
    b = make_x(rng, 11)
    for lead in ((), (1,), (3,), (2, 5), (70,)):
        x = make_x(rng, *lead, 45)
        assert_linear(sk.linear(x, Wp, b), x, P, b, what=f"{backend} lead={lead}")
        assert_linear(sk.linear(x, Wp), x, P, what=f"{backend} lead={lead} nobias")
    x = make_x(rng, 45)
    assert_matmul(sk.matmul(Wp, x), P, x)
    X = make_x(rng, 2, 3, 45, 4)
    assert_matmul(sk.matmul(Wp, X), P, X)


@pytest.mark.parametrize("n", [1, 3, 70], ids=lambda n: f"n{n}")
def test_nm_nonfinite_x_propagates(backend, rng, n):
    """inf/NaN in X where W stores a slot and where it does not (a zero of W times inf is
    NaN, as in dense BLAS), including a stored slot holding an explicit zero."""
    W = make_weights(rng, 9, 22, pattern="dense")
    W[0, :4] = [1.0, 0.0, 0.0, 0.0]         # group 0 of row 0 holds one explicit zero
    Wp = sk.pack(W, "2:4")
    P = Wp.to_dense()
    X = make_x(rng, 22, n)
    X[1, 0] = np.inf
    X[5, n - 1] = np.nan
    X[21, n // 2] = -np.inf
    assert_matmul(Wp @ X, P, X, what=backend)


@pytest.mark.parametrize("pattern", ["2:4", "1:8", "5:16"])
def test_nm_sizes_zero(backend, rng, pattern):
    for m, k, n in ((0, 5, 3), (4, 0, 3), (4, 5, 0), (0, 0, 0)):
        W = make_weights(rng, m, k, pattern="dense")
        Wp = sk.pack(W, pattern)
        X = make_x(rng, k, n)
        assert_matmul(Wp @ X, np.zeros((m, k), np.float32), X)


def test_nm_threads(backend, rng):
    W = make_weights(rng, 203, 300, pattern="dense")
    Wp = sk.pack(W, "2:4")
    P = Wp.to_dense()
    for n in (1, 40, 130):
        X = make_x(rng, 300, n)
        for t in (1, 2):
            sk.set_num_threads(t)
            assert_matmul(Wp @ X, P, X, what=f"{backend} threads={t} n={n}")


@HYPOTHESIS
@given(pattern=st.sampled_from(PATTERNS), m=st.integers(0, 9), k=st.integers(0, 70),
       n=st.integers(1, 40), zeros=st.floats(0, 0.9), seed=st.integers(0, 2**32 - 1))
def test_nm_matmul_hypothesis(backend, pattern, m, k, n, zeros, seed):
    rng = np.random.default_rng(seed)
    W = make_weights(rng, m, k, pattern="dense")
    W[rng.random(W.shape) < zeros] = 0
    Wp = sk.pack(W, pattern)
    np.testing.assert_array_equal(Wp.to_dense(), _pruned(W, pattern))
    X = make_x(rng, k, n)
    assert_matmul(Wp @ X, Wp.to_dense(), X)
