"""Every compiled ISA variant of the unstructured SpMM, called through the C ABI with an
explicit ISA (sk_f32_spmm_unstructured_isa): leading dimensions larger than N, output
sentinels ("writes only Y[:, :n]"), status codes for bad arguments, and reads checked
against guard pages ("never reads past an array's end") in a subprocess."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import sparsekern as sk
from _capi import (SK_ERR_INVALID_ARG, SK_ERR_UNSUPPORTED, SK_OK, c_backend, csr_struct,
                   isa_index, spmm, status_caller, unsupported_isas, with_fields)
from _cases import GRID, make_weights, make_x
from _subproc import python_env
from reference import assert_linear, assert_matmul

pytestmark = pytest.mark.skipif(c_backend() is None, reason="C library not loadable")

SENTINEL = np.float32(-7777.0)


@pytest.mark.parametrize("with_bias", [False, True], ids=["nobias", "bias"])
@pytest.mark.parametrize("case", GRID, ids=str)
def test_variant_strided(c_isa, rng, case, with_bias):
    """X and Y with ldx = n + 3 and ldy = n + 5: NaN in X's padding must be ignored, Y's
    padding and the row after Y must keep their sentinels."""
    c = c_backend()
    m, k, n = case.m, case.k, case.n
    W = make_weights(rng, m, k, case.density, case.pattern)
    Wp = sk.pack(W)
    ldx, ldy = n + 3, n + 5
    Xbuf = np.full((k, ldx), np.nan, np.float32)
    Xbuf[:, :n] = make_x(rng, k, n)
    Ybuf = np.full((m + 1, ldy), SENTINEL, np.float32)
    bias = make_x(rng, m) if with_bias else None
    st = spmm(c, c_isa, csr_struct(c, Wp), Xbuf, n, ldx, bias, Ybuf, ldy)
    assert st == SK_OK
    X = Xbuf[:, :n]
    if bias is None:
        assert_matmul(np.ascontiguousarray(Ybuf[:m, :n]), W, X, what=f"{c_isa} {case}")
    else:  # Y = W @ X + bias[:, None]  ==  linear(X.T, W, bias).T
        assert_linear(np.ascontiguousarray(Ybuf[:m, :n].T), X.T, W, bias, what=f"{c_isa} {case}")
    assert np.all(Ybuf[:m, n:] == SENTINEL), "wrote into Y's padding (ldy > n)"
    assert np.all(Ybuf[m] == SENTINEL), "wrote past Y's last row"


@pytest.mark.parametrize("n", [1, 64, 65, 130], ids=lambda n: f"n{n}")
def test_variant_strided_threads(c_isa, rng, n):
    """Strided, parallel and (n > 64) with X copied in column blocks."""
    c = c_backend()
    W = make_weights(rng, 300, 257, 0.2, "empty_rows")
    Wp = sk.pack(W)
    ldx, ldy = n + 7, n + 1
    Xbuf = np.full((257, ldx), np.inf, np.float32)
    Xbuf[:, :n] = make_x(rng, 257, n)
    for threads in (1, 2):
        sk.set_num_threads(threads)
        Ybuf = np.full((301, ldy), SENTINEL, np.float32)
        assert spmm(c, c_isa, csr_struct(c, Wp), Xbuf, n, ldx, None, Ybuf, ldy) == SK_OK
        assert_matmul(np.ascontiguousarray(Ybuf[:300, :n]), W, Xbuf[:, :n],
                      what=f"threads={threads}")
        assert np.all(Ybuf[:300, n:] == SENTINEL) and np.all(Ybuf[300] == SENTINEL)


def test_status_codes(rng):
    c = c_backend()
    ffi, lib = c.ffi, c.lib
    Wp = sk.pack(make_weights(rng, 4, 6, pattern="dense"))
    X = make_x(rng, 6, 3)
    Y = np.full((4, 3), SENTINEL, np.float32)
    best = c.isas()[-1]

    call = status_caller(c, "sk_f32_spmm_unstructured_isa", lambda: csr_struct(c, Wp), X, Y)

    def with_field(**kw):
        return with_fields(csr_struct(c, Wp), **kw)

    assert lib.sk_f32_spmm_unstructured_isa(isa_index(best), ffi.NULL, ffi.NULL, 3, 3, ffi.NULL,
                                            ffi.NULL, 3) == SK_ERR_INVALID_ARG
    assert call(n=-1) == SK_ERR_INVALID_ARG
    assert call(ldx=2) == SK_ERR_INVALID_ARG
    assert call(ldy=2) == SK_ERR_INVALID_ARG
    assert call(x=None) == SK_ERR_INVALID_ARG
    assert call(y=None) == SK_ERR_INVALID_ARG
    assert call(h=with_field(idx_bits=8)) == SK_ERR_INVALID_ARG
    assert call(h=with_field(rows=-1)) == SK_ERR_INVALID_ARG
    assert call(h=with_field(cols=-1)) == SK_ERR_INVALID_ARG
    assert call(h=with_field(nnz=-1)) == SK_ERR_INVALID_ARG
    assert call(h=with_field(row_ptr=ffi.NULL)) == SK_ERR_INVALID_ARG
    assert call(h=with_field(values=ffi.NULL)) == SK_ERR_INVALID_ARG
    assert call(h=with_field(col_idx=ffi.NULL)) == SK_ERR_INVALID_ARG
    for isa in unsupported_isas():
        assert call(isa=isa) == SK_ERR_UNSUPPORTED, isa
    assert np.all(Y == SENTINEL), "a rejected call wrote to Y"
    # n == 0 and rows == 0 are no-ops even with null buffers
    assert call(n=0, x=None, y=None, ldx=0, ldy=0) == SK_OK
    assert call(h=with_field(rows=0), x=None, y=None) == SK_OK
    assert call() == SK_OK
    assert_matmul(Y, Wp.to_dense(), X)


def test_library_config_api():
    c = c_backend()
    lib, ffi = c.lib, c.ffi
    assert ffi.string(lib.sk_version()).decode() == sk.__version__
    for i, name in enumerate(("scalar", "avx2", "avx512", "neon", "wasmsimd")):
        assert ffi.string(lib.sk_isa_name(i)).decode() == name
    assert lib.sk_isa_name(-1) == ffi.NULL and lib.sk_isa_name(5) == ffi.NULL
    assert lib.sk_cpu_isa_mask() & 1, "scalar is always available"
    assert lib.sk_set_isa(99) == SK_ERR_UNSUPPORTED
    assert lib.sk_set_num_threads(0) == SK_ERR_INVALID_ARG
    assert lib.sk_max_threads() >= 1


# -- guard pages ------------------------------------------------------------------------

GUARD_SCRIPT = textwrap.dedent(r"""
    import sys
    import numpy as np
    sys.path.insert(0, sys.argv[1])
    import sparsekern as sk
    from _capi import c_backend, spmm, SK_OK
    from _cases import make_weights, make_x
    from reference import assert_matmul

    from _guard import guarded

    c = c_backend()
    rng = np.random.default_rng(1234)
    cases = []
    for length in range(0, 41):                       # every row length, batch 1 and tails
        cases.append((f"row{length}", 1, max(length, 1), [1, 17]))
    for k in (7, 9, 16, 17, 33, 65):
        cases.append((f"dense-k{k}", 3, k, [1, 8, 16, 31, 33, 64, 65, 100]))
    cases.append(("wide-k70000", 3, 70000, [1, 17]))
    cases.append(("empty", 4, 5, [1, 20]))
    sk.set_num_threads(1)  # these shapes are all below the parallel threshold anyway
    for isa in c.isas():
        if True:
            for name, m, k, ns in cases:
                if name.startswith("row"):
                    W = np.zeros((m, k), np.float32)
                    L = int(name[3:])
                    W[0, rng.choice(k, L, replace=False)] = rng.standard_normal(L)
                elif name == "empty":
                    W = np.zeros((m, k), np.float32)
                elif name.startswith("wide"):
                    W = make_weights(rng, m, k, 0.0006)
                    W[:, k - 1] = 1.0
                else:
                    W = make_weights(rng, m, k, pattern="dense")
                Wp = sk.pack(W)
                for at_end in (True, False):
                    rp, ci, v = (guarded(a, at_end) for a in (Wp.row_ptr, Wp.col_idx, Wp.values))
                    h = c.ffi.new("sk_csr_f32 *")
                    h.rows, h.cols = Wp.shape
                    h.nnz, h.idx_bits = Wp.nnz, 16 if ci.dtype == np.uint16 else 32
                    h.row_ptr = c.ffi.cast("int64_t *", rp.ctypes.data)
                    h.col_idx = c.ffi.cast("void *", ci.ctypes.data)
                    h.values = c.ffi.cast("float *", v.ctypes.data)
                    for n in ns:
                        print(isa, name, n, "end" if at_end else "start", flush=True)
                        X = guarded(make_x(rng, k, n), at_end)
                        b = guarded(make_x(rng, m), at_end)
                        Y = guarded(np.zeros((m, n), np.float32), at_end)
                        assert spmm(c, isa, h, X, n, n, None, Y, n) == SK_OK
                        assert_matmul(np.array(Y), W, np.array(X), what=f"{isa} {name} n={n}")
                        assert spmm(c, isa, h, X, n, n, b, Y, n) == SK_OK
    print("GUARD-OK", flush=True)
