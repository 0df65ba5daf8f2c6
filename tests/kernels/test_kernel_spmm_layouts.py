"""The SpMM operators' two layouts (sk_f32_spmm_{unstructured,nm}_strided_isa): X[K, N] and
Y[M, N] each row-major or token-major (linear's x[N, K] and y[N, M]), on every ISA variant,
against reference.py. Shapes sit around the operator's blocks: the 16-column tiles of the
transposing copy of X, the 64-row x 64-column Y tiles, the 64-column X blocks, and a
thread split. Padding of X holds NaN (never read); Y's padding must keep its sentinels."""
from __future__ import annotations

import numpy as np
import pytest

import sparsekern as sk
from _capi import (SK_ERR_INVALID_ARG, SK_OK, c_backend, csr_struct, nm_struct, spmm_strided)
from _cases import make_weights, make_x
from reference import assert_linear

_c = c_backend()
ISAS = _c.isas() if _c is not None else []

pytestmark = pytest.mark.skipif(_c is None, reason="C library not loadable")

SENTINEL = np.float32(-7777.0)

# (m, k, n): around the copy's 16-column tiles (k), the Y tile's 64 rows (m) and 64 columns
# and the X blocks' 64 columns (n), one-row and one-column corners
SHAPES = [(1, 1, 2), (1, 40, 7), (5, 17, 2), (7, 1, 3), (63, 16, 9), (64, 15, 64),
          (65, 40, 65), (130, 33, 130), (129, 20, 200), (200, 64, 1)]
LAYOUTS = ["x_tokens", "y_tokens", "both_tokens"]


def _x_buffer(rng, k, n, tokens):
    """(buffer, X view [k, n], strides): NaN in the padding."""
    if tokens:
        buf = np.full((n, k + 3), np.nan, np.float32)
        buf[:, :k] = make_x(rng, n, k)
        return buf, buf[:, :k].T, (1, k + 3)
    buf = np.full((k, n + 3), np.nan, np.float32)
    buf[:, :n] = make_x(rng, k, n)
    return buf, buf[:, :n], (n + 3, 1)


def _y_buffer(m, n, tokens):
    """(buffer, Y view [m, n], strides, check of the padding)."""
    if tokens:
        buf = np.full((n + 1, m + 2), SENTINEL, np.float32)
        return buf, buf[:n, :m].T, (1, m + 2), lambda: (np.all(buf[:n, m:] == SENTINEL)
                                                      and np.all(buf[n] == SENTINEL))
    buf = np.full((m + 1, n + 2), SENTINEL, np.float32)
    return buf, buf[:m, :n], (n + 2, 1), lambda: (np.all(buf[:m, n:] == SENTINEL)
                                                  and np.all(buf[m] == SENTINEL))


def _weights(rng, family, m, k, pattern, density=0.3):
    W = make_weights(rng, m, k, density, pattern)
    if family == "unstructured":
        Wp = sk.pack(W)
        return W, Wp, csr_struct(_c, Wp)
    Wp = sk.pack(W, "2:4")
    return Wp.to_dense(), Wp, nm_struct(_c, Wp)


def _run(rng, family, isa, m, k, n, layout, pattern="random", x_special=None, threads=1):
    W, Wp, h = _weights(rng, family, m, k, pattern)
    xbuf, X, xs = _x_buffer(rng, k, n, layout in ("x_tokens", "both_tokens"))
    if x_special is not None:
        X[x_special] = np.float32(np.inf)
        X[0, -1] = np.float32(np.nan)
    ybuf, Y, ys, untouched = _y_buffer(m, n, layout in ("y_tokens", "both_tokens"))
    bias = make_x(rng, m)
    sk.set_num_threads(threads)
    try:
        st = spmm_strided(_c, family, isa, h, xbuf, n, xs, bias, ybuf, ys)
    finally:
        sk.set_num_threads(1)
    assert st == SK_OK
    assert_linear(np.ascontiguousarray(Y.T), X.T, W, bias, what=f"{family} {isa} {layout}")
    assert untouched(), "wrote outside Y"
    del Wp


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "m{}k{}n{}".format(*s))
@pytest.mark.parametrize("family", ["unstructured", "nm"])
@pytest.mark.parametrize("isa", ISAS)
def test_layouts(rng, isa, family, shape, layout):
    _run(rng, family, isa, *shape, layout)


