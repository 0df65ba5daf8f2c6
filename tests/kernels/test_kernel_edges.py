"""Every kernel family's edge-case grid (tests/_tiles.py: shapes at, below and above every
tile, step and block edge of each ISA variant, built from the tiling the C library
reports through sk_kernel_tiling) run through the variant's C entry point
(sk_*_isa) against reference.py, with strided X and Y whose padding must stay untouched;
and sk_kernel_tiling itself: its status codes and sane values for every variant."""
from __future__ import annotations

import platform

import numpy as np
import pytest

import sparsekern as sk
from _capi import (SK_ERR_INVALID_ARG, SK_ERR_UNSUPPORTED, SK_OK, addr, c_backend, csr_struct,
                   isa_index, nm_struct, spmm)
from _cases import make_weights, make_x, relu_x
from _tiles import AXES, BUILDERS, FAMILIES, grid, tiling
from reference import assert_conv2d, assert_linear
from sparsekern.ops.conv import ConvGeometry

_c = c_backend()
ISAS = _c.isas() if _c is not None else []   # the variants this CPU runs

pytestmark = pytest.mark.skipif(_c is None, reason="C library not loadable")

SENTINEL = np.float32(-7777.0)


def _params(family: str) -> list:
    return [pytest.param(isa, case, id=f"{isa}-{case.name}")
            for isa in ISAS for case in grid(family, isa)]


def _fp(a: np.ndarray):
    return _c.ffi.cast("float *", addr(a))


def _x_buffer(rng, rows: int, cols: int, pad: int) -> np.ndarray:
    """(rows, cols + pad) float32: random in the first cols columns, NaN in the padding
    (which the kernels must never read)."""
    buf = np.full((rows, cols + pad), np.nan, np.float32)
    buf[:, :cols] = make_x(rng, rows, cols)
    return buf


def _check_sentinels(Ybuf: np.ndarray, rows: int, cols: int) -> None:
    assert np.all(Ybuf[:rows, cols:] == SENTINEL), "wrote into Y's padding (ld > width)"
    assert np.all(Ybuf[rows:] == SENTINEL), "wrote past Y's last row"


# ------------------------------------------------------------------------------- the grids

@pytest.mark.parametrize("isa,case", _params("spmm_unstructured"))
def test_spmm_unstructured_edges(rng, isa, case):
    m, k, n = case.m, case.k, case.n
    W = make_weights(rng, m, k, case.density, case.pattern)
    Wp = sk.pack(W)
    # batch 1 in a vector (ldx = 1: the kernels' gather path), wider X strided
    ldx = n + 1 if n > 1 else 1
    Xbuf = _x_buffer(rng, k, n, ldx - n)
    Ybuf = np.full((m + 1, n + 2), SENTINEL, np.float32)
    bias = make_x(rng, m)
    assert spmm(_c, isa, csr_struct(_c, Wp), Xbuf, n, ldx, bias, Ybuf, n + 2) == SK_OK
    # Y = W @ X + bias[:, None]  ==  linear(X.T, W, bias).T
    assert_linear(np.ascontiguousarray(Ybuf[:m, :n].T), Xbuf[:, :n].T, W, bias,
                  what=f"{isa} {case}")
    _check_sentinels(Ybuf, m, n)


@pytest.mark.parametrize("isa,case", _params("spmm_nm"))
def test_spmm_nm_edges(rng, isa, case):
    m, k, n = case.m, case.k, case.n
    Wp = sk.pack(make_weights(rng, m, k, case.density, case.pattern), case.nm)
    W = Wp.to_dense()
    Xbuf = _x_buffer(rng, k, n, 3)
    Ybuf = np.full((m + 1, n + 5), SENTINEL, np.float32)
    bias = make_x(rng, m)
    st = _c.lib.sk_f32_spmm_nm_isa(isa_index(isa), nm_struct(_c, Wp), _fp(Xbuf), n, n + 3,
                                   _fp(bias), _fp(Ybuf), n + 5)
    assert st == SK_OK
    assert_linear(np.ascontiguousarray(Ybuf[:m, :n].T), Xbuf[:, :n].T, W, bias,
                  what=f"{isa} {case}")
    _check_sentinels(Ybuf, m, n)


