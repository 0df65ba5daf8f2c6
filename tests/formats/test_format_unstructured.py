"""The unstructured (compressed-row) format: pack -> to_dense round trips, canonical
form, magnitude pruning, the validated constructor, scipy interop, save/load/pickle,
and corrupted or hand-edited .npz files."""
from __future__ import annotations

import copy
import fractions
import io
import pickle
import zipfile

import numpy as np
import pytest

import sparsekern as sk
from _cases import make_weights, make_x
from sparsekern import UnstructuredMatrix

SHAPES = [(1, 1), (1, 37), (9, 1), (13, 37), (40, 50), (0, 5), (5, 0), (0, 0), (3, 65536),
          (2, 65537)]


def _ids(shapes):
    return ["x".join(map(str, s)) for s in shapes]


def assert_canonical(Wp):
    """The invariants the C kernels trust."""
    m, k = Wp.shape
    assert isinstance(m, int) and isinstance(k, int)
    rp, ci, v = Wp.row_ptr, Wp.col_idx, Wp.values
    assert rp.dtype == np.int64 and rp.shape == (m + 1,) and rp[0] == 0 and rp[-1] == Wp.nnz
    assert np.all(np.diff(rp) >= 0)
    assert ci.dtype == (np.uint16 if k <= 65536 else np.int32) and ci.shape == (Wp.nnz,)
    assert v.dtype == np.float32 and v.shape == (Wp.nnz,)
    for a in (rp, ci, v):
        assert a.flags.c_contiguous and not a.flags.writeable
    if Wp.nnz:
        assert 0 <= int(ci.min()) and int(ci.max()) < k
    for r in range(m):
        assert np.all(np.diff(ci[rp[r]:rp[r + 1]].astype(np.int64)) > 0), f"row {r} not sorted"


# -- pack / to_dense ---------------------------------------------------------------------

ROUNDTRIP = [(s, p) for s in SHAPES for p in ["random", "rowlen", "empty_rows", "zero", "dense"]
             if not (p in ("dense", "rowlen") and s[0] * s[1] > 10000)]


@pytest.mark.parametrize("shape,pattern", ROUNDTRIP,
                         ids=[f"{'x'.join(map(str, s))}-{p}" for s, p in ROUNDTRIP])
def test_pack_roundtrip(rng, shape, pattern):
    m, k = shape
    W = make_weights(rng, m, k, 0.3 if k < 1000 else 0.0005, pattern)
    Wp = sk.pack(W, "unstructured")
    assert_canonical(Wp)
    assert Wp.shape == (m, k) and Wp.format == "unstructured" and Wp.ndim == 2
    assert Wp.dtype == np.float32 and Wp.size == m * k
    assert Wp.nnz == np.count_nonzero(W)
    assert Wp.density == (Wp.nnz / (m * k) if m * k else 0.0)
    idx_bytes = 2 if k <= 65536 else 4
    assert Wp.nbytes == 8 * (m + 1) + Wp.nnz * (4 + idx_bytes)
    D = Wp.to_dense()
    assert D.dtype == np.float32 and D.shape == (m, k)
    np.testing.assert_array_equal(D, W)
    assert f"{m}x{k}" in repr(Wp) and "unstructured" in repr(Wp)


@pytest.mark.parametrize("dtype", [np.float64, np.int32, np.int8, np.uint16, bool, np.float16])
def test_pack_converts_dtype(rng, dtype):
    W = (make_weights(rng, 6, 9, 0.5) * 5).astype(dtype)
    Wp = sk.pack(W)
    np.testing.assert_array_equal(Wp.to_dense(), W.astype(np.float32))
    assert Wp.values.dtype == np.float32


