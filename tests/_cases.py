"""Named shape cases and weight generators (no expected values here: see reference.py).

The grid follows XNNPACK's spmm edge-case list, translated to this library's
kernels: the AVX2 variant tiles N by 32/16/8 + a masked tail, the AVX-512 one by
64/32/16 + a masked tail; for N == 1 both assemble 16/8 nonzeros per step + a scalar
tail (row lengths 0..40 cover it); for N > 64 (and K <= 2**20) the operator copies X
in blocks of 64 columns, so N = 65, 100, 257 leave 1-, 36- and 1-column last blocks
(a last block of 1 column runs the N == 1 path). Edit the grid when the kernels'
blocking changes.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import reference


@dataclass(frozen=True)
class Case:
    name: str
    m: int
    k: int
    n: int
    density: float = 0.3
    pattern: str = "random"   # see make_weights

    def __str__(self):
        return self.name


def make_weights(rng, m, k, density=0.3, pattern="random") -> np.ndarray:
    """Dense float32 W (M, K) whose nonzeros follow ``pattern``:

    random      each entry nonzero with probability ``density``
    rowlen      row i has min(i, K) nonzeros (every row length 0, 1, 2, ... incl. empty)
    empty_rows  random, with every third row empty
    empty_cols  random, with every other column empty
    zero        all zeros
    dense       no zeros
    """
    vals = rng.standard_normal((m, k)).astype(np.float32)
    vals[vals == 0] = 1.0
    if pattern == "dense":
        return vals
    if pattern == "zero":
        return np.zeros((m, k), np.float32)
    if pattern == "rowlen":
        mask = np.zeros((m, k), bool)
        for i in range(m):
            mask[i, rng.choice(k, size=min(i, k), replace=False)] = True
        return np.where(mask, vals, np.float32(0))
    mask = rng.random((m, k)) < density
    if pattern == "empty_rows":
        mask[::3] = False
    elif pattern == "empty_cols":
        mask[:, ::2] = False
    elif pattern != "random":
        raise ValueError(pattern)
    return np.where(mask, vals, np.float32(0))


def make_x(rng, *shape) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32)


def relu_x(rng, *shape, zero=0.5):
    """make_x with about ``zero`` of the entries set to 0 (a ReLU's output), for the act tests."""
    x = make_x(rng, *shape)
    x[rng.random(shape) < zero] = 0
    return x


# N:M patterns (the format and op tests), "N:M" -> (N, M), and W pruned by the reference mask
NM_PATTERNS = ["2:4", "1:4", "3:4", "1:8", "2:8", "3:8", "4:8", "5:8", "7:8",
               "1:16", "2:16", "4:16", "5:16", "8:16", "15:16"]


def nm_split(pattern):
    n, m = pattern.split(":")
    return int(n), int(m)


def nm_pruned(W, pattern):
    """W with the reference mask applied (what pack(W, pattern) must hold)."""
    return np.where(reference.nm_mask(W, *nm_split(pattern)), W, np.float32(0))


def _grid() -> list[Case]:
    cases = [
        Case("1x1x1", 1, 1, 1, pattern="dense"),
        Case("1x1x1-zero", 1, 1, 1, pattern="zero"),
        Case("m1-k37-n5", 1, 37, 5, 0.5),
        Case("m1-k100-n1", 1, 100, 1, 0.5),
        Case("k1-n17", 9, 1, 17, 0.5),
        Case("k1-n1", 9, 1, 1, 0.5),
        # N == 1 (gather path): every row length 0..39 around the 8/16/32 steps
        Case("gemv-rowlen-k50", 40, 50, 1, pattern="rowlen"),
        Case("gemv-dense-k70", 5, 70, 1, pattern="dense"),
        Case("gemv-random-k1000", 30, 1000, 1, 0.05),
        # every row length with N in the vector tiles
        Case("rowlen-k50-n40", 40, 50, 40, pattern="rowlen"),
        # empty rows, empty columns, all-zero and fully dense W
        Case("empty-rows", 20, 30, 19, pattern="empty_rows"),
        Case("empty-cols", 20, 30, 19, pattern="empty_cols"),
        Case("all-zero", 20, 30, 19, pattern="zero"),
        Case("all-zero-n1", 20, 30, 1, pattern="zero"),
        Case("dense", 20, 30, 19, pattern="dense"),
        Case("dense-n1", 20, 30, 1, pattern="dense"),
        # larger K with N > 64 (X copied in column blocks) and N < 64 (X used in place)
        Case("colblock-k2000-n100", 7, 2000, 100, 0.05),
        Case("colblock-k2000-n49", 7, 2000, 49, 0.05),
        Case("colblock-k30000-n33", 5, 30000, 33, 0.002),
        # zero-size shapes
        Case("m0", 0, 5, 3), Case("k0", 5, 0, 3), Case("n0", 5, 3, 0),
        Case("m0-k0", 0, 0, 4), Case("k0-n0", 3, 0, 0), Case("m0-k0-n0", 0, 0, 0),
        Case("k0-n1", 4, 0, 1),
    ]
    # K not a multiple of the vector widths 8 and 16, dense rows (gather tails) and tiles
    for k in (7, 9, 15, 16, 17, 31, 33, 47, 65):
        cases.append(Case(f"dense-k{k}-n1", 3, k, 1, pattern="dense"))
        cases.append(Case(f"dense-k{k}-n21", 3, k, 21, pattern="dense"))
    # N around every tile edge (8/16/32/64 + tails) and the 64-column block edge
    for n in list(range(1, 18)) + [31, 32, 33, 63, 64, 65, 100, 257]:
        cases.append(Case(f"n{n}", 13, 37, n, 0.3, pattern="empty_rows"))
    names = [c.name for c in cases]
    assert len(names) == len(set(names)), "case names must be unique"
    return cases


GRID = _grid()