def _act_x(rng, case) -> np.ndarray:
    n, k = case.n, case.k
    if case.x == "zero":
        return np.zeros((n, k), np.float32)
    if case.x == "relu":
        return relu_x(rng, n, k)
    x = make_x(rng, n, k)
    x[x == 0] = 1.0
    if case.x == "relu_shared":
        x[:, rng.random(k) < 0.5] = 0
    else:
        assert case.x == "dense", case.x
    return x


@pytest.mark.parametrize("isa,case", _params("act_linear"))
def test_act_linear_edges(rng, isa, case):
    m, k, n = case.m, case.k, case.n
    W = make_weights(rng, m, k, case.density, case.pattern)
    Wa = sk.pack(W, "act")   # kept alive: the handle points into its arrays
    h = _c._act_handle(Wa)
    x = _act_x(rng, case)
    X = np.full((n, k + 3), np.nan, np.float32)
    X[:, :k] = x
    Ybuf = np.full((n + 1, m + 2), SENTINEL, np.float32)
    bias = make_x(rng, m)
    na = _c.ffi.new("int64_t *")
    # threshold 0, magnitude, no top-k: the active channels of a row are its nonzeros
    st = _c.lib.sk_f32_act_linear_isa(isa_index(isa), h, n, _fp(X), k + 3, _fp(bias), _fp(Ybuf),
                                      m + 2, 0.0, -1, _c.lib.SK_ACT_MAGNITUDE, na)
    assert st == SK_OK
    assert na[0] == np.count_nonzero(x)
    assert_linear(np.ascontiguousarray(Ybuf[:n, :m]), x, W, bias, what=f"{isa} {case}")
    _check_sentinels(Ybuf, n, m)


@pytest.mark.parametrize("isa,case", _params("conv2d_sparse"))
def test_conv2d_sparse_edges(rng, isa, case):
    cg = case.c_in // case.groups
    W4 = make_weights(rng, case.c_out, case.k, case.density, case.pattern).reshape(
        case.c_out, cg, case.kh, case.kw)
    Wp = sk.pack(W4.reshape(case.c_out, -1))   # kept alive: the handle points into it
    h = csr_struct(_c, Wp)
    ho, wo = case.h_out, case.w_out
    s, p, d = case.stride, case.padding, case.dilation
    geom = ConvGeometry(case.batch, case.c_in, case.h, case.w, case.c_out, case.kh, case.kw,
                        case.groups, s, s, p, p, d, d, ho, wo)
    g = _c.ffi.new("sk_conv2d_geom *", geom._asdict())
    x = make_x(rng, case.batch, case.c_in, case.h, case.w)
    bias = make_x(rng, case.c_out)
    size = case.batch * case.c_out * ho * wo
    y = np.full(size + 16, SENTINEL, np.float32)
    st = _c.lib.sk_f32_conv2d_sparse_isa(isa_index(isa), h, g, _fp(x), _fp(bias), _fp(y))
    assert st == SK_OK
    assert_conv2d(y[:size].reshape(case.batch, case.c_out, ho, wo), x, W4, bias, stride=s,
                  padding=p, dilation=d, groups=case.groups, what=f"{isa} {case}")
    assert np.all(y[size:] == SENTINEL), "wrote past y's end"


# ------------------------------------------------------------------------- sk_kernel_tiling

def _family_id(family: str) -> int:
    return getattr(_c.lib, f"SK_FAMILY_{family.upper()}")


def _other_arch_isas() -> list[str]:
    """ISAs of another architecture, never compiled into this build."""
    machine = platform.machine().lower()
    if machine in ("x86_64", "amd64"):
        return ["neon", "wasmsimd"]
    if machine in ("aarch64", "arm64"):
        return ["avx2", "avx512", "wasmsimd"]
    return []


