"""sk.matmul / ``Wp @ X`` on every backend (C ISA variants + numba) against reference.py."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sparsekern as sk
from _cases import GRID, make_weights, make_x
from reference import assert_matmul

HYPOTHESIS = settings(max_examples=40, deadline=None, derandomize=False,
                      suppress_health_check=[HealthCheck.function_scoped_fixture,
                                             HealthCheck.too_slow])


@pytest.mark.parametrize("case", GRID, ids=str)
def test_matmul_grid(backend, case, rng):
    W = make_weights(rng, case.m, case.k, case.density, case.pattern)
    Wp = sk.pack(W)
    X = make_x(rng, case.k, case.n)
    Y = sk.matmul(Wp, X)
    assert_matmul(Y, W, X, what=f"{backend} {case}")


def test_matmul_operator_is_matmul(backend, rng):
    W = make_weights(rng, 11, 23, 0.4)
    Wp = sk.pack(W)
    X = make_x(rng, 23, 9)
    np.testing.assert_array_equal(Wp @ X, sk.matmul(Wp, X))
    np.testing.assert_array_equal(Wp @ X[:, 0], sk.matmul(Wp, X[:, 0]))


@pytest.mark.parametrize("m,k,pattern", [(13, 37, "empty_rows"), (40, 50, "rowlen"),
                                         (3, 65, "dense"), (5, 0, "random"), (0, 5, "random"),
                                         (1, 1, "dense")],
                         ids=["13x37", "rowlen-40x50", "dense-3x65", "k0", "m0", "1x1"])
def test_matmul_vector(backend, rng, m, k, pattern):
    """X of shape (K,) gives (M,), like numpy."""
    W = make_weights(rng, m, k, 0.3, pattern)
    x = make_x(rng, k)
    y = sk.matmul(sk.pack(W), x)
    assert y.shape == (m,)
    assert_matmul(y, W, x)


@pytest.mark.parametrize("xshape", [
    (2, 37, 5), (2, 3, 37, 4), (1, 37, 1), (4, 37, 1), (0, 37, 5), (3, 37, 0),
    (2, 0, 37, 3), (5, 1, 37, 33),
], ids=lambda s: "x" + "x".join(map(str, s)))
def test_matmul_stacked(backend, rng, xshape):
    W = make_weights(rng, 13, 37, 0.3, "empty_rows")
    X = make_x(rng, *xshape)
    Y = sk.matmul(sk.pack(W), X)
    assert Y.shape == xshape[:-2] + (13, xshape[-1])
    assert Y.flags.c_contiguous
    assert_matmul(Y, W, X)


@pytest.mark.parametrize("m,k", [(4, 0), (0, 0), (0, 6)], ids=["k0", "m0-k0", "m0"])
@pytest.mark.parametrize("xbatch", [(2,), (0,), (2, 3)], ids=lambda b: "b" + "x".join(map(str, b)))
def test_matmul_stacked_empty_dims(backend, rng, m, k, xbatch):
    """Stacks with K == 0 or M == 0: shapes like numpy's, zeros where K == 0."""
    W = make_weights(rng, m, k)
    X = make_x(rng, *xbatch, k, 3)
    Y = sk.matmul(sk.pack(W), X)
    assert Y.shape == xbatch + (m, 3)
    assert_matmul(Y, W, X)


@pytest.mark.parametrize("sparsity", [0.0, 0.5, 0.9, 1.0], ids=lambda s: f"s{s}")
@pytest.mark.parametrize("m,k,n", [(17, 33, 1), (17, 33, 40), (64, 64, 64)],
                         ids=["17x33x1", "17x33x40", "64x64x64"])
def test_matmul_pruned(backend, rng, sparsity, m, k, n):
    W = make_weights(rng, m, k, pattern="dense")
    Wp = sk.pack(W, "unstructured", sparsity=sparsity)
    X = make_x(rng, k, n)
    assert_matmul(sk.matmul(Wp, X), Wp.to_dense(), X)


