"""Edge-case grids built from the tilings the C library reports (sk_kernel_tiling), one
grid per kernel family and ISA variant: shapes at, one below and one above every column
tile, entry step, row tile and operator block of that variant, plus empty rows, all-zero
and fully dense W. Change a kernel's blocking and its grid moves with it. No expected
values here (see reference.py); tests/kernels/test_kernel_edges.py runs the grids.

Each builder takes a tiling dict (``CBackend.tiling``: the fields of sk_tiling in
sparsekern.h, ``n_tiles`` without its 0 padding), so it can also be fed a made-up one.
"""
from __future__ import annotations

from dataclasses import dataclass

from _capi import c_backend
from _cases import Case
from sparsekern.ops.conv import conv_output_size

FAMILIES = ("spmm_unstructured", "spmm_nm", "act_linear", "conv2d_sparse")

# N:M patterns of the grid: 2:4, 1:4, 1:8 have compile-time specializations, 3:8 and 4:16
# run the generic code, 15:16 has more slots per group than a batch-1 step has lanes
NM_EDGE_PATTERNS = ("2:4", "1:4", "1:8", "3:8", "4:16", "15:16")


def tiling(family: str, isa: str) -> dict:
    """The tiling of ``family``'s ``isa`` variant, from the C library."""
    return c_backend().tiling(family, isa)


@dataclass(frozen=True)
class NMCase(Case):
    nm: str = "2:4"   # W = pack(make_weights(...), nm).to_dense()


@dataclass(frozen=True)
class ActCase(Case):
    """m outputs (rows of W), k input channels, n batch rows; x's pattern:
    dense        no zeros (every channel of every row active)
    zero         all zeros (nothing selected)
    relu         about half zeros, at random per row
    relu_shared  about half zeros, the same channels in every row"""
    x: str = "dense"


@dataclass(frozen=True)
class ConvCase:
    """conv2d(x[batch, c_in, h, w], W[c_out, c_in/groups, kh, kw]) with symmetric padding;
    W's nonzeros as make_weights(c_out, c_in/groups*kh*kw, density, pattern)."""
    name: str
    c_out: int
    c_in: int
    h: int
    w: int
    kh: int = 3
    kw: int = 3
    stride: int = 1
    padding: int = 1
    dilation: int = 1
    groups: int = 1
    density: float = 0.5
    pattern: str = "random"
    batch: int = 1

    @property
    def h_out(self) -> int:
        return conv_output_size(self.h, self.kh, self.stride, 2 * self.padding, self.dilation)

    @property
    def w_out(self) -> int:
        return conv_output_size(self.w, self.kw, self.stride, 2 * self.padding, self.dilation)

    @property
    def k(self) -> int:
        return self.c_in // self.groups * self.kh * self.kw

    def __str__(self):
        return self.name


# the axes of each family's cases: (columns, rows) in the sense of sk_tiling
AXES = {"spmm_unstructured": ("n", "m"), "spmm_nm": ("n", "m"), "act_linear": ("m", "n"),
        "conv2d_sparse": ("w_out", "h_out")}


def _around(*edges: int) -> set[int]:
    """e - 1, e, e + 1 for every edge e > 0, keeping the positive ones."""
    return {v for e in edges if e > 0 for v in (e - 1, e, e + 1) if v > 0}


def _steps(s: int) -> list[int]:
    """Row lengths around an inner step s: the tail below it (1..3), s and 2s, each +-1."""
    return sorted(set(range(1, min(3, s - 1) + 1)) | _around(s, 2 * s))


def _layout(t: dict) -> tuple[tuple[int, ...], int, int, int]:
    """(tiles, one vector, the widest tile, a width that runs every tile once and the
    longest tail)."""
    tiles = t["n_tiles"]
    vec = tiles[-1]
    return tiles, vec, tiles[0], sum(tiles) + vec - 1


class _Grid(dict):
    def add(self, case):
        self.setdefault(case.name, case)

    def cases(self) -> list:
        return list(self.values())


