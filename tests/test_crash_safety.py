"""Nothing a user can hand to the public API may crash the process.

The C kernels trust the packed arrays, so a validation gap would be a segfault, not
an exception. These tests run in a subprocess: random corruptions of valid arrays go
through the constructor, through hand-edited .npz files and through tampered pickles;
every matrix that is accepted must then multiply correctly on every backend and ISA.
A crash shows up as a negative return code, and the last printed line names the trial.
"""
from __future__ import annotations

import sys
import textwrap

import pytest

from _capi import c_backend as _c_backend
from _subproc import run_python

FUZZ = textwrap.dedent(r"""
    import io, pickle, sys
    import numpy as np
    import sparsekern as sk
    from sparsekern import _backends
    from _cases import make_weights, make_x
    from reference import assert_matmul

    SEED, TRIALS = int(sys.argv[1]), int(sys.argv[2])
    rng = np.random.default_rng(SEED)
    backends = []
    if "c" in _backends.available():
        backends += [("c", isa) for isa in _backends.get("c").isas()]
    if "numba" in _backends.available():
        backends.append(("numba", None))

    INTS = [0, 1, -1, 2, 7, 2**15, 2**16 - 1, 2**16, 2**31 - 1, 2**31, -2**31, 2**32, 2**62,
            2**63 - 1, -2**63]

    def mutate(shape, d):
        d = {k: v.copy() for k, v in d.items()}
        key = rng.choice(["row_ptr", "col_idx", "values", "shape", "dtype", "swap", "resize"])
        if key in ("row_ptr", "col_idx") and d[key].size:
            a = d[key].astype(np.int64)
            a[rng.integers(a.size)] = rng.choice(INTS) if rng.random() < 0.5 else \
                a[rng.integers(a.size)] + rng.integers(-3, 4)
            d[key] = a
        elif key == "values" and d["values"].size:
            d["values"][rng.integers(d["values"].size)] = rng.choice([np.nan, np.inf, -np.inf, 0])
        elif key == "shape":
            shape = (int(shape[0] + rng.integers(-2, 3)), int(shape[1] + rng.integers(-2, 3)))
        elif key == "dtype":
            k2 = rng.choice(["row_ptr", "col_idx"])
            d[k2] = d[k2].astype(rng.choice([np.int8, np.uint8, np.int16, np.uint16, np.int32,
                                             np.uint32, np.uint64]))
        elif key == "swap" and d["col_idx"].size > 1:
            i = rng.integers(d["col_idx"].size - 1)
            d["col_idx"][[i, i + 1]] = d["col_idx"][[i + 1, i]]
        elif key == "resize":
            k2 = rng.choice(["row_ptr", "col_idx", "values"])
            d[k2] = d[k2][:-1] if rng.random() < 0.5 or not d[k2].size else \
                np.append(d[k2], d[k2][-1:])
        return shape, d

    def exercise(Wp, label):
        m, k = Wp.shape
        D = Wp.to_dense()
        for n in ((1, 5, 70) if k < 100 else (1, 5)):
            X = make_x(rng, k, n)
            for be, isa in backends:
                sk.set_backend(be)
                if isa:
                    sk.set_isa(isa)
                assert_matmul(sk.matmul(Wp, X), D, X, what=f"{label} {be} {isa} n={n}")

    class Tampered:  # pickles as a packed matrix with arbitrary arrays
        def __init__(self, shape, arrays):
            self.args = ("unstructured", shape, arrays)

        def __reduce__(self):
            return sk.formats._rebuild, self.args

    accepted = rejected = 0
    for trial in range(TRIALS):
        m = int(rng.integers(0, 12))
        k = int(rng.integers(0, 40)) if rng.random() < 0.9 else int(rng.choice([65536, 70000]))
        W = make_weights(rng, m, k, rng.random() if k < 100 else 0.0005)
        good = sk.pack(W)
        shape, d = good.shape, {"row_ptr": good.row_ptr, "col_idx": good.col_idx,
                                "values": good.values}
        for _ in range(int(rng.integers(1, 3))):
            shape, d = mutate(shape, d)
        route = ["ctor", "npz", "pickle"][trial % 3]
        print(trial, route, shape, {k: (v.dtype.str, v.shape) for k, v in d.items()}, flush=True)
        try:
            if route == "ctor":
                Wp = sk.UnstructuredMatrix(shape, **d)
            elif route == "npz":
                f = io.BytesIO()
                np.savez(f, sparsekern_format=np.array("unstructured"), version=np.array(1),
                         shape=np.array(shape), **d)
                f.seek(0)
                Wp = sk.load(f)
            else:
                Wp = pickle.loads(pickle.dumps(Tampered(shape, d)))
        except (ValueError, TypeError) as e:
            rejected += 1
            continue
        accepted += 1
        exercise(Wp, f"trial {trial}")
    print("FUZZ-OK", accepted, rejected, flush=True)
""")


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1])
def test_fuzzed_arrays_never_crash(seed):
    proc = run_python(FUZZ, str(seed), "300", timeout=240)
    lines = proc.stdout.strip().splitlines()
    assert proc.returncode == 0, (
        f"fuzz subprocess failed (rc={proc.returncode}; negative = killed by a signal) after "
        f"{lines[-1:]}\n{proc.stderr[-3000:]}")
    assert lines[-1].startswith("FUZZ-OK")
    _, accepted, rejected = lines[-1].split()
    assert int(rejected) > 100 and int(accepted) > 10, lines[-1]


