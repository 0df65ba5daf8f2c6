"""What a user or a file can hand the formats: any memory order, hostile files, edits.

Every format stores its arrays C-ordered, aligned and read-only for good, whatever it
was given; load() refuses a file whose names, dtypes or shapes do not fit its format
before it reads (decompresses) any array; wrong input gives ValueError/TypeError.
"""
from __future__ import annotations

import io
import pickle
import textwrap
import zipfile

import numpy as np
import pytest
import scipy.sparse as sp

import sparsekern as sk
from _cases import make_x
from _subproc import run_python
from reference import assert_conv2d, assert_matmul


def _fortran(a: np.ndarray) -> np.ndarray:
    """``a`` in Fortran order starting on a 64-byte boundary: a copy that keeps the memory
    order and lands aligned used to reach the kernels in the wrong order."""
    buf = np.empty(a.nbytes + 64, np.uint8)
    off = -buf.ctypes.data % 64
    out = np.ndarray(a.shape, a.dtype, buffer=buf[off:off + a.nbytes], order="F")
    out[...] = a
    return out


def _npz(**arrays) -> io.BytesIO:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    buf.seek(0)
    return buf


def _all_stored(W) -> dict:
    M = W.matrix if isinstance(W, sk.ConvWeight) else W
    return {k: v for k, v in M._arrays().items() if isinstance(v, np.ndarray) and v.ndim}


def _packed_examples(rng):
    W = make_x(rng, 12, 40)
    W[W < 0.3] = 0
    return {
        "unstructured": sk.pack(W, "unstructured"),
        "2:4": sk.pack(W, "2:4"),
        "1:8": sk.pack(W, "1:8"),
        "act": sk.pack(W, "act"),
        "conv-unstructured": sk.pack(make_x(rng, 4, 3, 3, 3), "unstructured", sparsity=0.5),
        "conv-2:4": sk.pack(make_x(rng, 4, 8, 3, 3), "2:4"),
    }


# -- memory order ------------------------------------------------------------------------

@pytest.mark.parametrize("pattern", ["2:4", "1:4", "4:8", "3:16"])
def test_nm_fortran_arrays_give_the_right_answer(backend, rng, pattern):
    x = make_x(rng, 64, 3)
    for rows in (16, 7, 33):
        ref = sk.pack(make_x(rng, rows, 64), pattern)
        Wp = sk.NMMatrix(ref.shape, pattern, _fortran(ref.values), _fortran(ref.meta))
        assert Wp.values.flags.c_contiguous and Wp.meta.flags.c_contiguous
        assert Wp == ref
        assert_matmul(Wp @ x, Wp.to_dense(), x)
        Wp_loaded = sk.load(_npz(sparsekern_format=np.array(pattern), version=np.array(1),
                              shape=np.array(ref.shape), values=_fortran(ref.values),
                              meta=_fortran(ref.meta)))
        assert Wp_loaded == ref
        assert_matmul(Wp_loaded @ x, ref.to_dense(), x)


def test_act_and_conv_fortran_arrays(backend, rng):
    W = make_x(rng, 24, 40)
    ref = sk.pack(W, "act")
    Wa = sk.ActMatrix(W.shape, _fortran(ref.wt), _fortran(ref.norms[:, None])[:, 0])
    assert Wa == ref and Wa.wt.flags.c_contiguous
    x = make_x(rng, 3, 40)
    np.testing.assert_array_equal(sk.linear(x, Wa), sk.linear(x, ref))
    loaded = sk.load(_npz(sparsekern_format=np.array("act"), version=np.array(1),
                          shape=np.array(W.shape), wt=_fortran(ref.wt), norms=ref.norms))
    assert loaded == ref
    Wc = sk.pack(make_x(rng, 4, 8, 3, 3), "2:4")
    arrays = Wc._arrays()
    loaded = sk.load(_npz(sparsekern_format=np.array("conv2d"), version=np.array(1),
                          shape=np.array(Wc.shape), inner_format=arrays["inner_format"],
                          values=_fortran(arrays["values"]), meta=_fortran(arrays["meta"])))
    assert loaded == Wc
    xc = make_x(rng, 1, 8, 6, 6)
    assert_conv2d(sk.conv2d(xc, loaded), xc, Wc.to_dense())


