"""Sparse conv2d on every backend (each C ISA variant and numba) against reference.conv2d
(and torch where installed): 1x1 (the SpMM path), KxK direct sparse convolution, depthwise
and other dense weights, N:M weights, strides, padding (int, pair, 'same', 'valid', larger
than the kernel), dilation, groups, odd and 1x1 images, C_in = 1, batches, non-finite
propagation, inputs never modified, and clear errors."""
from __future__ import annotations

import numpy as np
import pytest

import reference
import sparsekern as sk
from _cases import make_x
from reference import assert_conv2d


def _weights(rng, shape, density=0.3):
    W = rng.standard_normal(shape).astype(np.float32)
    W[W == 0] = 1.0
    return np.where(rng.random(shape) < density, W, np.float32(0))


# (batch, c_in, c_out, h, w, kh, kw, stride, padding, dilation, groups)
GEOMS = [
    # 1x1: SpMM over the CHW plane (stride 1) and subsampled (stride 2)
    ("1x1", 2, 8, 12, 9, 11, 1, 1, 1, 0, 1, 1),
    ("1x1-wide", 1, 5, 7, 3, 70, 1, 1, 1, 0, 1, 1),
    ("1x1-s2-odd", 1, 6, 9, 9, 13, 1, 1, 2, 0, 1, 1),
    ("1x1-pad", 1, 4, 3, 5, 6, 1, 1, 1, 2, 1, 1),
    ("1x1-img1", 3, 4, 5, 1, 1, 1, 1, 1, 0, 1, 1),
    ("1x1-cin1", 1, 1, 6, 7, 9, 1, 1, 1, 0, 1, 1),
    ("1x1-g2", 1, 6, 4, 5, 5, 1, 1, 1, 0, 1, 2),
    # KxK direct
    ("3x3-p1", 2, 5, 7, 9, 11, 3, 3, 1, 1, 1, 1),
    ("3x3-p1-w70", 1, 3, 4, 4, 70, 3, 3, 1, 1, 1, 1),
    ("3x3-p1-w33", 1, 3, 4, 5, 33, 3, 3, 1, 1, 1, 1),
    ("3x3-p1-w130", 1, 2, 3, 3, 130, 3, 3, 1, 1, 1, 1),
    ("3x3-s2-p1", 1, 4, 6, 13, 70, 3, 3, 2, 1, 1, 1),
    ("3x3-s2-even", 1, 4, 6, 12, 16, 3, 3, 2, 1, 1, 1),
    ("3x3-s3", 1, 3, 4, 11, 19, 3, 3, 3, 0, 1, 1),
    ("5x5-s2-d2-g2", 1, 8, 8, 12, 33, 5, 5, 2, 3, 2, 2),
    ("3x3-pad-gt-k", 1, 3, 4, 4, 5, 3, 3, 1, 4, 1, 1),
    ("3x3-img1-pad2", 2, 3, 4, 1, 1, 3, 3, 1, 2, 1, 1),
    ("3x3-cin1", 2, 1, 5, 7, 6, 3, 3, 1, 1, 1, 1),
    ("3x3-valid", 1, 4, 5, 8, 9, 3, 3, 1, "valid", 1, 1),
    ("same-even-k", 1, 3, 4, 7, 9, 2, 4, 1, "same", 1, 1),
    ("same-dil", 1, 3, 4, 9, 10, 3, 3, 1, "same", 2, 1),
    ("rect-pairs", 2, 2, 3, 6, 17, 2, 3, (1, 3), (4, 2), (2, 1), 1),
    ("7x7-s2-p3", 1, 3, 4, 15, 15, 7, 7, 2, 3, 1, 1),
]