NASTY = textwrap.dedent(r"""
    import io
    import numpy as np
    import sparsekern as sk
    from sparsekern import _backends

    Wp = sk.pack(np.eye(4, dtype=np.float32))
    nasty_x = [np.empty((4, 0), np.float32), np.empty((0, 4, 3), np.float32),
               np.full((4, 3), np.nan, np.float32), np.full((4, 1), np.inf, np.float32),
               np.zeros((4, 2**16 + 1), np.float32)[:, ::7],
               np.lib.stride_tricks.as_strided(np.zeros(4, np.float32), (4, 5), (4, 0))]
    backends = [("numba", None)] if "numba" in _backends.available() else []
    if "c" in _backends.available():
        backends += [("c", isa) for isa in _backends.get("c").isas()]
    for be, isa in backends:
        sk.set_backend(be)
        if isa:
            sk.set_isa(isa)
        for X in nasty_x:
            Y = sk.matmul(Wp, X)
            assert Y.dtype == np.float32
        for bad in (np.zeros((5, 3)), np.zeros(()), "x", None, object(), np.zeros((4, 2), complex)):
            try:
                sk.matmul(Wp, bad)
            except (ValueError, TypeError):
                pass
            else:
                raise AssertionError(f"accepted {bad!r}")
    # huge claimed sizes in a file must be rejected before anything is allocated
    for shape in ([2**62, 2**31 - 1], [2**40, 1], [1, 2**31]):
        f = io.BytesIO()
        np.savez(f, sparsekern_format=np.array("unstructured"), version=np.array(1),
                 shape=np.array(shape, np.int64), row_ptr=np.zeros(2, np.int64),
                 col_idx=np.zeros(0, np.uint16), values=np.zeros(0, np.float32))
        f.seek(0)
        try:
            sk.load(f)
        except ValueError:
            pass
        else:
            raise AssertionError(shape)
    print("NASTY-OK")
""")


def test_nasty_inputs_in_subprocess():
    proc = run_python(NASTY, timeout=120)
    assert proc.returncode == 0, f"rc={proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    assert "NASTY-OK" in proc.stdout


# ------------------------------------------------------------------ conv2d geometry

CONV_HUGE_STRIDE = textwrap.dedent(r"""
    import resource, time
    import numpy as np
    import sparsekern as sk
    from sparsekern import _backends

    x = np.ones((1, 3, 8, 8), np.float32)
    Wc = sk.pack(np.ones((4, 3, 3, 3), np.float32))
    for isa in _backends.get("c").isas():
        sk.set_backend("c")
        sk.set_isa(isa)
        y = sk.conv2d(x, Wc, stride=(1, 2**62))
        assert y.shape == (1, 4, 6, 1) and (y == 27).all(), (isa, y.ravel())
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t0 = time.perf_counter()
        y = sk.conv2d(x, Wc, stride=(1, 10**9))
        assert y.shape == (1, 4, 6, 1) and (y == 27).all(), (isa, y.ravel())
        # the output's middle column steps onto the input, the others see padding only
        y = sk.conv2d(x, Wc, stride=(1, 10**9), padding=(0, 10**9))
        assert y.shape == (1, 4, 6, 3), y.shape
        assert (y[..., 1] == 27).all() and (y[..., ::2] == 0).all(), (isa, y[0, 0])
        y = sk.conv2d(x, Wc, stride=(2**60, 2**60), padding=2**60)
        assert y.shape == (1, 4, 3, 3) and (y[:, :, 1, 1] == 27).all(), (isa, y[0, 0])
        assert y.sum() == 4 * 27, (isa, y[0, 0])
        dt = time.perf_counter() - t0
        grew = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
        assert dt < 5 and grew < 64, f"{isa}: {dt:.2f} s, peak RSS +{grew:.0f} MiB"
    print("CONV-STRIDE-OK")
""")