@pytest.mark.parametrize("sparsity", [None, 0.5], ids=["keep", "prune"])
@pytest.mark.parametrize("layout", ["readonly", "fortran", "sliced", "float64", "list"])
def test_pack_never_modifies_w(rng, sparsity, layout):
    base = make_weights(rng, 8, 12, 0.7)
    W = {"readonly": base.copy(), "fortran": np.asfortranarray(base),
         "sliced": np.repeat(base, 2, axis=1)[:, ::2], "float64": base.astype(np.float64),
         "list": base.tolist()}[layout]
    if layout == "readonly":
        W.setflags(write=False)
    before = copy.deepcopy(W)
    Wp = sk.pack(W, sparsity=sparsity)
    if isinstance(W, np.ndarray):
        np.testing.assert_array_equal(W, before)
        assert W.flags.writeable == (layout != "readonly")
        assert not np.shares_memory(Wp.values, W)
    else:
        assert W == before
    if sparsity is None:
        np.testing.assert_array_equal(Wp.to_dense(), base)


def test_packed_arrays_are_readonly(rng):
    Wp = sk.pack(make_weights(rng, 4, 4, pattern="dense"))
    for a in (Wp.row_ptr, Wp.col_idx, Wp.values):
        with pytest.raises(ValueError, match="read-only"):
            a[0] = 1
    D = Wp.to_dense()
    D[0, 0] = 100.0  # to_dense is a fresh, writeable array
    assert Wp.to_dense()[0, 0] != 100.0


@pytest.mark.parametrize("make", ["pack", "ctor", "load", "pickle"])
def test_packed_arrays_cannot_be_tampered_with(rng, make):
    """The C kernels trust the arrays and cache raw pointers to them: they must be neither
    writeable again nor replaceable (a replaced array would leave a dangling pointer)."""
    W = make_weights(rng, 5, 6, pattern="dense")
    Wp = sk.pack(W)
    if make == "ctor":
        Wp = UnstructuredMatrix(Wp.shape, Wp.row_ptr, Wp.col_idx, Wp.values)
    elif make == "load":
        f = io.BytesIO()
        sk.save(f, Wp)
        f.seek(0)
        Wp = sk.load(f)
    elif make == "pickle":
        Wp = pickle.loads(pickle.dumps(Wp))
    X = make_x(rng, 6, 3)
    Y = sk.matmul(Wp, X)  # caches the C handle
    for name in ("row_ptr", "col_idx", "values"):
        a = getattr(Wp, name)
        with pytest.raises(ValueError):
            a.setflags(write=True)
        with pytest.raises(AttributeError):
            setattr(Wp, name, np.zeros(1, a.dtype))
    for name in ("shape", "nnz", "density", "nbytes"):
        with pytest.raises(AttributeError):
            setattr(Wp, name, 1)
    np.testing.assert_array_equal(sk.matmul(Wp, X), Y)


def test_equality_and_hash(rng):
    W = make_weights(rng, 5, 7, 0.5)
    a, b = sk.pack(W), sk.pack(W.copy())
    assert a == b and not (a != b)
    W2 = W.copy()
    W2[W2 != 0] *= 2
    assert a != sk.pack(W2)
    assert a != sk.pack(W[:4])
    assert a != 1 and a != "x"
    with pytest.raises(TypeError):
        hash(a)


# -- pruning --------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(1, 1), (3, 1), (7, 13), (100, 100), (1, 1000)],
                         ids=_ids([(1, 1), (3, 1), (7, 13), (100, 100), (1, 1000)]))
@pytest.mark.parametrize("s", [0.0, 0.1, 0.25, 1 / 3, 0.5, 0.9, 0.99, 1.0],
                         ids=lambda s: f"s{s:.3g}")
def test_prune_exact_count_and_largest_kept(rng, shape, s):
    W = make_weights(rng, *shape, pattern="dense")
    Wp = sk.pack(W, "unstructured", sparsity=s)
    assert_canonical(Wp)
    n_pruned = W.size - Wp.nnz
    assert n_pruned == round(s * W.size)
    D = Wp.to_dense()
    kept = D != 0
    np.testing.assert_array_equal(D[kept], W[kept])  # values kept exactly
    if 0 < Wp.nnz < W.size:
        assert np.abs(W[kept]).min() > np.abs(W[~kept]).max()


