"""Every compiled ISA variant of the N:M SpMM through the C ABI with an explicit ISA
(sk_f32_spmm_nm_isa): leading dimensions larger than N, output sentinels, status codes,
and reads checked against guard pages in a subprocess."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import sparsekern as sk
from _capi import (SK_ERR_INVALID_ARG, SK_ERR_UNSUPPORTED, SK_OK, addr, c_backend, isa_index,
                   nm_struct, status_caller, unsupported_isas, with_fields)
from _cases import make_weights, make_x
from _subproc import python_env
from reference import assert_linear, assert_matmul

pytestmark = pytest.mark.skipif(c_backend() is None, reason="C library not loadable")

SENTINEL = np.float32(-7777.0)


def spmm_nm(c, isa, h, X, n, ldx, bias, Y, ldy) -> int:
    ffi = c.ffi
    return c.lib.sk_f32_spmm_nm_isa(
        isa_index(isa), h, ffi.cast("float *", addr(X)), n, ldx,
        ffi.cast("float *", addr(bias)) if bias is not None else ffi.NULL,
        ffi.cast("float *", addr(Y)), ldy)


CASES = [(p, m, k, n) for p in ("2:4", "1:4", "3:4", "1:8", "3:8", "4:16", "1:16", "15:16")
         for m, k, n in ((5, 67, 1), (9, 130, 1), (6, 33, 19), (5, 64, 70))]


@pytest.mark.parametrize("with_bias", [False, True], ids=["nobias", "bias"])
@pytest.mark.parametrize("pattern,m,k,n", CASES, ids=[f"{p}-{m}x{k}-n{n}" for p, m, k, n in CASES])
def test_nm_variant_strided(c_isa, rng, pattern, m, k, n, with_bias):
    """ldx = n + 3, ldy = n + 5: NaN in X's padding ignored, Y's padding kept."""
    c = c_backend()
    Wp = sk.pack(make_weights(rng, m, k, pattern="dense"), pattern)
    W = Wp.to_dense()
    ldx, ldy = n + 3, n + 5
    Xbuf = np.full((k, ldx), np.nan, np.float32)
    Xbuf[:, :n] = make_x(rng, k, n)
    Ybuf = np.full((m + 1, ldy), SENTINEL, np.float32)
    bias = make_x(rng, m) if with_bias else None
    assert spmm_nm(c, c_isa, nm_struct(c, Wp), Xbuf, n, ldx, bias, Ybuf, ldy) == SK_OK
    X = Xbuf[:, :n]
    if bias is None:
        assert_matmul(np.ascontiguousarray(Ybuf[:m, :n]), W, X, what=f"{c_isa}")
    else:
        assert_linear(np.ascontiguousarray(Ybuf[:m, :n].T), X.T, W, bias, what=f"{c_isa}")
    assert np.all(Ybuf[:m, n:] == SENTINEL), "wrote into Y's padding (ldy > n)"
    assert np.all(Ybuf[m] == SENTINEL), "wrote past Y's last row"


def test_nm_status_codes(rng):
    c = c_backend()
    ffi, lib = c.ffi, c.lib
    Wp = sk.pack(make_weights(rng, 4, 8, pattern="dense"), "2:4")
    X = make_x(rng, 8, 3)
    Y = np.full((4, 3), SENTINEL, np.float32)
    best = c.isas()[-1]

    call = status_caller(c, "sk_f32_spmm_nm_isa", lambda: nm_struct(c, Wp), X, Y)

    def with_field(**kw):
        return with_fields(nm_struct(c, Wp), **kw)

    assert lib.sk_f32_spmm_nm_isa(isa_index(best), ffi.NULL, ffi.NULL, 3, 3, ffi.NULL,
                                  ffi.NULL, 3) == SK_ERR_INVALID_ARG
    for kw in (dict(n=-1), dict(ldx=2), dict(ldy=2), dict(x=None), dict(y=None)):
        assert call(**kw) == SK_ERR_INVALID_ARG, kw
    for field in (dict(rows=-1), dict(cols=-1), dict(n=0), dict(n=4), dict(m=5), dict(m=32),
                  dict(pos_bits=3), dict(meta_stride=0), dict(meta_stride=4),
                  dict(values=ffi.NULL), dict(meta=ffi.NULL)):
        assert call(h=with_field(**field)) == SK_ERR_INVALID_ARG, field
    for isa in unsupported_isas():
        assert call(isa=isa) == SK_ERR_UNSUPPORTED, isa
    assert np.all(Y == SENTINEL), "a rejected call wrote to Y"
    assert call(n=0, x=None, y=None, ldx=0, ldy=0) == SK_OK
    assert call(h=with_field(rows=0), x=None, y=None) == SK_OK
    assert call() == SK_OK
    assert_matmul(Y, Wp.to_dense(), X)
    assert lib.sk_f32_spmm_nm(nm_struct(c, Wp), ffi.cast("float *", X.ctypes.data), 3, 3,
                              ffi.NULL, ffi.cast("float *", Y.ctypes.data), 3) == SK_OK


GUARD_SCRIPT = textwrap.dedent(r"""
    import sys
    import numpy as np
    sys.path.insert(0, sys.argv[1])
    import sparsekern as sk
    from _capi import c_backend, nm_struct, SK_OK
    from _cases import make_weights, make_x
    from reference import assert_matmul
    from test_kernel_f32_spmm_nm import spmm_nm

    from _guard import guarded

    c = c_backend()
    rng = np.random.default_rng(4321)
    sk.set_num_threads(1)
    for isa in c.isas():
        for pattern in ("2:4", "1:4", "3:4", "1:8", "3:8", "7:8", "1:16", "4:16", "15:16"):
            m_ = int(pattern.split(":")[1])
            for k in (1, m_ - 1, m_, m_ + 1, 63, 64, 65, 131, 256, 257):
                Wp = sk.pack(make_weights(rng, 5, k, pattern="dense"), pattern)
                for at_end in (True, False):
                    v, mt = guarded(Wp.values, at_end), guarded(Wp.meta, at_end)
                    h = nm_struct(c, Wp, v, mt)
                    for n in (1, 17, 65):
                        print(isa, pattern, k, n, "end" if at_end else "start", flush=True)
                        X = guarded(make_x(rng, k, n), at_end)
                        Y = guarded(np.zeros((5, n), np.float32), at_end)
                        assert spmm_nm(c, isa, h, X, n, n, None, Y, n) == SK_OK
                        assert_matmul(np.array(Y), Wp.to_dense(), np.array(X))
    print("GUARD-OK", flush=True)
""")


@pytest.mark.slow
def test_nm_no_reads_past_arrays_guard_pages():
    """values, meta, X and Y each end (then start) at a PROT_NONE page; every ISA, K at the
    padding edges and around the batch-1 step widths, N = 1, a tail and a column block."""
    if not sys.platform.startswith("linux"):
        pytest.skip("uses mprotect via libc")
    proc = subprocess.run([sys.executable, "-c", GUARD_SCRIPT, str(Path(__file__).parent)],
                          capture_output=True, text=True, env=python_env(), timeout=300,
                          cwd=str(Path(__file__).parent))
    last = proc.stdout.strip().splitlines()[-1:] if proc.stdout.strip() else []
    assert proc.returncode == 0, (f"guard-page run failed (rc={proc.returncode}) at case {last}\n"
                                  f"{proc.stderr[-3000:]}")
    assert last == ["GUARD-OK"]