@pytest.mark.parametrize("k", [65535, 65536, 65537, 70000], ids=lambda k: f"k{k}")
@pytest.mark.parametrize("n", [1, 5, 17], ids=lambda n: f"n{n}")
def test_matmul_wide_index(backend, rng, k, n):
    """K > 65536 switches to 32-bit column indices; K <= 65536 uses 16-bit ones, with
    column 65535 the largest. Rows of 0, 7 and 40 nonzeros cover the gather tails."""
    W = np.zeros((3, k), np.float32)
    last = [k - 1, 65535 if k > 65535 else k - 2, 65534]
    W[1, rng.choice(k, 7, replace=False)] = rng.standard_normal(7)
    cols = np.unique(np.concatenate([rng.choice(k, 40, replace=False), last]))
    W[2, cols] = rng.standard_normal(cols.size)
    W[2, k - 1] = 2.5
    Wp = sk.pack(W)
    assert Wp.col_idx.dtype == (np.uint16 if k <= 65536 else np.int32)
    assert int(Wp.col_idx.max()) == k - 1
    X = make_x(rng, k, n)
    X[k - 1] = 1000.0  # the last column of W must really be read
    Y = sk.matmul(Wp, X)
    assert_matmul(Y, W, X)
    assert np.all(Y[0] == 0)


@pytest.mark.parametrize("n", [1, 65, 130], ids=lambda n: f"n{n}")
def test_matmul_k_over_2_20(backend, rng, n):
    """K > 2**20: the C operator stops copying X into column blocks (n > 64 then runs the
    microkernel on X in place). X is a calloc'ed zero array, so only the rows W uses cost
    memory; the product equals that of the used columns alone."""
    k = 2**20 + 3
    used = np.unique(np.concatenate([rng.choice(k, 60, replace=False), [0, 65535, 65536, k - 1]]))
    W = np.zeros((4, used.size), np.float32)
    W[1:] = make_weights(rng, 3, used.size, 0.5)
    W[3, -1] = 1.0
    rows, cols = np.nonzero(W)  # W's column j is column used[j] of the packed matrix
    Wp = sk.UnstructuredMatrix((4, k), np.r_[0, np.cumsum((W != 0).sum(1))], used[cols],
                               W[rows, cols])
    assert Wp.col_idx.dtype == np.int32
    X = np.zeros((k, n), np.float32)
    X[used] = make_x(rng, used.size, n)
    Y = sk.matmul(Wp, X)
    assert_matmul(Y, W, X[used])


# -- non-finite values: exactly as dense BLAS ----------------------------------------------

def _nonfinite_case(rng, n):
    """W (6, 20): row 0 empty, rows 1-2 store column 3, row 3 stores columns 3 and 5, rows
    4-5 random without column 3. Column 11 of W is empty everywhere."""
    W = make_weights(rng, 6, 20, 0.5)
    W[0] = 0
    W[:, 11] = 0
    W[1:4, 3] = [1.5, -2.0, 0.5]
    W[3, 5] = 0.25
    W[4:, 3] = 0
    X = make_x(rng, 20, n)
    X[3, 0] = np.inf                      # covered by rows 1-3 only
    if n > 1:
        X[3, 1] = -np.inf
        X[5, 1] = np.inf                  # row 3: -inf*0.5 + inf*0.25 -> NaN
    if n > 2:
        X[7, 2] = np.nan
    if n > 3:
        X[11, 3] = np.inf                 # covered by no row at all -> whole column NaN
    if n > 4:
        X[3, n - 1] = np.nan
    return W, X


@pytest.mark.parametrize("n", [1, 2, 5, 40, 257], ids=lambda n: f"n{n}")
def test_nonfinite_x_propagates_like_dense(backend, rng, n):
    W, X = _nonfinite_case(rng, n)
    Wp = sk.pack(W)
    Y = sk.matmul(Wp, X)
    assert_matmul(Y, W, X)
    # spelled out for column 0: rows storing column 3 give +-inf, all others NaN
    assert np.isnan(Y[[0, 4, 5], 0]).all()
    assert Y[1, 0] == np.inf and Y[2, 0] == -np.inf and Y[3, 0] == np.inf


def test_nonfinite_x_stacked_and_vector(backend, rng):
    W, X = _nonfinite_case(rng, 6)
    Wp = sk.pack(W)
    stack = np.stack([X, np.nan_to_num(X, posinf=1.0, neginf=-1.0, nan=0.0)])
    assert_matmul(sk.matmul(Wp, stack), W, stack)
    for j in range(X.shape[1]):
        assert_matmul(sk.matmul(Wp, X[:, j]), W, X[:, j], what=f"column {j}")


@pytest.mark.parametrize("n", [1, 3, 40], ids=lambda n: f"n{n}")
def test_nonfinite_stored_in_w(backend, rng, n):
    """NaN/inf stored in W: NaN*x = NaN, inf*0 = NaN, inf*x = +-inf."""
    W = make_weights(rng, 5, 12, 0.5)
    W[1, 2] = np.nan
    W[2, 4] = np.inf
    W[3, 4] = -np.inf
    W[3, 6] = np.inf
    Wp = sk.pack(W)
    assert Wp.nnz == np.count_nonzero(W)  # NaN != 0: kept
    X = make_x(rng, 12, n)
    X[4, 0] = 0.0                          # inf * 0 -> NaN in rows 2 and 3
    assert_matmul(sk.matmul(Wp, X), W, X)