def test_prune_0_keeps_every_nonzero_and_1_keeps_none(rng):
    W = make_weights(rng, 30, 40, 0.4)
    np.testing.assert_array_equal(sk.pack(W, sparsity=0).to_dense(), W)
    np.testing.assert_array_equal(sk.pack(W, sparsity=0.0).to_dense(), W)
    P = sk.pack(W, sparsity=1)
    assert P.nnz == 0 and P.shape == (30, 40) and P.density == 0.0
    assert_canonical(P)


@pytest.mark.parametrize("s", [0.1, 0.5, 0.7, 0.95])
def test_prune_w_with_zeros(rng, s):
    """Zeros are the smallest |w| and never come back: at least round(s*size) zeros."""
    W = make_weights(rng, 20, 30, 0.6)
    Wp = sk.pack(W, sparsity=s)
    assert Wp.nnz == min(np.count_nonzero(W), W.size - round(s * W.size))
    D = Wp.to_dense()
    kept = D != 0
    assert not np.any(kept & (W == 0))
    if Wp.nnz and Wp.nnz < np.count_nonzero(W):
        pruned_nz = (~kept) & (W != 0)
        assert np.abs(W[kept]).min() >= np.abs(W[pruned_nz]).max()


def test_prune_ties_exact_count():
    """All |w| equal: which ones go is arbitrary, how many is not."""
    W = np.where(np.arange(60).reshape(6, 10) % 2, 1.0, -1.0).astype(np.float32)
    for s in (0.1, 0.5, 0.55, 0.9):
        assert W.size - sk.pack(W, sparsity=s).nnz == round(s * W.size)


@pytest.mark.parametrize("s", [np.float32(0.5), np.float64(0.5), fractions.Fraction(1, 2), 0, 1,
                               np.int64(1)],
                         ids=["np-float32", "np-float64", "Fraction", "int0", "int1", "np-int1"])
def test_prune_accepts_real_numbers(rng, s):
    W = make_weights(rng, 4, 5, pattern="dense")
    assert W.size - sk.pack(W, sparsity=s).nnz == round(float(s) * W.size)


@pytest.mark.parametrize("s,exc", [(float("nan"), ValueError), (float("inf"), ValueError),
                                   (-float("inf"), ValueError), (-0.1, ValueError),
                                   (1.5, ValueError), (1.0000001, ValueError),
                                   ("0.5", TypeError), (True, TypeError), (False, TypeError),
                                   (np.bool_(True), TypeError), (1j, TypeError),
                                   ([0.5], TypeError), (np.array(0.5), TypeError)],
                         ids=["nan", "inf", "-inf", "-0.1", "1.5", "1+eps", "str", "True", "False",
                              "np-bool", "complex", "list", "0d-array"])
def test_prune_bad_sparsity(rng, s, exc):
    with pytest.raises(exc, match="sparsity"):
        sk.pack(make_weights(rng, 4, 5), "unstructured", sparsity=s)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_prune_nonfinite_w(rng, bad):
    W = make_weights(rng, 4, 5, pattern="dense")
    W[2, 3] = bad
    with pytest.raises(ValueError, match="NaN or inf"):
        sk.pack(W, sparsity=0.5)
    # without pruning, non-finite weights are stored as they are
    Wp = sk.pack(W)
    np.testing.assert_array_equal(Wp.to_dense(), W)


# -- pack errors ----------------------------------------------------------------------------

@pytest.mark.parametrize("W,exc,msg", [
    (np.ones(5), ValueError, r"W must be 2-D \(M, K\).*got shape \(5,\)"),
    (np.ones((2, 3, 4)), ValueError, r"W must be 2-D"),
    (np.float32(1), ValueError, r"W must be 2-D"),
    (np.ones((2, 2), complex), TypeError, r"W must be a real numeric array \(got dtype complex"),
    (np.array([[object()]]), TypeError, r"W must be a real numeric array \(got dtype object"),
    (np.array([["a"]]), TypeError, r"W must be a real numeric array"),
    (None, TypeError, r"W must be a real numeric array"),
    ("W", TypeError, r"W must be a real numeric array"),
], ids=["1d", "3d", "0d", "complex", "object", "string", "None", "str"])
def test_pack_bad_w(W, exc, msg):
    with pytest.raises(exc, match=msg):
        sk.pack(W)
    with pytest.raises(exc, match=msg):
        sk.pack(W, sparsity=0.5)