def test_conv2d_huge_strides_in_subprocess():
    """Strides beyond the input (2**62, 10**9, with and without padding as large): correct
    output in milliseconds, no allocation that grows with the stride."""
    if _c_backend() is None:
        pytest.skip("C library not loadable")
    proc = run_python(CONV_HUGE_STRIDE, timeout=120)
    assert proc.returncode == 0, f"rc={proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    assert "CONV-STRIDE-OK" in proc.stdout


CONV_C_GEOMETRY = textwrap.dedent(r"""
    import numpy as np
    import sparsekern as sk
    import reference
    from _capi import SK_ERR_INVALID_ARG, SK_OK, addr, c_backend, csr_struct, isa_index
    from sparsekern.ops.conv import ConvGeometry

    c = c_backend()
    ffi, lib = c.ffi, c.lib

    def call(isa, Wd, geom, x, y):
        Wp = sk.pack(Wd.reshape(Wd.shape[0], -1))
        h = csr_struct(c, Wp)
        h.cols = max(-2**63, min(2**63 - 1, geom["c_in"] // geom["groups"] * geom["kh"] * geom["kw"]))
        g = ffi.new("sk_conv2d_geom *", ConvGeometry(**geom)._asdict())
        return lib.sk_f32_conv2d_sparse_isa(isa_index(isa), h, g, ffi.cast("float *", addr(x)),
                                            ffi.NULL, ffi.cast("float *", addr(y)))

    def geom(**kw):
        g = dict(batch=1, c_in=3, h=8, w=8, c_out=4, kh=3, kw=3, groups=1, stride_h=1,
                 stride_w=1, pad_h=0, pad_w=0, dil_h=1, dil_w=1, h_out=6, w_out=6)
        g.update(kw)
        return g

    # Each valid geometry's output is that of a small convolution (reference.conv2d without
    # padding or stride, at the positions whose window lies on the input) and 0 elsewhere.
    P = 2**62
    full = lambda x, Wd: reference.conv2d(x, Wd)   # (1, 4, 6, 6)
    valid = [(geom(stride_w=P, w_out=1), lambda x, Wd: full(x, Wd)[..., :1]),
             (geom(stride_h=P, stride_w=P, h_out=1, w_out=1), lambda x, Wd: full(x, Wd)[..., :1, :1]),
             (geom(stride_w=10**9, pad_w=10**9, w_out=3), None),
             (geom(stride_h=2**61, stride_w=2**61, pad_h=2**61, pad_w=2**61, h_out=3, w_out=3), None),
             (geom(pad_h=2**40, pad_w=2**33, h_out=2, w_out=5), lambda x, Wd: np.zeros((1, 4, 2, 5)))]

    def expected(i, x, Wd):
        g, fn = valid[i]
        if fn is not None:
            return fn(x, Wd)
        e = np.zeros((1, 4, g["h_out"], g["w_out"]))
        if i == 2:     # only output column 1 steps onto the input (columns 0..2)
            e[..., 1] = full(x, Wd)[..., 0]
        else:          # only output pixel (1, 1) does (rows and columns 0..2)
            e[..., 1, 1] = full(x, Wd)[..., 0, 0]
        return e

    overflow = [geom(kh=2**32, kw=2**32, h_out=1, w_out=1),
                geom(c_in=2**31, h=2**31, w=4, h_out=1, w_out=1, kh=1, kw=1),
                geom(h_out=2**33, w_out=2**31 - 1),
                geom(batch=2**40, h_out=2**12, w_out=2**12),
                geom(stride_w=P, w_out=3), geom(stride_h=P, h_out=4),
                geom(dil_w=P), geom(stride_h=P, pad_h=P, h_out=2),
                geom(pad_w=2**63 - 1, w_out=1), geom(w=2**31, h_out=1, w_out=1, kh=1, kw=1)]
    rng = np.random.default_rng(5)
    for isa in c.isas():
        for i, (g, _) in enumerate(valid):
            x = rng.standard_normal((g["batch"], g["c_in"], g["h"], g["w"])).astype(np.float32)
            Wd = rng.standard_normal((g["c_out"], g["c_in"] // g["groups"], g["kh"], g["kw"])).astype(np.float32)
            y = np.full((g["batch"], g["c_out"], g["h_out"], g["w_out"]), np.nan, np.float32)
            st = call(isa, Wd, g, x, y)
            assert st == SK_OK, (isa, g, st)
            np.testing.assert_allclose(y, expected(i, x, Wd), rtol=1e-5, atol=1e-5,
                                       err_msg=f"{isa} {g}")
        for g in overflow:
            # 64-float buffers: a geometry let through would write far past y
            x = np.ones(64, np.float32)
            y = np.zeros(64, np.float32)
            Wd = np.ones((g["c_out"], 1, 1, 1), np.float32)
            st = call(isa, Wd, g, x, y)
            assert st == SK_ERR_INVALID_ARG, (isa, g, st)
            assert (y == 0).all(), (isa, g)
    print("CONV-GEOMETRY-OK")
""")


