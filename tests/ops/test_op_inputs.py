"""Input handling of the ops: conversion, no input ever modified, float32 output, and
clear errors (TypeError/ValueError naming the culprit) for bad input, on every backend."""
from __future__ import annotations

import numpy as np
import pytest

import sparsekern as sk
from _cases import make_weights, make_x
from reference import assert_linear, assert_matmul


def _variants(rng, shape):
    """name -> an array-like of ``shape`` in some layout/dtype the ops must convert."""
    base = make_x(rng, *shape)
    ro = base.copy()
    ro.setflags(write=False)
    big = make_x(rng, *shape[:-1], 2 * shape[-1])
    out = {
        "f32-c": base.copy(),
        "f32-readonly": ro,
        "f32-fortran": np.asfortranarray(base),
        "f32-sliced": big[..., ::2],
        "f32-transposed-view": np.ascontiguousarray(base.T).T,
        "f32-bigendian": base.astype(">f4"),
        "f32-unaligned": _unaligned(base),
        "float64": base.astype(np.float64),
        "float16": base.astype(np.float16),
        "int32": (base * 10).astype(np.int32),
        "uint8": np.abs(base * 10).astype(np.uint8),
        "bool": base > 0,
        "list": base.tolist(),
    }
    return out


def _unaligned(a):
    buf = np.zeros(a.nbytes + 1, np.uint8)
    u = np.frombuffer(buf.data, dtype=np.float32, count=a.size, offset=1).reshape(a.shape)
    u[...] = a
    assert not u.flags.aligned
    return u


def _snapshot(a):
    if isinstance(a, np.ndarray):
        return a.copy(order="K"), a.flags.writeable, a.dtype
    return list(a), None, None


def _unchanged(a, snap):
    copy, writeable, dtype = snap
    if isinstance(a, np.ndarray):
        assert a.dtype == dtype and a.flags.writeable == writeable
        np.testing.assert_array_equal(a, copy)
    else:
        assert a == copy


VARIANT_NAMES = list(_variants(np.random.default_rng(0), (3, 4)))


@pytest.mark.parametrize("variant", VARIANT_NAMES)
def test_matmul_converts_and_never_modifies_x(backend, rng, variant):
    W = make_weights(rng, 9, 21, 0.4)
    Wp = sk.pack(W)
    X = _variants(rng, (21, 6))[variant]
    snap = _snapshot(X)
    Y = sk.matmul(Wp, X)
    _unchanged(X, snap)
    assert Y.dtype == np.float32 and Y.flags.c_contiguous and Y.flags.writeable
    assert not np.shares_memory(Y, np.asarray(X))
    assert_matmul(Y, W, np.asarray(X))


@pytest.mark.parametrize("variant", VARIANT_NAMES)
def test_linear_converts_and_never_modifies_inputs(backend, rng, variant):
    W = make_weights(rng, 6, 4, 0.6)
    Wp = sk.pack(W)
    x = _variants(rng, (3, 4))[variant]
    b = _variants(rng, (1, 6))[variant]
    b = b[0] if isinstance(b, list) else np.asarray(b)[0]
    snaps = _snapshot(x), _snapshot(b)
    y = sk.linear(x, Wp, b)
    _unchanged(x, snaps[0])
    _unchanged(b, snaps[1])
    assert y.dtype == np.float32 and y.shape == (3, 6)
    assert_linear(y, np.asarray(x), W, np.asarray(b))


def test_stacked_inputs_not_modified(backend, rng):
    W = make_weights(rng, 5, 8)
    Wp = sk.pack(W)
    X = make_x(rng, 2, 3, 8, 4)
    X.setflags(write=False)
    copy = X.copy()
    assert_matmul(sk.matmul(Wp, X), W, X)
    np.testing.assert_array_equal(X, copy)
    x = np.moveaxis(make_x(rng, 8, 2, 3), 0, -1)  # non-contiguous (2, 3, 8)
    copy = x.copy()
    assert_linear(sk.linear(x, Wp), x, W)
    np.testing.assert_array_equal(x, copy)