@pytest.mark.parametrize("fmt,exc,msg", [("csr", ValueError, "unknown format 'csr'"),
                                         ("Unstructured", ValueError, "unknown format"),
                                         ("", ValueError, "unknown format"),
                                         (None, TypeError, "format must be a string"),
                                         (1, TypeError, "format must be a string")])
def test_pack_bad_format(fmt, exc, msg):
    with pytest.raises(exc, match=msg):
        sk.pack(np.ones((2, 2)), fmt)


def test_pack_sparsity_is_keyword_only():
    with pytest.raises(TypeError):
        sk.pack(np.ones((2, 2)), "unstructured", 0.5)


# -- the validated constructor -----------------------------------------------------------

def _good_arrays(rng, m=5, k=40):
    W = make_weights(rng, m, k, 0.3)
    W[1] = 0                    # an empty row
    W[2, [3, 7, 30]] = 1.0      # a row with >= 3 entries for the order mutations
    W[4, k - 1] = 1.0           # the last column is used
    Wp = sk.pack(W)
    return Wp, {"row_ptr": Wp.row_ptr.copy(), "col_idx": Wp.col_idx.copy(),
                "values": Wp.values.copy()}


def _row2(d):
    return int(d["row_ptr"][2])


def _set(d, key, fn):
    d = dict(d)
    d[key] = fn(d[key].copy())
    return d


def _swap_cols(c, p):
    c[p], c[p + 1] = c[p + 1], c[p]
    return c


def _dup_cols(c, p):
    c[p + 1] = c[p]
    return c