@pytest.mark.parametrize("pattern", ["empty_rows", "dense", "zero"])
@pytest.mark.parametrize("family", ["unstructured", "nm"])
@pytest.mark.parametrize("isa", ISAS)
def test_layouts_patterns(rng, isa, family, pattern):
    _run(rng, family, isa, 70, 37, 70, "both_tokens", pattern)


@pytest.mark.parametrize("family", ["unstructured", "nm"])
@pytest.mark.parametrize("isa", ISAS)
def test_layouts_nonfinite(rng, isa, family):
    """inf and NaN in a token-major X propagate as dense BLAS would, into either Y."""
    for layout in LAYOUTS:
        _run(rng, family, isa, 66, 30, 67, layout, x_special=(slice(3, 5), slice(10, 12)))


@pytest.mark.parametrize("family", ["unstructured", "nm"])
@pytest.mark.parametrize("isa", ISAS)
def test_layouts_threads(rng, isa, family):
    for layout in LAYOUTS:
        _run(rng, family, isa, 300, 257, 130, layout, threads=2)


def test_layouts_panels(rng):
    """The panel layout (batch >= 64, x86 quads of rows) through the Y tiles."""
    W = make_weights(rng, 130, 300, 0.3, "random")
    Wp = sk.pack(W)
    panels = _c._make_panels(Wp)
    assert panels
    for isa in ISAS:
        for layout in LAYOUTS:
            xbuf, X, xs = _x_buffer(rng, 300, 130, layout != "y_tokens")
            ybuf, Y, ys, untouched = _y_buffer(130, 130, layout != "x_tokens")
            assert spmm_strided(_c, "unstructured", isa, panels[0], xbuf, 130, xs, None, ybuf,
                                ys) == SK_OK
            assert_linear(np.ascontiguousarray(Y.T), X.T, W, what=f"panels {isa} {layout}")
            assert untouched()


@pytest.mark.parametrize("family", ["unstructured", "nm"])
def test_layout_status_codes(rng, family):
    """Strides that are neither layout, or overlap, are refused; n == 1 reads only the
    row strides; empty products succeed whatever the strides."""
    W, Wp, h = _weights(rng, family, 6, 10, "random")
    X = make_x(rng, 64)
    Y = np.full(64, SENTINEL, np.float32)
    isa = ISAS[-1]

    def st(n, xs, ys):
        return spmm_strided(_c, family, isa, h, X, n, xs, None, Y, ys)

    for xs, ys in [((2, 1), (3, 1)), ((1, 3), (3, 1)), ((3, 2), (3, 1)), ((1, 9), (3, 1)),
                   ((0, 1), (3, 1)), ((3, 0), (3, 1)), ((3, 1), (1, 5)), ((3, 1), (2, 2)),
                   ((3, 1), (2, 1)), ((3, 1), (-3, 1)), ((-1, 10), (3, 1))]:
        assert st(3, xs, ys) == SK_ERR_INVALID_ARG, (xs, ys)
    assert st(3, (1, 10), (1, 6)) == SK_OK
    assert st(3, (3, 1), (1, 6)) == SK_OK
    assert st(1, (1, 0), (1, 0)) == SK_OK          # the column strides are not read
    assert st(1, (0, 1), (1, 1)) == SK_ERR_INVALID_ARG
    assert st(1, (1, 1), (0, 1)) == SK_ERR_INVALID_ARG
    assert st(0, (0, 0), (0, 0)) == SK_OK           # nothing to compute
    del Wp