""")


@pytest.mark.slow
def test_no_reads_past_arrays_guard_pages(tmp_path):
    """Each of X, Y, bias, row_ptr, col_idx and values ends (then starts) at a PROT_NONE
    page; every ISA, every row length 0..40, every N tail. A read beyond any array
    segfaults the subprocess, and the last line it printed names the case."""
    if not sys.platform.startswith("linux"):
        pytest.skip("uses mprotect via libc")
    proc = subprocess.run([sys.executable, "-c", GUARD_SCRIPT, str(Path(__file__).parent)],
                          capture_output=True, text=True, env=python_env(), timeout=300,
                          cwd=str(Path(__file__).parent))   # not the repo root: its sparsekern/ has no library
    last = proc.stdout.strip().splitlines()[-1:] if proc.stdout.strip() else []
    assert proc.returncode == 0, (f"guard-page run failed (rc={proc.returncode}) at case {last}\n"
                                  f"{proc.stderr[-3000:]}")
    assert last == ["GUARD-OK"]


# -- the panel layout (AVX-512, batch >= 64, rows with >= 24 nonzeros per 128 columns) ------

@pytest.mark.parametrize("m,k,n,pattern", [
    (37, 700, 64, "random"), (40, 300, 65, "empty_rows"), (9, 1000, 130, "rowlen"),
    (64, 257, 200, "random"), (4, 256, 64, "dense"), (23, 900, 96, "empty_cols")],
    ids=["37x700-n64", "40x300-n65-empty-rows", "9x1000-n130-rowlen", "64x257-n200",
         "4x256-dense", "23x900-n96-empty-cols"])
@pytest.mark.parametrize("threads", [1, 2])
def test_panel_layout(rng, m, k, n, pattern, threads):
    """Dense-ish rows at batch >= 64 run from the panel layout the C backend builds on
    first use: results match the reference, incl. bias, inf/NaN, and equal across threads."""
    from conftest import c_backend_or_none
    from reference import assert_linear, assert_matmul

    c = c_backend_or_none()
    if c is None or "avx512" not in c.isas():
        pytest.skip("the panel layout is an AVX-512 kernel path")
    sk.set_backend("c")
    sk.set_isa("avx512")
    sk.set_num_threads(threads)
    try:
        W = make_weights(rng, m, k, density=0.4, pattern=pattern)
        Wp = sk.pack(W)
        X = make_x(rng, k, n)
        b = make_x(rng, m)
        assert_matmul(sk.matmul(Wp, X), W, X, "panel matmul")
        pay = c._panels_pay(Wp)
        assert (Wp._panels is not None) == pay or pattern in ("rowlen",)
        y = sk.linear(X.T.copy(), Wp, b)
        assert_linear(y, X.T.copy(), W, b, "panel linear")
        X2 = X.copy()
        X2[min(5, k - 1), 3] = np.inf
        X2[k // 2, n - 1] = np.nan
        X2[0, 1] = -np.inf              # row 0 of a panel: what padding entries multiply
        assert_matmul(sk.matmul(Wp, X2), W, X2, "panel matmul inf/nan")
        sk.set_num_threads(3 - threads)
        np.testing.assert_array_equal(sk.matmul(Wp, X), sk.matmul(Wp, X))
    finally:
        sk.set_num_threads(1)
        sk.set_isa(c.isas()[-1])