def spmm_unstructured_grid(t: dict) -> list[Case]:
    """CSR W (m, k) @ X (k, n). Row lengths: dense W of k columns has rows of exactly k
    nonzeros, "rowlen" every length 0..m-1."""
    tiles, vec, widest, n_all = _layout(t)
    s, s1, cb = t["k_step"], t["k_step1"], t["col_block"]
    rb, kb = t["row_block"], t["k_block"]
    g = _Grid()
    # batch 1: row lengths around the gather step
    for k in _steps(s1):
        g.add(Case(f"n1-k{k}", 5, k, 1, pattern="dense"))
    g.add(Case(f"n1-rowlen{2 * s1 + 2}", 2 * s1 + 2, 2 * s1 + 2, 1, pattern="rowlen"))
    # batch > 1: row lengths around the nonzeros per step, one vector and every tile
    for n in sorted({vec, n_all} - {1}):
        for k in _steps(s):
            g.add(Case(f"n{n}-k{k}", 5, k, n, pattern="dense"))
        g.add(Case(f"n{n}-rowlen{2 * s + 2}", 2 * s + 2, 2 * s + 2, n, pattern="rowlen"))
    # N around every tile width, the tail, and the operator's column block
    ns = {1, 2, vec - 1, n_all} | _around(*tiles) | _around(cb) | {2 * cb + 1}
    for n in sorted(v for v in ns if v > 0):
        g.add(Case(f"n{n}", 13, 37, n, 0.3, pattern="empty_rows"))
    # M around the row tile, rows long enough for it (k_block nonzeros on average)
    n_rows = widest + vec + 1
    k_rows = max(kb, 2 * s1) + 1
    for m in sorted({1, 2 * rb + 1} | _around(rb, t["row_block1"])):
        g.add(Case(f"m{m}-k{k_rows}-n{n_rows}", m, k_rows, n_rows, pattern="dense"))
    for k in sorted(_around(kb)):   # at and around the row length the row tiles need
        g.add(Case(f"m{2 * rb + 1}-k{k}-n{n_rows}", 2 * rb + 1, k, n_rows, pattern="dense"))
    # empty rows, all-zero and fully dense W
    for n in sorted({1, n_all}):
        for pattern in ("empty_rows", "zero", "dense"):
            g.add(Case(f"{pattern}-n{n}", 2 * rb + 3, 2 * s1 + 1, n, 0.5, pattern=pattern))
    return g.cases()


