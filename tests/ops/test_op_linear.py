"""sk.linear (torch.nn.functional.linear semantics) on every backend against reference.py."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sparsekern as sk
from _cases import make_weights, make_x
from reference import assert_linear

LEADS = [(), (1,), (5,), (2, 3), (0,), (1, 1), (4, 0), (3, 1, 2)]


@pytest.mark.parametrize("with_bias", [False, True], ids=["nobias", "bias"])
@pytest.mark.parametrize("lead", LEADS, ids=lambda s: "lead" + "x".join(map(str, s)))
@pytest.mark.parametrize("m,k,pattern", [(13, 37, "empty_rows"), (40, 50, "rowlen"),
                                         (1, 1, "dense"), (6, 0, "random"), (0, 9, "random"),
                                         (5, 70, "dense")],
                         ids=["13x37", "rowlen-40x50", "1x1", "k0", "m0", "dense-5x70"])
def test_linear_shapes(backend, rng, m, k, pattern, lead, with_bias):
    W = make_weights(rng, m, k, 0.3, pattern)
    Wp = sk.pack(W)
    x = make_x(rng, *lead, k)
    b = make_x(rng, m) if with_bias else None
    y = sk.linear(x, Wp, b)
    assert y.shape == lead + (m,)
    assert y.flags.c_contiguous
    assert_linear(y, x, W, b)


@pytest.mark.parametrize("rows", [1, 2, 31, 33, 64, 65, 100, 257], ids=lambda r: f"rows{r}")
def test_linear_batch_sizes(backend, rng, rows):
    """Batch rows become the N of the kernel: every tile edge."""
    W = make_weights(rng, 24, 77, 0.25)
    x = make_x(rng, rows, 77)
    b = make_x(rng, 24)
    assert_linear(sk.linear(x, sk.pack(W), b), x, W, b)


def test_linear_bias_only_when_k0(backend, rng):
    """K == 0: the output is the bias broadcast (torch gives the same)."""
    Wp = sk.pack(np.zeros((4, 0), np.float32))
    b = make_x(rng, 4)
    y = sk.linear(np.zeros((3, 0), np.float32), Wp, b)
    np.testing.assert_array_equal(y, np.broadcast_to(b, (3, 4)))


def test_linear_nonfinite(backend, rng):
    W = make_weights(rng, 7, 20, 0.4)
    W[:, 11] = 0
    W[2, 3], W[4, 3] = 1.0, 0.0
    x = make_x(rng, 5, 20)
    x[0, 3] = np.inf
    x[1, 11] = np.nan
    x[2, 3] = -np.inf
    b = make_x(rng, 7)
    b[6] = np.inf
    assert_linear(sk.linear(x, sk.pack(W), b), x, W, b)
    assert_linear(sk.linear(x[0], sk.pack(W), b), x[0], W, b)


def test_linear_threads(backend, rng):
    W = make_weights(rng, 256, 300, 0.2)
    Wp = sk.pack(W)
    x = make_x(rng, 2, 40, 300)
    b = make_x(rng, 256)
    assert Wp.nnz * 80 >= 65536
    out = {}
    for threads in (1, 2):
        sk.set_num_threads(threads)
        out[threads] = y = sk.linear(x, Wp, b)
        assert_linear(y, x, W, b, what=f"threads={threads}")
    np.testing.assert_array_equal(out[1], out[2])


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(m=st.integers(0, 30), k=st.integers(0, 60),
       lead=st.lists(st.integers(0, 5), max_size=3).map(tuple),
       density=st.floats(0, 1), with_bias=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_linear_hypothesis(backend, m, k, lead, density, with_bias, seed):
    rng = np.random.default_rng(seed)
    W = make_weights(rng, m, k, density)
    x = make_x(rng, *lead, k)
    b = make_x(rng, m) if with_bias else None
    assert_linear(sk.linear(x, sk.pack(W), b), x, W, b)