def test_output_is_fresh(backend, rng):
    """Two calls give two arrays; writing one does not change the packed matrix or X."""
    W = make_weights(rng, 4, 4, pattern="dense")
    Wp = sk.pack(W)
    X = make_x(rng, 4, 4)
    Y1 = sk.matmul(Wp, X)
    Y2 = sk.matmul(Wp, X)
    assert not np.shares_memory(Y1, Y2)
    Y1[...] = 7
    np.testing.assert_array_equal(Wp.to_dense(), W)
    assert_matmul(sk.matmul(Wp, X), W, X)


# -- bad input ----------------------------------------------------------------------------

BAD_X = {
    "scalar": (3.0, ValueError, "at least one dimension"),
    "0d-array": (np.float32(1), ValueError, "at least one dimension"),
    "wrong-k-2d": (np.zeros((6, 2)), ValueError, "W is 4x5"),
    "wrong-k-1d": (np.zeros(4), ValueError, "W is 4x5"),
    "wrong-k-stacked": (np.zeros((2, 4, 3)), ValueError, "W is 4x5"),
    "k-as-last-dim": (np.zeros((3, 5)), ValueError, "W is 4x5"),
    "complex": (np.zeros((5, 2), np.complex64), TypeError, "X must be a real numeric array"),
    "object": (np.array([[object()]] * 5), TypeError, "X must be a real numeric array"),
    "string": (np.array([["a", "b"]] * 5), TypeError, "X must be a real numeric array"),
    "str": ("hello", TypeError, "X must be a real numeric array"),
    "none": (None, TypeError, "X must be a real numeric array"),
    "datetime": (np.zeros((5, 2), "datetime64[s]"), TypeError, "X must be a real numeric array"),
    "ragged": ([[1.0, 2.0], [3.0]], ValueError, "inhomogeneous"),
}


@pytest.mark.parametrize("name", list(BAD_X))
def test_matmul_bad_x(backend, name):
    X, exc, msg = BAD_X[name]
    Wp = sk.pack(np.ones((4, 5), np.float32))
    with pytest.raises(exc, match=msg):
        sk.matmul(Wp, X)
    with pytest.raises(exc, match=msg):
        Wp @ X


@pytest.mark.parametrize("W", [np.ones((2, 2)), [[1.0]], None, "W", 1.0],
                         ids=["ndarray", "list", "None", "str", "float"])
def test_matmul_needs_packed_w(W):
    with pytest.raises(TypeError, match="W must be a packed matrix"):
        sk.matmul(W, np.ones((2, 2)))
    with pytest.raises(TypeError, match="weight must be a packed matrix"):
        sk.linear(np.ones((2, 2)), W)


def test_dense_at_packed_raises(rng):
    """``X @ Wp`` (packed on the right) is not supported; it must fail, not crash or
    return an object array."""
    Wp = sk.pack(np.ones((3, 3), np.float32))
    with pytest.raises((TypeError, ValueError)):
        np.ones((3, 3), np.float32) @ Wp
    with pytest.raises(TypeError):
        Wp @ Wp


BAD_LINEAR = {
    "scalar-input": (lambda: (2.0, None), ValueError, "at least one dimension"),
    "wrong-features": (lambda: (np.zeros((3, 4)), None), ValueError, "input has 4 features"),
    "features-first": (lambda: (np.zeros((5, 3)), None), ValueError, "input has 3 features"),
    "bias-too-long": (lambda: (np.zeros((3, 5)), np.zeros(5)), ValueError, "bias must have shape"),
    "bias-2d": (lambda: (np.zeros((3, 5)), np.zeros((1, 4))), ValueError, "bias must have shape"),
    "bias-scalar": (lambda: (np.zeros((3, 5)), 1.0), ValueError, "bias must have shape"),
    "bias-complex": (lambda: (np.zeros((3, 5)), np.zeros(4, complex)), TypeError, "bias"),
    "bias-str": (lambda: (np.zeros((3, 5)), "bias"), TypeError, "bias"),
    "input-complex": (lambda: (np.zeros((3, 5), complex), None), TypeError, "input"),
    "input-object": (lambda: (np.array([None] * 5), None), TypeError, "input"),
}


@pytest.mark.parametrize("name", list(BAD_LINEAR))
def test_linear_bad_input(backend, name):
    make, exc, msg = BAD_LINEAR[name]
    x, b = make()
    Wp = sk.pack(np.ones((4, 5), np.float32))
    with pytest.raises(exc, match=msg):
        sk.linear(x, Wp, b)