# -- stored arrays stay read-only --------------------------------------------------------

def test_no_public_path_to_a_writable_array(rng):
    for name, W in _packed_examples(rng).items():
        for key, a in _all_stored(W).items():
            chain = [a]
            while isinstance(chain[-1].base, np.ndarray):
                chain.append(chain[-1].base)
            for arr in chain:
                with pytest.raises(ValueError, match="WRITEABLE"):
                    arr.setflags(write=True)
            owner = chain[-1].base
            assert isinstance(owner, bytes), (name, key)
            assert not np.frombuffer(owner, np.uint8).flags.writeable
            assert a.flags.c_contiguous and a.ctypes.data % 64 == 0


def test_stored_arrays_are_copies(rng):
    """The constructors copy: a caller changing its arrays later changes nothing."""
    Wp = sk.pack(make_x(rng, 8, 40), "unstructured", sparsity=0.5)
    rp, ci, v = (np.array(a) for a in (Wp.row_ptr, Wp.col_idx, Wp.values))
    W = sk.UnstructuredMatrix(Wp.shape, rp, ci, v)
    ci[:] = 65535
    v[:] = np.nan
    assert W == Wp


# -- hostile files -----------------------------------------------------------------------

def _zip_with(members: dict, big: dict | None = None) -> io.BytesIO:
    """An .npz whose ``members`` are arrays and whose ``big`` ones are (shape, dtype) of
    zeros, written in pieces: files that describe far more data than they hold."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for key, a in members.items():
            with zf.open(key + ".npy", "w") as f:
                np.lib.format.write_array(f, np.asarray(a))
        for key, (shape, dtype) in (big or {}).items():
            with zf.open(key + ".npy", "w", force_zip64=True) as f:
                np.lib.format.write_array_header_1_0(
                    f, {"descr": np.dtype(dtype).str, "fortran_order": False, "shape": shape})
                zeros = bytes(1 << 20)
                for _ in range(int(np.prod(shape)) * np.dtype(dtype).itemsize >> 20):
                    f.write(zeros)
    buf.seek(0)
    return buf


HEADER = dict(sparsekern_format=np.array("unstructured"), version=np.array(1),
              shape=np.array([64, 64]))
ROW_PTR = np.zeros(65, np.int64)

BOMBS = {   # each describes >= 256 MiB in a file of about 256 kB
    "extra-member": (dict(HEADER, row_ptr=ROW_PTR, col_idx=np.zeros(0, np.uint16),
                          values=np.zeros(0, np.float32)), {"junk": ((1 << 26,), "f4")},
                     "unexpected|needs exactly"),
    "values-longer": (dict(HEADER, row_ptr=ROW_PTR, col_idx=np.zeros(0, np.uint16)),
                      {"values": ((1 << 26,), "f4")}, "differ in length"),
    "nnz-beyond-shape": (dict(HEADER, row_ptr=ROW_PTR),
                         {"col_idx": ((1 << 26,), "u2"), "values": ((1 << 26,), "f4")},
                         r"exceeds M\*K"),
    "nm-values": (dict(HEADER, sparsekern_format=np.array("2:4"),
                       meta=np.zeros((64, 8), np.uint8)), {"values": ((1 << 26,), "f4")},
                  "values must have shape"),
    "act-wt": (dict(HEADER, sparsekern_format=np.array("act")),
               {"wt": ((8192, 8192), "f4")}, "wt must have shape"),
}


@pytest.mark.parametrize("name", list(BOMBS))
def test_hostile_file_refused_before_reading(name):
    members, big, msg = BOMBS[name]
    f = _zip_with(members, big)
    assert len(f.getbuffer()) < 2 << 20
    with pytest.raises(ValueError, match=msg):
        sk.load(f)


LOAD_PEAK = textwrap.dedent(r"""
    import sys
    import sparsekern as sk

    def status(key):   # VmRSS / VmHWM in bytes (ru_maxrss would carry the parent's over fork)
        with open("/proc/self/status") as f:
            return next(int(ln.split()[1]) * 1024 for ln in f if ln.startswith(key + ":"))

    base = status("VmRSS")
    try:
        W = sk.load(sys.argv[1])
        result = "loaded"
    except ValueError:
        result = "refused"
    print(result, base, status("VmHWM"))