# name -> (mutation of the array dict (and shape), regex of the message)
ARRAY_CORRUPTIONS = {
    "col-out-of-range": (lambda d, s: (_set(d, "col_idx", lambda c: _put(c, -1, 40)), s),
                         r"col_idx must lie in \[0, 40\) \(found 40\)"),
    "col-uint16-max": (lambda d, s: (_set(d, "col_idx", lambda c: _put(c, -1, 65535)), s),
                       r"col_idx must lie in \[0, 40\)"),
    "col-negative": (lambda d, s: (_set(d, "col_idx", lambda c: _put(c.astype(np.int32), 0, -1)),
                                   s), r"col_idx must lie in \[0, 40\) \(found -1\)"),
    "col-int64-wraps": (lambda d, s: (_set(d, "col_idx",
                                           lambda c: _put(c.astype(np.uint64), 0, 2**63 + 1)), s),
                        r"col_idx must lie in"),
    "unsorted-cols": (lambda d, s: (_set(d, "col_idx", lambda c: _swap_cols(c, _row2(d))), s),
                      r"col_idx must be strictly increasing within each row \(row 2"),
    "duplicate-cols": (lambda d, s: (_set(d, "col_idx", lambda c: _dup_cols(c, _row2(d))), s),
                       r"strictly increasing within each row \(row 2"),
    "row_ptr-not-monotone": (lambda d, s: (_set(d, "row_ptr", lambda r: _put(r, 2, r[3] + 1)), s),
                             r"row_ptr must be non-decreasing"),
    "row_ptr-negative": (lambda d, s: (_set(d, "row_ptr", lambda r: _put(r, 1, -3)), s),
                         r"row_ptr must be non-decreasing"),
    "row_ptr0-nonzero": (lambda d, s: (_set(d, "row_ptr", lambda r: _put(r, 0, 1)), s),
                         r"row_ptr\[0\] must be 0 \(got 1\)"),
    "row_ptr-last-too-big": (lambda d, s: (_set(d, "row_ptr", lambda r: _put(r, -1, r[-1] + 1)), s),
                             r"row_ptr\[-1\] must equal nnz"),
    "row_ptr-last-too-small": (lambda d, s: (_set(d, "row_ptr", lambda r: _put(r, -1, r[-1] - 1)),
                                             s), r"row_ptr\[-1\] must equal nnz"),
    "row_ptr-too-short": (lambda d, s: (_set(d, "row_ptr", lambda r: r[:-1]), s),
                          r"row_ptr must have M \+ 1 = 6 entries \(got 5\)"),
    "row_ptr-too-long": (lambda d, s: (_set(d, "row_ptr", lambda r: np.append(r, r[-1])), s),
                         r"row_ptr must have M \+ 1 = 6 entries \(got 7\)"),
    "row_ptr-empty": (lambda d, s: (_set(d, "row_ptr", lambda r: r[:0]), s),
                      r"row_ptr must have M \+ 1"),
    "row_ptr-huge-uint64": (lambda d, s: (_set(d, "row_ptr",
                                               lambda r: _put(r.astype(np.uint64), -1, 2**63)), s),
                            r"row_ptr entries are out of range"),
    "values-short": (lambda d, s: (_set(d, "values", lambda v: v[:-1]), s),
                     r"col_idx and values differ in length"),
    "col_idx-short": (lambda d, s: (_set(d, "col_idx", lambda c: c[:-1]), s),
                      r"col_idx and values differ in length"),
    "col_idx-float": (lambda d, s: (_set(d, "col_idx", lambda c: c.astype(np.float32)), s),
                      r"col_idx must hold integers \(got dtype float32\)"),
    "col_idx-bool": (lambda d, s: (_set(d, "col_idx", lambda c: c > 0), s),
                     r"col_idx must hold integers"),
    "row_ptr-float": (lambda d, s: (_set(d, "row_ptr", lambda r: r.astype(np.float64)), s),
                      r"row_ptr must hold integers"),
    "values-complex": (lambda d, s: (_set(d, "values", lambda v: v.astype(np.complex64)), s),
                       r"values must be real numbers"),
    "values-string": (lambda d, s: (_set(d, "values", lambda v: v.astype(str)), s),
                      r"values must be real numbers"),
    "values-2d": (lambda d, s: (_set(d, "values", lambda v: v[None]), s), r"values must be 1-D"),
    "col_idx-2d": (lambda d, s: (_set(d, "col_idx", lambda c: c[None]), s),
                   r"col_idx must be 1-D"),
    "row_ptr-2d": (lambda d, s: (_set(d, "row_ptr", lambda r: r[None]), s),
                   r"row_ptr must be 1-D"),
    "shape-k-too-small": (lambda d, s: (d, (5, 39)), r"col_idx must lie in \[0, 39\) \(found 39\)"),
    "shape-k-much-too-small": (lambda d, s: (d, (5, 10)),
                               r"nnz = \d+ exceeds M\*K = 50|col_idx must lie in \[0, 10\)"),
    "shape-m-too-small": (lambda d, s: (d, (4, 40)), r"row_ptr must have M \+ 1 = 5"),
    "shape-negative": (lambda d, s: (d, (-5, 40)), r"shape must be non-negative"),
    "shape-k-huge": (lambda d, s: (d, (5, 2**40)), r"too large"),
    "shape-m-huge": (lambda d, s: (d, (2**63 - 1, 40)), r"too large"),
}


def _put(a, i, v):
    a[i] = v
    return a


@pytest.mark.parametrize("name", list(ARRAY_CORRUPTIONS))
def test_constructor_rejects(rng, name):
    _, d = _good_arrays(rng)
    mutate, msg = ARRAY_CORRUPTIONS[name]
    d, shape = mutate(d, (5, 40))
    with pytest.raises((ValueError, TypeError), match=msg):
        UnstructuredMatrix(shape, d["row_ptr"], d["col_idx"], d["values"])


@pytest.mark.parametrize("shape,exc", [((5,), ValueError), ((5, 40, 1), ValueError),
                                       (5, TypeError), (None, TypeError), ((5.0, 40), ValueError),
                                       ((True, 40), ValueError), ("ab", ValueError),
                                       ((5, "40"), ValueError)],
                         ids=["1-entry", "3-entries", "int", "None", "float", "bool", "str",
                              "str-entry"])
