"""The committed seeds of the sk.load targets: valid files of every format and dtype,
plus a few corrupted ones (make_corpus.py writes them to corpus/)."""
from __future__ import annotations

import numpy as np

from _harness import make_zip, npy_bytes, saved_bytes, sk, zip_members


def _rng(seed: int):
    return np.random.default_rng(seed)


def _sparse(rng, shape, density=0.4, dtype=np.float32):
    W = rng.standard_normal(shape).astype(dtype)
    W[rng.random(shape) > density] = 0
    return W


def _edit(data: bytes, name: str, array=None, blob=None, drop=False, add=None,
          deflate=False) -> bytes:
    """The archive with member ``name``.npy replaced (by ``array`` or raw ``blob``),
    dropped, or a member ``add`` = (name, array) added."""
    out = []
    for n, b in zip_members(data):
        if n == name + ".npy":
            if drop:
                continue
            b = blob if blob is not None else npy_bytes(array)
        out.append((n, b))
    if add is not None:
        out.append((add[0] + ".npy", npy_bytes(add[1])))
    return make_zip(out, deflate)


def _member(data: bytes, name: str) -> np.ndarray:
    import io

    return np.lib.format.read_array(io.BytesIO(dict(zip_members(data))[name + ".npy"]))


def unstructured_seeds() -> dict:
    r = _rng(1)
    W = _sparse(r, (5, 7))
    base = saved_bytes(sk.pack(W))
    nonfinite = _sparse(r, (3, 4), 0.8)
    nonfinite[0, 1], nonfinite[2, 3] = np.inf, np.nan
    wide = np.zeros((2, 70000), np.float32)
    wide[0, [3, 65535, 65536, 69999]] = [1, 2, 3, 4]
    seeds = {
        "valid-5x7": base,
        "valid-0x0": saved_bytes(sk.pack(np.zeros((0, 0)))),
        "valid-1x1": saved_bytes(sk.pack(np.ones((1, 1)))),
        "valid-no-nonzeros-4x6": saved_bytes(sk.pack(np.zeros((4, 6)))),
        "valid-nonfinite-3x4": saved_bytes(sk.pack(nonfinite)),
        "valid-dense-17x33": saved_bytes(sk.pack(r.standard_normal((17, 33)))),
        "valid-pruned-64x65": saved_bytes(sk.pack(r.standard_normal((64, 65)), sparsity=0.9)),
        "valid-int32-col-idx-2x70000": saved_bytes(sk.pack(wide)),
        "valid-deflated-5x7": make_zip(zip_members(base), deflate=True),
        "valid-row-ptr-int32": _edit(base, "row_ptr", _member(base, "row_ptr").astype(np.int32)),
        "valid-values-float64": _edit(base, "values", _member(base, "values").astype(np.float64)),
    }
    col = _member(base, "col_idx").copy()
    col[-1] = 7
    rp = _member(base, "row_ptr").copy()
    rp[2], rp[3] = rp[3], rp[2] + 0
    seeds.update({
        "bad-col-idx-out-of-range": _edit(base, "col_idx", col),
        "bad-row-ptr-decreasing": _edit(base, "row_ptr", rp[::-1].copy()),
        "bad-col-idx-float": _edit(base, "col_idx", col.astype(np.float32)),
        "bad-extra-member": _edit(base, "values", _member(base, "values"), add=("extra", col)),
        "bad-missing-values": _edit(base, "values", drop=True),
        "bad-truncated": base[:len(base) // 2],
        "bad-version-2": _edit(base, "version", np.array(2)),
        "bad-values-header-2**40": _edit(base, "values", blob=npy_bytes(np.zeros(4, np.float32))
                                         .replace(b"(4,)", b"(1099511627776,)")),
    })
    return seeds


def nm_seeds() -> dict:
    r = _rng(2)
    seeds = {}
    for pattern, shape in [("2:4", (8, 16)), ("1:4", (5, 7)), ("3:4", (3, 9)), ("1:8", (4, 20)),
                           ("4:8", (6, 8)), ("2:8", (3, 33)), ("1:16", (3, 40)),
                           ("8:16", (2, 16)), ("15:16", (2, 17)), ("2:4", (0, 8)),
                           ("2:4", (3, 0)), ("2:4", (64, 70))]:
        W = r.standard_normal(shape).astype(np.float32)
        seeds[f"valid-{pattern.replace(':', 'of')}-{shape[0]}x{shape[1]}"] = \
            saved_bytes(sk.pack(W, pattern))
    base = seeds["valid-2of4-8x16"]
    odd = seeds["valid-1of4-5x7"]
    meta = _member(base, "meta").copy()
    meta[0, -1] = 1                                 # a padding bit
    same = _member(base, "meta").copy()
    same[1, 0] = 0                                  # positions 0, 0 in one group
    vals = _member(odd, "values").copy()            # 1:4, K = 7: slot 1 is group 1's
    vals[0, 1] = 5.0
    pad_meta = _member(odd, "meta").copy()
    pad_meta[0, 0] = pad_meta[0, 0] & 0b11 | 3 << 2  # slot 1 at position 3: column 7 = K
    seeds.update({
        "valid-fortran-values": _edit(base, "values", np.asfortranarray(_member(base, "values"))),
        "valid-meta-int64": _edit(base, "meta", _member(base, "meta").astype(np.int64)),
        "bad-padding-bits": _edit(base, "meta", meta),
        "bad-equal-positions": _edit(base, "meta", same),
        "bad-padding-slot-nonzero": _edit(_edit(odd, "values", vals), "meta", pad_meta),
        "bad-values-shape": _edit(base, "values", _member(base, "values")[:, :-1].copy()),
        "bad-format-unicode-digits": _edit(base, "sparsekern_format", np.array("\u0662:\u0664")),
    })
    return seeds


def act_seeds() -> dict:
    r = _rng(3)
    inf = r.standard_normal((16, 16)).astype(np.float32)
    inf[3, 4] = np.inf
    base = saved_bytes(sk.pack(_sparse(r, (5, 7), 0.7), "act"))
    norms = _member(base, "norms").copy()
    norms[2] *= 1.5
    return {
        "valid-5x7": base,
        "valid-0x3": saved_bytes(sk.pack(np.zeros((0, 3)), "act")),
        "valid-3x0": saved_bytes(sk.pack(np.zeros((3, 0)), "act")),
        "valid-inf-16x16": saved_bytes(sk.pack(inf, "act")),
        "valid-64x8": saved_bytes(sk.pack(r.standard_normal((64, 8)), "act")),
        "valid-fortran-wt": _edit(base, "wt", np.asfortranarray(_member(base, "wt"))),
        "valid-wt-float64": _edit(base, "wt", _member(base, "wt").astype(np.float64)),
        "bad-norms": _edit(base, "norms", norms),
        "odd-missing-norms": _edit(base, "norms", drop=True),
        "bad-wt-shape": _edit(base, "wt", _member(base, "wt").T.copy()),
    }


def conv_seeds() -> dict:
    r = _rng(4)
    seeds = {
        "valid-unstructured-4x3x3x3": saved_bytes(sk.pack(_sparse(r, (4, 3, 3, 3)))),
        "valid-unstructured-8x8x1x1": saved_bytes(sk.pack(_sparse(r, (8, 8, 1, 1)), sparsity=0.5)),
        "valid-depthwise-6x1x3x3": saved_bytes(sk.pack(r.standard_normal((6, 1, 3, 3)))),
        "valid-2of4-4x8x3x3": saved_bytes(sk.pack(r.standard_normal((4, 8, 3, 3)), "2:4")),
        "valid-1of8-3x16x1x1": saved_bytes(sk.pack(r.standard_normal((3, 16, 1, 1)), "1:8")),
        "valid-2of4-2x3x2x1": saved_bytes(sk.pack(r.standard_normal((2, 3, 2, 1)), "2:4")),
    }
    base = seeds["valid-unstructured-4x3x3x3"]
    nm = seeds["valid-2of4-4x8x3x3"]
    seeds.update({
        "valid-fortran-nm-values": _edit(nm, "values", np.asfortranarray(_member(nm, "values"))),
        "bad-inner-act": _edit(base, "inner_format", np.array("act")),
        "bad-inner-conv2d": _edit(base, "inner_format", np.array("conv2d")),
        "bad-inner-bytes": _edit(base, "inner_format", np.array(b"unstructured")),
        "bad-kernel-0": _edit(base, "shape", np.array([4, 3, 0, 9])),
        "bad-inner-mismatch": _edit(nm, "inner_format", np.array("unstructured")),
    })
    return seeds