@pytest.mark.parametrize("n,exc,msg", [(0, ValueError, "n must be >= 1"),
                                       (-1, ValueError, "n must be >= 1"),
                                       ("2", TypeError, "n must be an integer"),
                                       (2.0, TypeError, "n must be an integer"),
                                       (True, TypeError, "n must be an integer"),
                                       (None, TypeError, "n must be an integer")],
                         ids=["zero", "negative", "str", "float", "bool", "None"])
def test_set_num_threads_bad(backend, n, exc, msg):
    before = sk.get_num_threads()
    with pytest.raises(exc, match=msg):
        sk.set_num_threads(n)
    assert sk.get_num_threads() == before


def test_set_num_threads_roundtrip(backend):
    sk.set_num_threads(1)
    assert sk.get_num_threads() == 1
    assert sk.info()["threads"] == 1
    sk.set_num_threads(np.int64(2))
    assert sk.get_num_threads() in (1, 2)  # capped where the machine/build has fewer


def test_set_backend_bad(restore_state):
    with pytest.raises(ValueError, match="unknown backend 'gpu'"):
        sk.set_backend("gpu")
    with pytest.raises(ValueError, match="unknown backend"):
        sk.set_backend("C")


@pytest.mark.parametrize("isa", ["bogus", "AVX2", "", "neon", "wasmsimd"])
def test_set_isa_bad(c_isa, isa):
    if isa in sk._backends.get("c").isas():
        pytest.skip(f"{isa} is supported here")
    with pytest.raises(ValueError, match=f"ISA {isa!r} is not available"):
        sk.set_isa(isa)
    assert sk.info()["isa"] == c_isa


def test_set_isa_on_numba(restore_state):
    sk.set_backend("numba")
    with pytest.raises(ValueError, match="numba backend has no ISA"):
        sk.set_isa("scalar")


def test_info_keys(backend):
    info = sk.info()
    assert info["version"] == sk.__version__
    assert info["backend"] == backend.split("-")[0]
    assert set(info["backends_available"]) <= {"c", "numba"}
    assert isinstance(info["threads"], int) and info["threads"] >= 1
    if backend == "numba":
        assert info["isa"] == "numba" and info["isas_available"] == []
    else:
        assert info["isa"] == backend[2:]
        assert info["isas_available"][0] == "scalar"
        assert "library" in info


@pytest.mark.parametrize("scalar", [3.0, np.float32(3), np.array(3.0), 3],
                         ids=["float", "np-float32", "0d-array", "int"])
def test_scalar_rejected_even_when_k_is_1(backend, scalar):
    """A scalar is not a length-1 vector (numpy.matmul rejects it too)."""
    Wp = sk.pack(np.ones((4, 1), np.float32))
    with pytest.raises(ValueError, match="at least one dimension"):
        sk.matmul(Wp, scalar)
    with pytest.raises(ValueError, match="at least one dimension"):
        sk.linear(scalar, Wp)


@pytest.mark.parametrize("n", [2**31, 10**20], ids=["2**31", "1e20"])
def test_set_num_threads_huge(c_isa, n):
    """Too many threads: a ValueError naming n, or capped like other large values."""
    try:
        sk.set_num_threads(n)
    except ValueError as e:
        assert "n" in str(e)
    else:
        assert 1 <= sk.get_num_threads() < n


def test_set_num_threads_large_is_capped_or_kept(backend):
    sk.set_num_threads(4096)
    assert 1 <= sk.get_num_threads() <= 4096


def test_misaligned_float32_is_copied_before_c(rng):
    """np.frombuffer(..., offset=1) gives float32 at odd addresses; dereferencing those in
    C is undefined behaviour, so the op layer hands C an aligned copy."""
    from sparsekern._errors import as_f32

    u = _unaligned(make_x(rng, 4, 5))
    a = as_f32(u, "X")
    assert a.flags.aligned and a.flags.c_contiguous
    np.testing.assert_array_equal(a, u)
    ok = make_x(rng, 4, 5)
    assert as_f32(ok, "X") is ok  # the fast path stays copy-free