@pytest.mark.parametrize("geom", GEOMS, ids=[g[0] for g in GEOMS])
@pytest.mark.parametrize("bias", [False, True], ids=["nobias", "bias"])
def test_conv2d_sparse(backend, rng, geom, bias):
    _, bsz, ci, co, h, w, kh, kw, s, p, d, g = geom
    W4 = _weights(rng, (co, ci // g, kh, kw), 0.4)
    Wc = sk.pack(W4, "unstructured")
    x = make_x(rng, bsz, ci, h, w)
    b = make_x(rng, co) if bias else None
    y = sk.conv2d(x, Wc, b, stride=s, padding=p, dilation=d, groups=g)
    assert_conv2d(y, x, W4, b, s, p, d, g)


@pytest.mark.parametrize("geom", GEOMS[:3] + GEOMS[7:9] + GEOMS[14:15],
                         ids=[g[0] for g in GEOMS[:3] + GEOMS[7:9] + GEOMS[14:15]])
def test_conv2d_dense_weights(backend, rng, geom):
    """A plain numpy weight runs the direct kernel with every weight stored."""
    _, bsz, ci, co, h, w, kh, kw, s, p, d, g = geom
    W4 = _weights(rng, (co, ci // g, kh, kw), 0.7)
    x = make_x(rng, bsz, ci, h, w)
    b = make_x(rng, co)
    assert_conv2d(sk.conv2d(x, W4, b, stride=s, padding=p, dilation=d, groups=g),
                  x, W4, b, s, p, d, g)


@pytest.mark.parametrize("k", [3, 5])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("hw", [(1, 1), (7, 9), (14, 37)])
def test_depthwise(backend, rng, k, stride, hw):
    c = 6
    W = make_x(rng, c, 1, k, k)
    x = make_x(rng, 2, c, *hw)
    b = make_x(rng, c)
    y = sk.conv2d(x, W, b, stride=stride, padding=k // 2, groups=c)
    assert_conv2d(y, x, W, b, stride, k // 2, 1, c)


def test_depthwise_multiplier(backend, rng):
    W = make_x(rng, 8, 1, 3, 3)    # 2 output channels per input channel
    x = make_x(rng, 1, 4, 6, 7)
    assert_conv2d(sk.conv2d(x, W, stride=2, padding=1, groups=4), x, W, None, 2, 1, 1, 4)


@pytest.mark.parametrize("ksize,stride", [(1, 1), (1, 2), (3, 1), (3, 2)])
def test_conv2d_nm(backend, rng, ksize, stride):
    if not hasattr(sk, "NMMatrix"):
        pytest.skip("N:M format not available")
    W4 = make_x(rng, 8, 16, ksize, ksize)
    Wc = sk.pack(W4, "2:4")
    assert Wc.inner_format == "2:4" and Wc.shape == W4.shape
    Wd = Wc.to_dense()
    # groups of 4 consecutive input channels at each kernel position keep at most 2
    groups = (Wd.transpose(0, 2, 3, 1).reshape(8, -1, 4) != 0).sum(axis=2)
    assert (groups <= 2).all() and (groups == 2).mean() > 0.9
    kept = Wd != 0
    np.testing.assert_array_equal(Wd[kept], W4[kept])
    x = make_x(rng, 2, 16, 9, 10)
    y = sk.conv2d(x, Wc, stride=stride, padding=ksize // 2)
    assert_conv2d(y, x, Wd, None, stride, ksize // 2)


def test_unbatched_input(backend, rng):
    W4 = _weights(rng, (4, 3, 3, 3))
    x = make_x(rng, 3, 8, 9)
    y = sk.conv2d(x, sk.pack(W4, "unstructured"), padding=1)
    assert y.shape == (4, 8, 9)
    assert_conv2d(y, x, W4, None, 1, 1)


# -- non-finite inputs ------------------------------------------------------------------------

@pytest.mark.parametrize("geom", [GEOMS[0], GEOMS[2], GEOMS[7], GEOMS[11], GEOMS[14]],
                         ids=[GEOMS[i][0] for i in (0, 2, 7, 11, 14)])
def test_nonfinite_propagation(backend, rng, geom):
    _, bsz, ci, co, h, w, kh, kw, s, p, d, g = geom
    W4 = _weights(rng, (co, ci // g, kh, kw), 0.3)
    x = make_x(rng, bsz, ci, h, w)
    x[0, 0, 0, 0] = np.nan                      # a corner (next to the padding)
    x[-1, -1, h // 2, w // 2] = np.inf
    if h > 2 and w > 2:
        x[0, ci // 2, h - 1, 1] = -np.inf
    b = make_x(rng, co)
    y = sk.conv2d(x, sk.pack(W4, "unstructured"), b, stride=s, padding=p, dilation=d, groups=g)
    assert_conv2d(y, x, W4, b, s, p, d, g)
    assert np.isnan(y).any()


def test_nonfinite_depthwise(backend, rng):
    W = make_x(rng, 3, 1, 3, 3)
    W[1, 0, 1, 1] = 0.0                          # a zero weight still multiplies (dense)
    x = make_x(rng, 1, 3, 6, 6)
    x[0, 1, 2, 3] = np.inf
    x[0, 2, 0, 5] = np.nan
    y = sk.conv2d(x, W, stride=1, padding=1, groups=3)
    assert_conv2d(y, x, W, None, 1, 1, 1, 3)


# -- torch, where installed -------------------------------------------------------------------

@pytest.mark.parametrize("geom", [GEOMS[i] for i in (0, 2, 7, 11, 14, 19, 21)],
                         ids=[GEOMS[i][0] for i in (0, 2, 7, 11, 14, 19, 21)])
def test_against_torch(rng, geom):
    pytest.importorskip("torch")
    _, bsz, ci, co, h, w, kh, kw, s, p, d, g = geom
    W4 = _weights(rng, (co, ci // g, kh, kw), 0.4)
    x = make_x(rng, bsz, ci, h, w)
    b = make_x(rng, co)
    y = sk.conv2d(x, sk.pack(W4, "unstructured"), b, stride=s, padding=p, dilation=d, groups=g)
    t = reference.torch_conv2d(x, W4, b, s, p, d, g)
    assert y.shape == t.shape
    np.testing.assert_allclose(y, t, rtol=1e-4, atol=1e-4)


# -- inputs -----------------------------------------------------------------------------------

def test_conv2d_never_modifies_inputs(backend, rng):
    W4 = make_x(rng, 4, 3, 3, 3)
    x = make_x(rng, 1, 3, 5, 6)
    b = make_x(rng, 4)
    copies = [a.copy() for a in (W4, x, b)]
    sk.conv2d(x, sk.pack(W4, "unstructured", sparsity=0.5), b, stride=2, padding=1)
    sk.conv2d(x, W4, b, padding=1)
    for a, c in zip((W4, x, b), copies):
        np.testing.assert_array_equal(a, c)
        assert a.flags.writeable


# -- errors -----------------------------------------------------------------------------------

def _err_args(rng):
    return make_x(rng, 1, 4, 8, 8), sk.pack(make_x(rng, 6, 4, 3, 3), "unstructured")


@pytest.mark.parametrize("kwargs,exc,msg", [
    (dict(stride=0), ValueError, "stride must be >= 1"),
    (dict(stride=(1, 2, 3)), ValueError, "stride must be an int or a pair"),
    (dict(stride=1.5), TypeError, "stride must be an int"),
    (dict(padding=-1), ValueError, "padding must be >= 0"),
    (dict(padding="full"), ValueError, "padding must be an int, a pair, 'same' or 'valid'"),
    (dict(padding="same", stride=2), ValueError, "padding='same' is not supported for strided"),
    (dict(dilation=0), ValueError, "dilation must be >= 1"),
    (dict(groups=0), ValueError, "groups must be a positive integer"),
    (dict(groups=3), ValueError, "expects 12 input channels"),
    (dict(dilation=5), ValueError, "larger than the padded input"),
    (dict(bias=np.ones(5, np.float32)), ValueError, r"bias must have shape \(6,\)"),
])
def test_bad_arguments(rng, kwargs, exc, msg):
    x, Wc = _err_args(rng)
    with pytest.raises(exc, match=msg):
        sk.conv2d(x, Wc, **kwargs)


def test_bad_shapes(rng):
    x, Wc = _err_args(rng)
    with pytest.raises(ValueError, match="input has 5"):
        sk.conv2d(make_x(rng, 1, 5, 8, 8), Wc)
    with pytest.raises(ValueError, match=r"input must be \(B, C_in, H, W\)"):
        sk.conv2d(make_x(rng, 4, 8), Wc)
    with pytest.raises(ValueError, match="weight must be 4-D"):
        sk.conv2d(x, make_x(rng, 6, 4, 3))
    with pytest.raises(TypeError, match="packed from a 4-D conv weight"):
        sk.conv2d(x, sk.pack(make_x(rng, 6, 36), "unstructured"))
    with pytest.raises(ValueError, match="not divisible by groups"):
        sk.conv2d(make_x(rng, 1, 4, 8, 8), make_x(rng, 5, 2, 3, 3), groups=2)
    with pytest.raises(ValueError, match="finite"):
        sk.conv2d(x, np.full((6, 4, 3, 3), np.nan, np.float32))
    with pytest.raises(TypeError, match="no matrix product"):
        Wp_conv = Wc
        Wp_conv @ make_x(rng, 36, 2)
    with pytest.raises(ValueError, match="4-D"):
        sk.ConvWeight.from_dense(make_x(rng, 3, 3))


# -- the reference itself, on hand-computed values --------------------------------------------

def test_reference_conv2d_hand_values():
    x = np.arange(1, 10, dtype=np.float32).reshape(1, 1, 3, 3)
    W = np.ones((1, 1, 2, 2), np.float32)
    np.testing.assert_array_equal(reference.conv2d(x, W)[0, 0], [[12, 16], [24, 28]])
    # 'same' with an even kernel: the extra padding goes to the bottom/right, as in torch
    np.testing.assert_array_equal(reference.conv2d(x, W, padding="same")[0, 0],
                                  [[12, 16, 9], [24, 28, 15], [15, 17, 9]])
    np.testing.assert_array_equal(reference.conv2d(x, W, stride=2, padding=1)[0, 0],
                                  [[1, 5], [11, 28]])
    np.testing.assert_array_equal(reference.conv2d(x, W, dilation=2, padding=1)[0, 0],
                                  [[5, 10, 5], [10, 20, 10], [5, 10, 5]])
    x2 = np.stack([x[0, 0], 10 * x[0, 0]])[None]          # 2 channels, groups=2
    y = reference.conv2d(x2, np.ones((2, 1, 1, 1), np.float32), np.array([1, -1], np.float32),
                         groups=2)
    np.testing.assert_array_equal(y[0, 0], x[0, 0] + 1)
    np.testing.assert_array_equal(y[0, 1], 10 * x[0, 0] - 1)


@pytest.mark.parametrize("where", ["first", "last", "middle"])
def test_single_nonfinite_anywhere(backend, rng, where):
    """One inf, at the first, last or a middle element of x (the scan's vector tail), with
    weights so sparse that most outputs miss it through structural zeros."""
    W4 = _weights(rng, (4, 3, 3, 3), 0.15)
    x = make_x(rng, 1, 3, 5, 7)          # 105 floats: not a multiple of 16
    flat = x.reshape(-1)
    flat[{"first": 0, "last": -1, "middle": 52}[where]] = np.inf
    y = sk.conv2d(x, sk.pack(W4, "unstructured"), padding=1)
    assert_conv2d(y, x, W4, None, 1, 1)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_threads(backend, rng, threads):
    """Enough work for the parallel paths: row blocks (sparse 3x3) and channel chunks
    (depthwise), with thread counts that do not divide them evenly."""
    sk.set_num_threads(threads)
    W4 = _weights(rng, (16, 16, 3, 3), 0.3)
    x = make_x(rng, 2, 16, 41, 43)
    b = make_x(rng, 16)
    y = sk.conv2d(x, sk.pack(W4, "unstructured"), b, stride=1, padding=1)
    assert_conv2d(y, x, W4, b, 1, 1)
    Wd = make_x(rng, 30, 1, 3, 3)
    xd = make_x(rng, 1, 30, 50, 47)
    assert_conv2d(sk.conv2d(xd, Wd, stride=2, padding=1, groups=30), xd, Wd, None, 2, 1, 1, 30)


@pytest.mark.parametrize("stride", [1, 2])
def test_1x1_column_chunks(backend, rng, stride):
    """Many channels: the C operator's 1x1 path runs the SpMM in 64-column chunks of the
    plane (here 64 + 64 + 7 and, at stride 2, 35), a NaN in a later chunk."""
    W4 = _weights(rng, (500, 600, 1, 1), 0.05)
    x = make_x(rng, 2, 600, 9, 15)
    x[1, 7, 8, 13] = np.nan                  # an odd column: skipped at stride 2
    b = make_x(rng, 500)
    y = sk.conv2d(x, sk.pack(W4, "unstructured"), b, stride=stride)
    assert_conv2d(y, x, W4, b, stride)
    assert np.isnan(y[1]).any() == (stride == 1)


def test_dense_weights_changed_in_place(backend, rng):
    """Dense (depthwise) weights are cached between calls; changing them in place, or a new
    array at the same address, must never give a stale result."""
    W = make_x(rng, 6, 1, 3, 3)
    x = make_x(rng, 1, 6, 7, 8)
    assert_conv2d(sk.conv2d(x, W, padding=1, groups=6), x, W, None, 1, 1, 1, 6)
    W[2, 0, 1, 1] += 1.0
    assert_conv2d(sk.conv2d(x, W, padding=1, groups=6), x, W, None, 1, 1, 1, 6)
    W[...] = make_x(rng, 6, 1, 3, 3)
    assert_conv2d(sk.conv2d(x, W, padding=1, groups=6), x, W, None, 1, 1, 1, 6)


# -- hypothesis: random geometries on every backend -----------------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.integers(1, 2), cig=st.integers(1, 4), cog=st.integers(1, 4),
       groups=st.integers(1, 3), h=st.integers(1, 12), w=st.integers(1, 40),
       kh=st.integers(1, 4), kw=st.integers(1, 4), stride=st.integers(1, 3),
       pad=st.integers(0, 4), dil=st.integers(1, 2), density=st.sampled_from([0.0, 0.3, 1.0]),
       bias=st.booleans(), seed=st.integers(0, 2**31 - 1))
def test_conv2d_hypothesis(backend, batch, cig, cog, groups, h, w, kh, kw, stride, pad, dil,
                           density, bias, seed):
    """Any geometry torch accepts gives the reference's result."""
    rng = np.random.default_rng(seed)
    ci, co = cig * groups, cog * groups
    if h + 2 * pad < dil * (kh - 1) + 1 or w + 2 * pad < dil * (kw - 1) + 1:
        return  # torch rejects an empty output; covered by the error tests
    W4 = _weights(rng, (co, cig, kh, kw), density)
    x = make_x(rng, batch, ci, h, w)
    b = make_x(rng, co) if bias else None
    y = sk.conv2d(x, sk.pack(W4, "unstructured"), b, stride=stride, padding=pad, dilation=dil,
                  groups=groups)
    assert_conv2d(y, x, W4, b, stride, pad, dil, groups)