def test_constructor_bad_shape(rng, shape, exc):
    _, d = _good_arrays(rng)
    with pytest.raises(exc, match="shape"):
        UnstructuredMatrix(shape, **d)


def test_constructor_accepts_and_copies(rng):
    Wp, d = _good_arrays(rng)
    built = UnstructuredMatrix([np.int64(5), 40], d["row_ptr"].astype(np.int32),
                               d["col_idx"].astype(np.int64), d["values"].astype(np.float64))
    assert built == Wp
    assert_canonical(built)
    # the caller's arrays are neither aliased nor frozen
    for a in d.values():
        assert a.flags.writeable
    d["values"][:] = 0
    assert built == Wp


def test_constructor_empty_and_lists():
    W = UnstructuredMatrix((3, 4), [0, 0, 0, 0], [], [])
    assert W.nnz == 0 and W.shape == (3, 4)
    assert_canonical(W)
    np.testing.assert_array_equal(W.to_dense(), np.zeros((3, 4)))
    W = UnstructuredMatrix((0, 0), [0], [], [])
    assert W.shape == (0, 0) and W.density == 0.0
    W = UnstructuredMatrix((2, 3), [0, 2, 3], [0, 2, 1], [1, 2, 3])
    np.testing.assert_array_equal(W.to_dense(), [[1, 0, 2], [0, 3, 0]])


# -- scipy -------------------------------------------------------------------------------

def test_scipy_roundtrip(rng):
    sp = pytest.importorskip("scipy.sparse")
    for m, k in [(13, 37), (3, 70000), (0, 4), (4, 0)]:
        W = make_weights(rng, m, k, 0.3 if k < 1000 else 0.001)
        Wp = sk.pack(W)
        S = Wp.to_scipy()
        assert S.shape == (m, k)
        np.testing.assert_array_equal(S.toarray(), W)
        assert UnstructuredMatrix.from_scipy(S) == Wp
        assert UnstructuredMatrix.from_scipy(sp.csc_matrix(W)) == Wp
        assert UnstructuredMatrix.from_scipy(sp.coo_array(W)) == Wp
    S = sk.pack(np.eye(3, dtype=np.float32)).to_scipy()
    S.data *= 2  # an ordinary, writeable scipy matrix
    S.eliminate_zeros()


def test_from_scipy_canonicalizes():
    sp = pytest.importorskip("scipy.sparse")
    # duplicates summed, unsorted indices sorted, explicit zeros kept, float64 -> float32
    S = sp.coo_array((np.array([1.0, 2.0, 0.0, 5.0]), (np.array([0, 0, 1, 0]),
                                                      np.array([3, 3, 2, 1]))), shape=(2, 4))
    Wp = UnstructuredMatrix.from_scipy(S)
    assert_canonical(Wp)
    assert Wp.nnz == 3
    np.testing.assert_array_equal(Wp.to_dense(), [[0, 5, 0, 3], [0, 0, 0, 0]])
    np.testing.assert_array_equal(Wp.col_idx, [1, 3, 2])
    with pytest.raises(TypeError, match="scipy.sparse"):
        UnstructuredMatrix.from_scipy(np.eye(2))


# -- save / load / pickle ----------------------------------------------------------------

def _matrices(rng):
    W = make_weights(rng, 13, 37, 0.3, "empty_rows")
    W[3, 4] = np.nan
    W[5, 6] = -np.inf
    wide = np.zeros((3, 70000), np.float32)
    wide[1, [0, 65536, 69999]] = [1, 2, 3]
    return {"regular": sk.pack(W), "wide": sk.pack(wide),
            "empty-0x0": sk.pack(np.zeros((0, 0))), "zero-nnz": sk.pack(np.zeros((4, 5))),
            "m0": sk.pack(np.zeros((0, 7))), "k0": sk.pack(np.zeros((7, 0)))}


MATRIX_NAMES = list(_matrices(np.random.default_rng(0)))


def _same(a, b):
    assert type(a) is type(b) and a == b
    for key in ("row_ptr", "col_idx", "values"):
        x, y = getattr(a, key), getattr(b, key)
        assert x.dtype == y.dtype and not y.flags.writeable
    assert_canonical(b)