def test_explicit_zero_times_inf(backend, rng):
    """An explicitly stored 0 (from_scipy keeps them) times inf is NaN, like dense."""
    import scipy.sparse as sp

    S = sp.csr_array((np.array([0.0, 2.0], np.float32), np.array([1, 2]), np.array([0, 2, 2])),
                     shape=(2, 4))
    Wp = sk.UnstructuredMatrix.from_scipy(S)
    assert Wp.nnz == 2
    X = np.ones((4, 3), np.float32)
    X[1, 0] = np.inf
    Y = sk.matmul(Wp, X)
    assert_matmul(Y, Wp.to_dense(), X)
    assert np.isnan(Y[:, 0]).all() and Y[0, 1] == 2.0


# -- threads -----------------------------------------------------------------------------

THREAD_CASES = {
    # name: (m, k, n, density, pattern) -- all with (nnz + m) * n >= 65536 so the C library
    # really runs in parallel
    "uniform": (300, 256, 64, 0.2, "random"),
    "gemv": (2000, 2000, 1, 0.05, "random"),
    "few-rows": (2, 4000, 40, 1.0, "dense"),
    "empty-rows-tail": (500, 300, 17, 0.3, "empty_rows"),
    "one-heavy-row": (400, 3000, 24, 0.0, "heavy"),
    # n > 64: X is copied in 64-column blocks shared by the threads (barrier per block)
    "packed-x-n100": (300, 256, 100, 0.2, "random"),
    "packed-x-n257-empty-rows": (200, 100, 257, 0.3, "empty_rows"),
    "packed-x-heavy-row-n130": (400, 3000, 130, 0.0, "heavy"),
}


def _thread_weights(rng, m, k, density, pattern):
    if pattern == "heavy":
        W = make_weights(rng, m, k, 0.001)
        W[m // 3] = make_x(rng, k)
        return W
    return make_weights(rng, m, k, density, pattern)


@pytest.mark.parametrize("case", list(THREAD_CASES), ids=str)
def test_threads_1_and_2(backend, rng, case):
    m, k, n, density, pattern = THREAD_CASES[case]
    W = _thread_weights(rng, m, k, density, pattern)
    Wp = sk.pack(W)
    assert (Wp.nnz + m) * n >= 65536
    X = make_x(rng, k, n)
    X[k // 2, n - 1] = np.inf  # the non-finite repair runs after the parallel region
    results = {}
    for threads in (1, 2):
        sk.set_num_threads(threads)
        if sk.get_num_threads() != threads:
            pytest.skip(f"{backend} cannot run {threads} threads here (got {sk.get_num_threads()})")
        results[threads] = Y = sk.matmul(Wp, X)
        assert_matmul(Y, W, X, what=f"{backend} threads={threads}")
    # each row is computed by one thread with the same code: the split must not matter
    np.testing.assert_array_equal(results[1], results[2])


# -- hypothesis ---------------------------------------------------------------------------

@settings(HYPOTHESIS)
@given(m=st.integers(0, 40), k=st.integers(0, 80), n=st.integers(0, 70),
       density=st.floats(0, 1), prune=st.sampled_from([None, 0.0, 0.3, 0.75, 1.0]),
       layout=st.sampled_from(["C", "F", "float64", "sliced", "vector"]),
       seed=st.integers(0, 2**32 - 1))
def test_matmul_hypothesis(backend, m, k, n, density, prune, layout, seed):
    rng = np.random.default_rng(seed)
    W = make_weights(rng, m, k, density)
    Wp = sk.pack(W, sparsity=prune)
    Wd = Wp.to_dense()
    if prune is None:
        np.testing.assert_array_equal(Wd, W)
    if layout == "vector":
        X = make_x(rng, k)
    elif layout == "sliced":
        X = make_x(rng, k, 2 * n)[:, ::2]
    else:
        X = make_x(rng, k, n)
        X = np.asfortranarray(X) if layout == "F" else X
        X = X.astype(np.float64) if layout == "float64" else X
    assert_matmul(sk.matmul(Wp, X), Wd, X, what=f"{backend} {m}x{k}x{n} {layout}")