def spmm_nm_grid(t: dict) -> list[NMCase]:
    """N:M W (m, k) @ X (k, n), W from dense weights (every group holds N entries) unless
    the pattern says otherwise. K in columns: a batch-1 step covers k_step1 // N groups,
    a batch step k_step // N (at least one)."""
    tiles, vec, widest, _ = _layout(t)
    s, s1, cb, kb = t["k_step"], t["k_step1"], t["col_block"], t["k_block"]
    rb, rb1, rg = t["row_block"], t["row_block1"], t["row_group"]
    g = _Grid()
    for p in NM_EDGE_PATTERNS:
        N, M = (int(v) for v in p.split(":"))
        span1 = max(s1 // N, 1) * M
        for k in sorted(_around(M, span1, 2 * span1)):
            g.add(NMCase(f"{p}-n1-k{k}", 5, k, 1, pattern="dense", nm=p))
        span = max(s // N, 1) * M
        for k in sorted(_around(span) | {2 * span + 1}):
            g.add(NMCase(f"{p}-n{vec + 1}-k{k}", 5, k, vec + 1, pattern="dense", nm=p))
        for k in sorted({kb - 1, kb + 1, 2 * kb + 1} - {-1, 1} if kb else ()):
            g.add(NMCase(f"{p}-n{widest}-k{k}", rb + 1, k, widest, pattern="dense", nm=p))
        for n in sorted({1, widest + 1}):
            for pattern in ("empty_rows", "zero", "dense"):
                g.add(NMCase(f"{p}-{pattern}-n{n}", 2 * rb + 1, 2 * M + 3, n, pattern=pattern,
                             nm=p))
    # N and M, on a specialized pattern and a generic one
    for p in ("2:4", "3:8"):
        M = int(p.split(":")[1])
        ns = ({1, 2, 3} | _around(*tiles) | _around(cb) | {2 * cb + 1}
              | {v * vec + d for v in range(1, widest // vec + 1) for d in (-1, 1)})
        for n in sorted(v for v in ns if v > 0):
            g.add(NMCase(f"{p}-n{n}", 7, 4 * M + 3, n, pattern="dense", nm=p))
        ms = {1} | _around(rb, rb1) | {2 * rb + 1, 2 * rb1 + 1} | ({rg - 1, rg + 1} if rg else set())
        for m in sorted(v for v in ms if v > 0):
            g.add(NMCase(f"{p}-m{m}", m, 2 * M + 1, widest + 1, pattern="dense", nm=p))
    return g.cases()


def act_linear_grid(t: dict) -> list[ActCase]:
    """y[n, m] = x[n, k] @ W[m, k].T over the active channels (threshold 0: x's nonzeros)."""
    tiles, vec, widest, m_all = _layout(t)
    u, u1, rb, rg = t["k_step"], t["k_step1"], t["row_block"], t["row_group"]
    cb, cb1 = t["col_block"], t["col_block1"]
    g = _Grid()
    # active channels around the channel step: batch 1, one row tile, a tile and a row
    for n in sorted({1, rb, rb + 1}):
        for k in _steps(u1 if n == 1 else u):
            g.add(ActCase(f"n{n}-k{k}", m_all, k, n, pattern="dense"))
    # outputs around every column tile and the tail
    for n in sorted({1, rb}):
        for m in sorted(v for v in {1, 2, vec - 1, m_all} | _around(*tiles) if v > 0):
            g.add(ActCase(f"n{n}-m{m}", m, 2 * u + 1, n, pattern="dense"))
    # batch rows around the row tile and the operator's union block
    ns = ({1, 2, 2 * rb + 1} | _around(rb, t["row_block1"])
          | (_around(rg) | {2 * rg + 1} if rg else set()))
    for n in sorted(ns):
        g.add(ActCase(f"n{n}", widest + 1, 2 * u + 1, n, pattern="dense"))
    # the operator's column tiles: a block of rows shares col_block outputs per tile, batch 1
    # runs whole rows up to col_block1 outputs
    if cb:
        for rows in sorted({2, rg or rb}):
            tile = cb // rows
            for m in (tile + 1, 2 * tile + 1):
                g.add(ActCase(f"n{rows}-m{m}", m, u + 1, rows, pattern="dense"))
    if cb1:
        for m in (cb1, cb1 + 1):
            g.add(ActCase(f"n1-m{m}", m, u + 1, 1, pattern="dense"))
    # x with zeros (row skipping, union and per-row paths), empty outputs, all-zero and
    # fully dense W
    for n in sorted({1, rg or rb}):
        for x in ("zero", "relu", "relu_shared"):
            g.add(ActCase(f"x-{x}-n{n}", widest + vec + 1, 4 * u + 1, n, pattern="dense", x=x))
        for pattern in ("empty_rows", "zero", "dense"):
            g.add(ActCase(f"{pattern}-n{n}", widest + vec + 1, 4 * u + 1, n, 0.5,
                          pattern=pattern, x="relu"))
    return g.cases()


def conv2d_sparse_grid(t: dict) -> list[ConvCase]:
    """Direct sparse conv2d, 3x3 kernels with padding 1 unless said otherwise (so w_out = w,
    h_out = h, and the border taps are partial)."""
    tiles, vec, widest, _ = _layout(t)
    rb, rb1, kb, rg = t["row_block"], t["row_block1"], t["k_block"], t["row_group"]
    g = _Grid()
    # output row widths around every chunk width and the tail
    ws = {1, 2, vec - 1, widest + vec + 1, 2 * widest + 1} | _around(*tiles)
    for w in sorted(v for v in ws if v > 0):
        g.add(ConvCase(f"w{w}", 3, 2, rb + 1, w))
    # output rows around the row tiles and the operator's row block
    hs = {1, 2 * rb + 1} | _around(rb, rb1) | (_around(rg) | {2 * rg + 1} if rg else set())
    for h in sorted(hs):
        g.add(ConvCase(f"h{h}", 3, 2, h, vec + 1))
    g.add(ConvCase(f"h{2 * rg + 1}-depthwise", 4, 4, 2 * rg + 1, vec + 1, groups=4))
    # taps per channel around k_block (channel i holds min(i, K) taps), rows wider than it
    ntap = max(kb, 8) + 2
    c_in = -(-ntap // 9)
    g.add(ConvCase(f"taps0-{ntap}", ntap + 1, c_in, rb + 1, max(kb, widest) + vec + 1,
                   pattern="rowlen"))
    # strides (column-phase planes), dilation, groups, large paddings, the 1x1 SpMM path
    wide = widest + vec + 1
    g.add(ConvCase(f"stride2-w{2 * wide + 1}", 3, 2, 2 * rb + 3, 2 * wide + 1, stride=2))
    g.add(ConvCase(f"stride3-w{3 * vec + 2}", 3, 2, 3 * rb + 2, 3 * vec + 2, stride=3))
    g.add(ConvCase("dilation2", 3, 2, rb + 3, wide, dilation=2, padding=2))
    g.add(ConvCase("groups2", 4, 4, rb + 1, wide, groups=2))
    g.add(ConvCase("k5-pad0", 3, 2, rb + 5, wide + 4, kh=5, kw=5, padding=0))
    g.add(ConvCase("k3-pad3", 3, 2, rb + 1, vec + 1, padding=3))   # taps with no valid column
    g.add(ConvCase("k1x3-pad0", 3, 2, rb + 1, wide, kh=1, kw=3, padding=0))
    g.add(ConvCase("1x1-spmm", 5, 3, rb + 1, wide, kh=1, kw=1, padding=0))
    g.add(ConvCase("batch2", 3, 2, rb + 1, wide, batch=2))
    # empty channels, all-zero and fully dense W
    for pattern in ("empty_rows", "zero", "dense"):
        g.add(ConvCase(f"{pattern}", 4, 2, rb + 1, wide, pattern=pattern))
    return g.cases()


BUILDERS = {"spmm_unstructured": spmm_unstructured_grid, "spmm_nm": spmm_nm_grid,
            "act_linear": act_linear_grid, "conv2d_sparse": conv2d_sparse_grid}


def grid(family: str, isa: str) -> list:
    """The named edge cases of ``family`` for the ``isa`` variant's tiling."""
    return BUILDERS[family](tiling(family, isa))