@pytest.mark.parametrize("name", MATRIX_NAMES)
@pytest.mark.parametrize("target", ["str", "pathlib", "bytesio", "fileobj"])
def test_save_load_roundtrip(rng, tmp_path, name, target):
    Wp = _matrices(rng)[name]
    path = tmp_path / "w.npz"
    if target == "bytesio":
        f = io.BytesIO()
        sk.save(f, Wp)
        f.seek(0)
        back = sk.load(f)
    elif target == "fileobj":
        with open(path, "wb") as f:
            sk.save(f, Wp)
        with open(path, "rb") as f:
            back = sk.load(f)
    else:
        p = str(path) if target == "str" else path
        sk.save(p, Wp)
        back = sk.load(p)
    _same(Wp, back)
    X = make_x(rng, Wp.shape[1], 3)
    np.testing.assert_array_equal(sk.matmul(back, X), sk.matmul(Wp, X))


@pytest.mark.parametrize("name", MATRIX_NAMES)
@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1),
                         ids=lambda p: f"protocol{p}")
def test_pickle_roundtrip(rng, name, protocol):
    Wp = _matrices(rng)[name]
    _same(Wp, pickle.loads(pickle.dumps(Wp, protocol=protocol)))


def test_copy_and_deepcopy(rng):
    Wp = _matrices(rng)["regular"]
    X = make_x(rng, 37, 4)
    Y = sk.matmul(Wp, X)  # builds the cached C handle, which must not be shared by copies
    for c in (copy.copy(Wp), copy.deepcopy(Wp)):
        _same(Wp, c)
        np.testing.assert_array_equal(sk.matmul(c, X), Y)


def test_pickle_payload_is_validated(rng):
    """A tampered pickle goes through the validating constructor."""
    Wp = _matrices(rng)["regular"]
    fn, (fmt, shape, arrays) = Wp.__reduce__()
    bad = dict(arrays, col_idx=np.full_like(arrays["col_idx"], 36).astype(np.int32) + 1000)
    with pytest.raises(ValueError, match="col_idx must lie"):
        fn(fmt, shape, bad)
    with pytest.raises(ValueError, match="unknown packed format 'bsr'"):
        fn("bsr", shape, arrays)


def test_save_rejects_non_packed(tmp_path):
    with pytest.raises(TypeError, match="packed matrix"):
        sk.save(tmp_path / "w.npz", np.eye(2))


def test_load_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        sk.load(tmp_path / "nope.npz")
    with pytest.raises(FileNotFoundError):
        sk.load(str(tmp_path / "nope.npz"))


# -- corrupted or hand-edited files ------------------------------------------------------

def _good_file_dict(rng, tmp_path):
    Wp, _ = _good_arrays(rng)
    path = tmp_path / "good.npz"
    sk.save(path, Wp)
    with np.load(path) as z:
        return Wp, {k: z[k] for k in z.files}


def _edit_arrays(name):
    mutate, msg = ARRAY_CORRUPTIONS[name]

    def edit(d):
        arrays = {k: d[k] for k in ("row_ptr", "col_idx", "values")}
        arrays, shape = mutate(arrays, tuple(d["shape"]))
        out = dict(d, **arrays)
        out["shape"] = np.array(shape, dtype=np.uint64 if shape[0] > 2**62 else np.int64)
        return out
    return edit, msg


def _drop(key):
    return lambda d: {k: v for k, v in d.items() if k != key}


def _with(**kw):
    return lambda d: dict(d, **kw)