""")


@pytest.mark.slow
@pytest.mark.parametrize("case", ["valid", "bad-order", "int64-indices"])
def test_load_peak_memory(rng, tmp_path, case):
    """A file whose headers fit its format (so it must be read) costs at most twice its
    described arrays + 64 MiB, whether it loads or is refused."""
    m = k = 2048
    nnz = m * k
    col = np.tile(np.arange(k, dtype=np.int64 if case == "int64-indices" else np.uint16), m)
    if case == "bad-order":
        col[-2:] = [5, 4]
    arrays = dict(sparsekern_format=np.array("unstructured"), version=np.array(1),
                  shape=np.array([m, k]), row_ptr=np.arange(m + 1, dtype=np.int64) * k,
                  col_idx=col, values=rng.standard_normal(nnz, dtype=np.float32))
    described = sum(a.nbytes for a in arrays.values())
    np.savez(tmp_path / "w.npz", **arrays)
    r = run_python(LOAD_PEAK, str(tmp_path / "w.npz"), timeout=300)
    assert r.returncode == 0, r.stderr
    result, base, peak = r.stdout.split()
    assert result == ("refused" if case == "bad-order" else "loaded")
    assert int(peak) - int(base) <= 2 * described + (64 << 20), (described, r.stdout)


def test_truncated_member_is_refused():
    W = sk.pack(np.eye(8, dtype=np.float32), "unstructured")
    good = _npz(**{"sparsekern_format": np.array("unstructured"), "version": np.array(1),
                   "shape": np.array(W.shape)}, **W._arrays()).getvalue()
    buf = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(good)) as src, zipfile.ZipFile(buf, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            dst.writestr(info.filename, data[:-4] if info.filename == "values.npy" else data)
    buf.seek(0)
    with pytest.raises(ValueError, match="truncated"):
        sk.load(buf)


def test_not_a_zip_file(tmp_path):
    p = tmp_path / "w.npz"
    p.write_bytes(b"\x00" * 100)
    with pytest.raises(ValueError, match="not a readable sparsekern .npz file"):
        sk.load(p)


# -- clear errors ------------------------------------------------------------------------

def test_conv_formats_that_cannot_hold_a_conv_weight(rng):
    W4 = make_x(rng, 4, 3, 3, 3)
    with pytest.raises(ValueError, match="'act' are not supported"):
        sk.pack(W4, "act")
    with pytest.raises(ValueError, match="matrix: conv2d weights in format 'act'"):
        sk.ConvWeight(W4.shape, sk.pack(W4.reshape(4, 27), "act"))
    Wc = sk.pack(W4, "unstructured")
    arrays = dict(Wc._arrays(), inner_format=np.array("act"))
    f = _npz(sparsekern_format=np.array("conv2d"), version=np.array(1),
             shape=np.array(W4.shape), **arrays)
    with pytest.raises(ValueError, match="inner_format 'act'"):
        sk.load(f)
    fn, (fmt, shape, arrays) = Wc.__reduce__()
    assert fn(fmt, shape, dict(arrays, inner_format="unstructured")) == Wc
    for bad in (5, None, np.array(["unstructured"]), "conv2d", "act"):
        with pytest.raises(ValueError, match="inner_format"):
            fn(fmt, shape, dict(arrays, inner_format=bad))


@pytest.mark.parametrize("payload", [
    ("unstructured", (2, 2), None), ("unstructured", 5, {}), (7, (2, 2), {}),
    ("unstructured", (2, 2), {1: np.zeros(1)}), ("2:4", (2, 2), []),
])
def test_hostile_reduce_payloads(payload):
    fn = sk.pack(np.eye(2, dtype=np.float32)).__reduce__()[0]
    with pytest.raises((TypeError, ValueError)):
        fn(*payload)


def test_pickled_conv_weight_roundtrip(rng):
    for W in _packed_examples(rng).values():
        assert pickle.loads(pickle.dumps(W)) == W


def test_empty_conv_weight(backend, rng):
    W = sk.pack(np.zeros((0, 3, 3, 3), np.float32))
    assert W.shape == (0, 3, 3, 3) and W.nnz == 0
    np.testing.assert_array_equal(W.to_dense(), np.zeros((0, 3, 3, 3)))
    assert sk.conv2d(make_x(rng, 2, 3, 5, 5), W).shape == (2, 0, 3, 3)
    assert sk.pack(np.zeros((0, 8, 1, 1), np.float32), "2:4").shape == (0, 8, 1, 1)


@pytest.mark.parametrize("shape", [(4.9, 2.2, 3.7, 3.0), (4, 3, 3, True), ("4", 3, 3, 3)])
def test_conv_weight_shape_must_be_integers(shape):
    M = sk.pack(np.ones((4, 27), np.float32))
    with pytest.raises(TypeError, match="4 non-negative integers"):
        sk.ConvWeight(shape, M)


def test_from_scipy_refuses_complex():
    S = sp.csr_array(np.array([[1 + 2j, 0], [0, 3]]))
    with pytest.raises(TypeError, match="real numbers"):
        sk.UnstructuredMatrix.from_scipy(S)


@pytest.mark.parametrize("pattern", ["٢:٤", "２:４", "2:٤"])
def test_pattern_digits_are_ascii(pattern):
    with pytest.raises(ValueError, match="invalid N:M pattern"):
        sk.pack(np.ones((4, 8), np.float32), pattern)


# -- conv2d geometry ---------------------------------------------------------------------

def test_conv2d_huge_padding_is_a_clear_error():
    x = np.ones((1, 3, 8, 8), np.float32)
    W = sk.pack(np.ones((4, 3, 3, 3), np.float32))
    with pytest.raises(ValueError, match="output .* would be too large"):
        sk.conv2d(x, W, padding=2**40)
    with pytest.raises(ValueError, match="too large"):
        sk.conv2d(x, W, padding=2**62)
    with pytest.raises(ValueError, match="too large"):
        sk.conv2d(x, W, dilation=2**62)


@pytest.mark.parametrize("stride", [(1, 2**62), (1, 2**70), (10**9, 1), (1, 10**9), (9, 2)])
def test_conv2d_huge_stride(backend, rng, stride):
    x = make_x(rng, 1, 3, 8, 8)
    W4 = make_x(rng, 4, 3, 3, 3)
    for Wc in (sk.pack(W4), sk.pack(W4.reshape(4, 3, 3, 3)[:, :, :1, :1].copy()), W4):
        w = Wc.to_dense() if isinstance(Wc, sk.ConvWeight) else Wc
        y = sk.conv2d(x, Wc, stride=stride)
        assert_conv2d(y, x, w, None, stride)


def test_pickles_name_a_stable_rebuild_function():
    """Pickles refer to sparsekern.formats._rebuild whatever the package's inner layout,
    so files pickled by earlier versions (which named it there too) still load."""
    Wp = sk.pack(np.eye(4, dtype=np.float32), "2:4")
    data = pickle.dumps(Wp, protocol=2)
    assert b"sparsekern.formats" in data and b"_rebuild" in data and b"_base" not in data
    assert pickle.loads(data) == Wp