def test_tiling_status_codes():
    lib, ffi = _c.lib, _c.ffi
    out = ffi.new("sk_tiling *")
    assert lib.SK_FAMILY_COUNT == len(FAMILIES)
    assert [_family_id(f) for f in FAMILIES] == list(range(len(FAMILIES)))
    for family, isa in ((-1, 0), (lib.SK_FAMILY_COUNT, 0), (99, 0), (0, -1),
                        (0, lib.SK_ISA_COUNT), (0, 99), (-1, -1)):
        assert lib.sk_kernel_tiling(family, isa, out) == SK_ERR_INVALID_ARG, (family, isa)
    for family in range(lib.SK_FAMILY_COUNT):
        assert lib.sk_kernel_tiling(family, 0, ffi.NULL) == SK_ERR_INVALID_ARG
        for name in _other_arch_isas():
            assert lib.sk_kernel_tiling(family, isa_index(name), out) == SK_ERR_UNSUPPORTED, name
            with pytest.raises(ValueError, match="not compiled"):
                _c.tiling(FAMILIES[family], name)
    with pytest.raises(ValueError, match="family"):
        _c.tiling("spmm", "scalar")
    with pytest.raises(ValueError, match="ISA"):
        _c.tiling("spmm_nm", "sse2")


@pytest.mark.parametrize("family", FAMILIES)
def test_tiling_values_sane(family):
    """Every variant compiled in reports a tiling (every one this CPU runs, at least):
    column tiles positive, strictly decreasing, multiples of the last (one vector), then
    only 0 padding; steps and row tiles >= 1, blocks >= 0; the scalar one tiles nothing."""
    lib, ffi = _c.lib, _c.ffi
    compiled = []
    for isa in _c.isa_names:
        out = ffi.new("sk_tiling *")
        st = lib.sk_kernel_tiling(_family_id(family), isa_index(isa), out)
        assert st in (SK_OK, SK_ERR_UNSUPPORTED), (isa, st)
        assert st == SK_OK or isa not in ISAS, f"{isa} runs here but has no tiling"
        if st != SK_OK:
            continue
        compiled.append(isa)
        raw = list(out.n_tiles)
        used = raw[:len([v for v in raw if v])]
        assert used and raw == used + [0] * (len(raw) - len(used)), (isa, raw)
        assert all(a > b for a, b in zip(used, used[1:])), (isa, used)
        assert all(v % used[-1] == 0 for v in used), (isa, used)
        t = _c.tiling(family, isa)
        assert t["n_tiles"] == tuple(used)
        for name in ("k_step", "k_step1", "row_block", "row_block1"):
            assert t[name] >= 1, (isa, name, t)
        for name in ("k_block", "row_group", "col_block", "col_block1"):
            assert t[name] >= 0, (isa, name, t)
        if isa == "scalar":
            assert (t["n_tiles"], t["k_step"], t["k_step1"], t["row_block"]) == ((1,), 1, 1, 1)
    assert set(ISAS) <= set(compiled)


def _made_up_tiling() -> dict:
    """A tiling no kernel has (odd widths, steps and blocks), for the grid builders."""
    return {"n_tiles": (48, 24, 12), "k_step": 6, "k_step1": 10, "k_block": 40,
            "row_block": 5, "row_block1": 7, "row_group": 9, "col_block": 96, "col_block1": 300}


@pytest.mark.parametrize("family", FAMILIES)
def test_grid_follows_tiling(family):
    """Each grid holds widths at, below and above every column tile, the row counts around
    each row tile and (unstructured, act) the row lengths around each step of its
    variant's tiling, and of a made-up one: the grids move with the kernels' blocking.
    Case names are unique."""
    cols, rows = AXES[family]
    tilings = []
    for isa in _c.isa_names:   # also the variants compiled in that this CPU cannot run
        try:
            tilings.append((isa, tiling(family, isa)))
        except ValueError:
            assert isa not in ISAS
    tilings.append(("made-up", _made_up_tiling()))
    for isa, t in tilings:
        cases = BUILDERS[family](t)
        names = [c.name for c in cases]
        assert len(names) == len(set(names)), (isa, family)
        widths = {getattr(c, cols) for c in cases}
        heights = {getattr(c, rows) for c in cases}
        for w in t["n_tiles"]:
            assert {w - 1, w, w + 1} - {0} <= widths, (isa, family, w, sorted(widths))
        for r in {t["row_block"], t["row_block1"]}:
            assert {r - 1, r + 1} - {0} <= heights, (isa, family, r, sorted(heights))
        if family in ("spmm_unstructured", "act_linear"):
            ks = {c.k for c in cases}
            for s in {t["k_step"], t["k_step1"]}:
                assert {s - 1, s, s + 1, 2 * s + 1} - {0} <= ks, (isa, family, s, sorted(ks))