def test_conv2d_c_geometry_checked_in_subprocess():
    """sk_f32_conv2d_sparse_isa on raw geometries: sizes, offsets and coordinates that
    overflow int64 give SK_ERR_INVALID_ARG (no write); extreme valid ones (strides and
    paddings up to 2**62, taken as given, without the Python layer) match reference.conv2d."""
    if _c_backend() is None:
        pytest.skip("C library not loadable")
    proc = run_python(CONV_C_GEOMETRY, timeout=120)
    assert proc.returncode == 0, f"rc={proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    assert "CONV-GEOMETRY-OK" in proc.stdout


# ------------------------------------------------------------------ threads

THREAD_CHURN = textwrap.dedent(r"""
    import sys, threading
    import numpy as np
    import sparsekern as sk

    sk.set_backend("c")
    rng = np.random.default_rng(0)
    W = sk.pack(rng.standard_normal((128, 4096)).astype(np.float32), "act")   # 2 column blocks: 2 OpenMP threads
    x = rng.standard_normal((16, 4096)).astype(np.float32)
    x[:, ::3] = 0

    def work():
        sk.linear(x, W)
        sk.linear(x[0], W)
        sk.linear(x, W, threshold=0.5)
        sk.linear(x, W, topk=200)
        sk.linear(x, W, topk=100, select="wina")
        d = sk.DeltaLinear(W, threshold=0.1)
        d(x)
        d(x * 1.1)

    def churn(n):
        for _ in range(n):
            t = threading.Thread(target=work)
            t.start()
            t.join()

    def rss():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096

    churn(50)   # warm-up: allocator arenas, the OpenMP pools, numpy's caches
    growth = []
    for trial in range(3):
        r0 = rss()
        churn(300)
        growth.append((rss() - r0) / 2**20)
        if growth[-1] <= 16:
            break
    print("GROWTH-MIB", " ".join(f"{g:.1f}" for g in growth))
""")


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
def test_act_scratch_not_kept_by_exited_threads():
    """300 short-lived threads each running act linear (plain, threshold, topk, WINA) and
    DeltaLinear at batch 16 and 1 (about 0.9 MB of scratch per thread): RSS grows by at
    most 16 MiB (up to 3 trials of 300 threads; a per-thread leak grows ~250 MiB in each)."""
    if _c_backend() is None:
        pytest.skip("C library not loadable")
    proc = run_python(THREAD_CHURN, timeout=240)
    assert proc.returncode == 0, f"rc={proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("GROWTH-MIB")][-1]
    growth = [float(v) for v in line.split()[1:]]
    assert min(growth) <= 16, f"RSS growth per 300 threads (MiB): {growth}"


OMP_CAP = textwrap.dedent(r"""
    import numpy as np
    import sparsekern as sk

    sk.set_backend("c")
    n = sk.get_num_threads()
    assert 1 <= n <= 1024, n
    Wp = sk.pack(np.eye(8, dtype=np.float32))
    X = np.arange(8 * 3, dtype=np.float32).reshape(8, 3)
    assert (sk.matmul(Wp, X) == X).all()
    print("OMP-CAP-OK", n)
""")


def test_omp_num_threads_env_is_capped():
    """OMP_NUM_THREADS far above any machine: the library's default thread count is capped
    as set_num_threads caps it (1024)."""
    if _c_backend() is None:
        pytest.skip("C library not loadable")
    proc = run_python(OMP_CAP, timeout=120, OMP_NUM_THREADS="100000")
    assert proc.returncode == 0, f"rc={proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    assert "OMP-CAP-OK" in proc.stdout