FILE_EDITS = {f"arrays-{name}": _edit_arrays(name) for name in ARRAY_CORRUPTIONS}
FILE_EDITS.update({
    "missing-values": (_drop("values"), r"corrupt sparsekern file"),
    "missing-col_idx": (_drop("col_idx"), r"corrupt sparsekern file"),
    "missing-row_ptr": (_drop("row_ptr"), r"corrupt sparsekern file"),
    "missing-shape": (_drop("shape"), r"missing 'shape'"),
    "missing-version": (_drop("version"), r"missing 'version'"),
    "missing-format": (_drop("sparsekern_format"), r"missing 'sparsekern_format'"),
    "extra-array": (_with(bias=np.zeros(3)), r"corrupt sparsekern file"),
    "unknown-format": (_with(sparsekern_format=np.array("bsr")), r"unknown packed format 'bsr'"),
    "format-bytes": (_with(sparsekern_format=np.array(b"unstructured")), r"bad format field"),
    "format-array": (_with(sparsekern_format=np.array(["unstructured"])), r"bad format field"),
    "version-2": (_with(version=np.array(2)), r"unsupported sparsekern file version"),
    "version-0": (_with(version=np.array(0)), r"unsupported sparsekern file version"),
    "version-float": (_with(version=np.array(1.0)), r"unsupported sparsekern file version"),
    "version-array": (_with(version=np.array([1])), r"unsupported sparsekern file version"),
    "shape-3-entries": (_with(shape=np.array([5, 40, 1])), r"shape must be a pair"),
    "shape-1-entry": (_with(shape=np.array([5])), r"shape must be a pair"),
    "shape-scalar": (_with(shape=np.array(5)), r"bad shape"),
    "shape-float": (_with(shape=np.array([5.0, 40.0])), r"bad shape"),
    "shape-string": (_with(shape=np.array(["5", "40"])), r"bad shape"),
    "values-object": (_with(values=np.array([object()] * 3)), r"not a readable"),
})


@pytest.mark.parametrize("name", list(FILE_EDITS))
def test_load_rejects_edited_file(rng, tmp_path, name):
    _, d = _good_file_dict(rng, tmp_path)
    edit, msg = FILE_EDITS[name]
    path = tmp_path / "bad.npz"
    np.savez(path, **edit(d))
    with pytest.raises(ValueError, match=msg):
        sk.load(path)
    with open(path, "rb") as f:
        with pytest.raises(ValueError, match=msg):
            sk.load(io.BytesIO(f.read()))


def test_load_accepts_wider_index_dtypes(rng, tmp_path):
    """Hand-written files with int32/int64 indices are fine: they are canonicalized."""
    Wp, d = _good_file_dict(rng, tmp_path)
    d = dict(d, col_idx=d["col_idx"].astype(np.int64), row_ptr=d["row_ptr"].astype(np.int32),
             values=d["values"].astype(np.float64), shape=d["shape"].astype(np.uint32))
    np.savez(tmp_path / "wide.npz", **d)
    back = sk.load(tmp_path / "wide.npz")
    _same(Wp, back)


def _garbage_files(rng, tmp_path):
    good = tmp_path / "good.npz"
    sk.save(good, sk.pack(make_weights(rng, 30, 40)))
    raw = good.read_bytes()
    npy = io.BytesIO()
    np.save(npy, np.arange(5))
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w") as z:
        z.writestr("readme.txt", "hello")
    return {
        "truncated-half": raw[: len(raw) // 2],
        "truncated-tail": raw[:-10],
        "truncated-header": raw[:20],
        "empty": b"",
        "garbage": rng.integers(0, 256, 2000, dtype=np.uint8).tobytes(),
        "text": b"row_ptr,col_idx,values\n0,1,2\n",
        "npy-not-npz": npy.getvalue(),
        "zip-without-arrays": zbuf.getvalue(),
        "flipped-bytes": bytes(b ^ 0xFF if 200 <= i < 260 else b for i, b in enumerate(raw)),
    }


GARBAGE = ["truncated-half", "truncated-tail", "truncated-header", "empty", "garbage", "text",
           "npy-not-npz", "zip-without-arrays", "flipped-bytes"]


@pytest.mark.parametrize("name", GARBAGE)
def test_load_garbage(rng, tmp_path, name):
    data = _garbage_files(rng, tmp_path)[name]
    path = tmp_path / "bad.npz"
    path.write_bytes(data)
    with pytest.raises(ValueError, match="sparsekern"):
        sk.load(path)
    with pytest.raises(ValueError, match="sparsekern"):
        sk.load(io.BytesIO(data))
