"""Activation sparsity (format "act"): sk.linear with threshold/topk/select,
Wa @ X, DeltaLinear; every C ISA variant and numba against reference.py."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sparsekern as sk
from _cases import make_weights, make_x, relu_x
from reference import DeltaCheck, assert_act_linear, assert_linear, assert_matmul


# -- exact mode -----------------------------------------------------------------------------

@pytest.mark.parametrize("m,k", [(1, 1), (7, 5), (16, 64), (17, 33), (100, 130), (33, 1),
                                 (0, 5), (5, 0), (40, 257)],
                         ids=lambda v: str(v))
@pytest.mark.parametrize("lead", [(), (1,), (3,), (2, 3), (37,), (0,)], ids=lambda s: f"lead{s}")
def test_exact(backend, rng, m, k, lead):
    W = make_weights(rng, m, k, pattern="dense")
    Wa = sk.pack(W, "act")
    x = relu_x(rng, *lead, k)
    b = make_x(rng, m)
    y = sk.linear(x, Wa, b)
    assert y.dtype == np.float32 and y.shape == lead + (m,) and y.flags.c_contiguous
    assert_linear(y, x, W, b)
    assert_linear(sk.linear(x, Wa), x, W)


@pytest.mark.parametrize("zero", [0.0, 0.5, 0.97, 1.0])
def test_exact_sparsities_tiles(backend, rng, zero):
    """Columns around the vector widths and the batch-1 column tiles (M > 16384: tiles of
    8192), 1 and 8 rows (8 rows: column tiles of 512), groups of 4 active channels plus
    leftovers."""
    for m, k, rows in [(17000, 23, 1), (700, 61, 8), (45, 203, 1), (45, 203, 19)]:
        W = make_weights(rng, m, k, pattern="dense")
        x = relu_x(rng, rows, k, zero=zero)
        b = make_x(rng, m)
        assert_linear(sk.linear(x, sk.pack(W, "act"), b), x, W, b)


def test_batch_union_patterns(backend, rng):
    """Rows sharing most zeros, disjoint rows, one empty row, > 16 rows (two blocks)."""
    m, k = 50, 120
    W = make_weights(rng, m, k, pattern="dense")
    Wa = sk.pack(W, "act")
    shared = rng.random(k) < 0.1
    x = make_x(rng, 21, k) * shared
    x[3] = 0
    x[5] = make_x(rng, k) * (np.arange(k) % 21 == 5)       # disjoint from the others
    x[7, rng.random(k) < 0.02] += 1.0                       # a few extra channels
    assert_linear(sk.linear(x, Wa), x, W)
    assert_act_linear(sk.linear(x, Wa, threshold=0.3), x, W, threshold=0.3)


def test_all_zero_x(backend, rng):
    W = make_weights(rng, 9, 20, pattern="dense")
    Wa = sk.pack(W, "act")
    b = make_x(rng, 9)
    x = np.zeros((4, 20), np.float32)
    for kw in ({}, {"threshold": 0.1}, {"topk": 3}, {"topk": 3, "select": "wina"}):
        y = sk.linear(x, Wa, b, **kw)
        np.testing.assert_array_equal(y, np.broadcast_to(b, (4, 9)))


# -- threshold / top-k / WINA ---------------------------------------------------------------

@pytest.mark.parametrize("select", ["magnitude", "wina"])
@pytest.mark.parametrize("threshold", [0.0, 0.4, 1.5, np.inf])
def test_threshold(backend, rng, select, threshold):
    W = make_weights(rng, 30, 70, pattern="dense")
    W[:, 3] *= 10           # WINA ranks this column up
    Wa = sk.pack(W, "act")
    x = relu_x(rng, 5, 70, zero=0.3)
    b = make_x(rng, 30)
    y = sk.linear(x, Wa, b, threshold=threshold, select=select)
    assert_act_linear(y, x, W, b, threshold=threshold, select=select)


@pytest.mark.parametrize("select", ["magnitude", "wina"])
@pytest.mark.parametrize("topk", [0, 1, 5, 39, 40, 41, 10**12])
def test_topk(backend, rng, select, topk):
    k = 40
    W = make_weights(rng, 21, k, pattern="dense")
    Wa = sk.pack(W, "act")
    x = relu_x(rng, 3, k, zero=0.2)
    b = make_x(rng, 21)
    y = sk.linear(x, Wa, b, topk=topk, select=select)
    assert_act_linear(y, x, W, b, topk=topk, select=select)
    y = sk.linear(x[0], Wa, b, topk=np.int64(topk), select=select)
    assert_act_linear(y, x[0], W, b, topk=topk, select=select)


@pytest.mark.parametrize("select", ["magnitude", "wina"])
def test_topk_with_threshold(backend, rng, select):
    W = make_weights(rng, 12, 50, pattern="dense")
    Wa = sk.pack(W, "act")
    x = relu_x(rng, 6, 50, zero=0.2)
    for t, kk in [(0.5, 10), (0.5, 45), (2.0, 3), (0.0, 0)]:
        y = sk.linear(x, Wa, topk=kk, threshold=t, select=select)
        assert_act_linear(y, x, W, topk=kk, threshold=t, select=select)


@pytest.mark.parametrize("select", ["magnitude", "wina"])
@pytest.mark.parametrize("topk", [1, 3, 5, 8])
def test_topk_ties(backend, rng, select, topk):
    """Inputs in {0, +-1, +-2}: many equal scores; any valid choice is accepted."""
    k = 12
    W = make_weights(rng, 9, k, pattern="dense")
    if select == "wina":
        W[:, ::2] = W[:, 1::2]          # pairs of columns with equal norms
    Wa = sk.pack(W, "act")
    x = rng.integers(-2, 3, size=(4, k)).astype(np.float32)
    y = sk.linear(x, Wa, topk=topk, select=select)
    assert_act_linear(y, x, W, topk=topk, select=select)


def test_nan_inputs(backend, rng):
    """A NaN input is never <= t: it is active and propagates; in top-k it ranks first."""
    W = make_weights(rng, 8, 30, pattern="dense")
    Wa = sk.pack(W, "act")
    x = relu_x(rng, 3, 30)
    x[0, 4] = np.nan
    x[1, 7] = np.inf
    x[1, 8] = -np.inf
    for kw in ({}, {"threshold": 0.5}, {"threshold": 0.5, "select": "wina"}, {"topk": 1},
               {"topk": 2, "select": "wina"}, {"topk": 0}):
        y = sk.linear(x, Wa, **kw)
        assert_act_linear(y, x, W, **kw)
    assert np.isnan(sk.linear(x, Wa, topk=1)[0]).all()


def test_nonfinite_weights(backend, rng):
    """Exact mode equals dense linear (0 * inf = NaN); dropped channels contribute nothing."""
    W = make_weights(rng, 6, 25, pattern="dense")
    W[2, 5] = np.inf
    W[4, 9] = np.nan
    Wa = sk.pack(W, "act")
    assert not Wa.finite
    x = relu_x(rng, 4, 25)
    x[:, 5] = 0
    x[:, 9] = 0
    x[3, 5] = 1.0
    assert_linear(sk.linear(x, Wa), x, W)
    assert np.isnan(sk.linear(x, Wa)[:3, 2]).all()
    y = sk.linear(x, Wa, threshold=0.0)
    assert_act_linear(y, x, W, threshold=0.0)
    assert np.isfinite(y[:3]).all()
    assert_act_linear(sk.linear(x, Wa, topk=30), x, W, topk=30)


def test_threads(backend, rng):
    W = make_weights(rng, 3000, 300, pattern="dense")
    Wa = sk.pack(W, "act")
    x = relu_x(rng, 3, 300)
    sk.set_num_threads(2)
    assert_linear(sk.linear(x, Wa), x, W)
    assert_linear(sk.linear(x[0], Wa), x[0], W)


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(m=st.integers(0, 40), k=st.integers(0, 50), rows=st.integers(1, 20),
       zero=st.floats(0, 1), mode=st.sampled_from(["exact", "threshold", "topk", "both"]),
       select=st.sampled_from(["magnitude", "wina"]), seed=st.integers(0, 2**32 - 1))
def test_act_hypothesis(backend, m, k, rows, zero, mode, select, seed):
    rng = np.random.default_rng(seed)
    W = make_weights(rng, m, k, pattern="dense")
    x = relu_x(rng, rows, k, zero=zero)
    x[rng.random(x.shape) < 0.2] = 1.0          # some ties
    kw = {}
    if mode in ("threshold", "both"):
        kw["threshold"] = float(rng.choice([0.0, 0.3, 1.0]))
    if mode in ("topk", "both"):
        kw["topk"] = int(rng.integers(0, k + 2))
    if mode != "exact":
        kw["select"] = select
    y = sk.linear(x, sk.pack(W, "act"), **kw)
    assert_act_linear(y, x, W, max_choices=10**6, **kw)


# -- matmul ---------------------------------------------------------------------------------

@pytest.mark.parametrize("xshape", [(13,), (13, 1), (13, 5), (2, 13, 3), (13, 0)])
def test_matmul(backend, rng, xshape):
    W = make_weights(rng, 11, 13, pattern="dense")
    Wpa = sk.pack(W, "act")
    X = relu_x(rng, *xshape)
    assert_matmul(Wpa @ X, W, X)
    assert_matmul(sk.matmul(Wpa, X), W, X)


# -- DeltaLinear ----------------------------------------------------------------------------

@pytest.mark.parametrize("lead", [(), (3,)], ids=["batch1", "batch3"])
def test_delta_random_walk(backend, rng, lead):
    m, k, theta = 40, 300, 0.05
    W = make_weights(rng, m, k, pattern="dense")
    b = make_x(rng, m)
    d = sk.DeltaLinear(sk.pack(W, "act"), b, threshold=theta)
    check = DeltaCheck(W, b, theta)
    x = make_x(rng, *lead, k)
    for _ in range(100):
        step = rng.standard_normal(x.shape).astype(np.float32) * 0.02
        step[rng.random(x.shape) < 0.8] = 0
        x = x + step
        y = d(x)
        assert y.shape == lead + (m,) and y.dtype == np.float32
        check.check(y, x)
    assert d.steps == 100
    assert 0.5 < d.stats < 1.0
    d.reset()
    assert d.stats == 0.0 and d.steps == 0
    y = d(x[..., :].copy())
    DeltaCheck(W, b, theta).check(y, x)


def test_delta_threshold_zero_is_exact(backend, rng):
    W = make_weights(rng, 7, 19, pattern="dense")
    d = sk.DeltaLinear(sk.pack(W, "act"), threshold=0)
    for _ in range(5):
        x = relu_x(rng, 19)
        assert_linear(d(x), x, W)


def test_delta_errors(backend, rng):
    W = make_weights(rng, 7, 19, pattern="dense")
    Wa = sk.pack(W, "act")
    with pytest.raises(TypeError, match="act"):
        sk.DeltaLinear(sk.pack(W), threshold=0.1)
    with pytest.raises(TypeError):
        sk.DeltaLinear(W, threshold=0.1)
    for bad in (-0.1, float("nan")):
        with pytest.raises(ValueError, match="threshold"):
            sk.DeltaLinear(Wa, threshold=bad)
    with pytest.raises(TypeError, match="threshold"):
        sk.DeltaLinear(Wa, threshold="0.1")
    with pytest.raises(ValueError, match="bias"):
        sk.DeltaLinear(Wa, np.zeros(3), threshold=0.1)
    d = sk.DeltaLinear(Wa, threshold=0.1)
    with pytest.raises(ValueError, match="shape"):
        d(np.zeros(18, np.float32))
    d(np.zeros((2, 19), np.float32))
    with pytest.raises(ValueError, match="reset"):
        d(np.zeros(19, np.float32))
    d.reset()
    d(np.zeros(19, np.float32))
    with pytest.raises(ValueError):
        d(np.float32(1.0))


# -- argument checking ----------------------------------------------------------------------

def test_bad_arguments(backend, rng):
    W = make_weights(rng, 5, 8, pattern="dense")
    Wa = sk.pack(W, "act")
    x = make_x(rng, 8)
    for bad in (-1.0, float("nan"), -np.inf):
        with pytest.raises(ValueError, match="threshold"):
            sk.linear(x, Wa, threshold=bad)
    for bad in ("0.1", True, [0.1]):
        with pytest.raises(TypeError, match="threshold"):
            sk.linear(x, Wa, threshold=bad)
    with pytest.raises(ValueError, match="topk"):
        sk.linear(x, Wa, topk=-1)
    for bad in (1.5, "3", True, 2.0):
        with pytest.raises(TypeError, match="topk"):
            sk.linear(x, Wa, topk=bad)
    with pytest.raises(ValueError, match="select"):
        sk.linear(x, Wa, topk=2, select="random")
    with pytest.raises(TypeError, match="select"):
        sk.linear(x, Wa, topk=2, select=1)
    with pytest.raises(ValueError, match="wina"):
        sk.linear(x, Wa, select="wina")
    Wp = sk.pack(W)
    for kw in ({"threshold": 0.1}, {"topk": 2}, {"select": "magnitude"}):
        with pytest.raises(TypeError, match="act"):
            sk.linear(x, Wp, **kw)
    with pytest.raises(ValueError, match="features"):
        sk.linear(make_x(rng, 7), Wa, topk=2)
    with pytest.raises(TypeError):
        sk.pack(W, "act", sparsity=0.5)
