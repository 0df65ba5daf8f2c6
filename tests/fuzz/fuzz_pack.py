"""sk.pack(W, format, **options) (and sk.nm_mask) for 2-D and 4-D W in any dtype and
layout, every format name (valid or not) and random options: refused with
ValueError/TypeError, or a packed matrix that keeps what the documented pruning keeps
(sparsity=: the round(s·size) smallest |w| go, zeros never stored; N:M: the N largest of
each group, ties to the lower column; prune=False: W as is) and multiplies right."""
from __future__ import annotations

import sys

import numpy as np

from _harness import (Finding, Rejected, Source, Unchanged, call, dim, floats, fuzz_main,
                      present, same_array, seed_bytes, sk)
from _formats import (PATTERNS, check_conv_products, check_frozen, check_products,
                      classify_pattern, packed_arrays, work_ok)
from fuzz_construct_nm import BAD_PATTERNS
import reference

SPARSITIES = [0, 0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 0.999, 1, 1.0, np.float32(0.3), np.float64(0.5),
              None]
BAD_SPARSITIES = [-0.1, 1.1, float("nan"), float("inf"), True, "0.5", 2, [0.5]]


def test_one_input(data: bytes) -> None:
    src = Source(data)
    rng = src.rng()
    odd = src.below(32)                # 0 (exhausted input) is the plain case
    nd = 4 if src.chance(3) else 2
    if odd == 31:
        nd = src.pick([0, 1, 3, 5])
    if nd == 4:
        shape = (dim(src, large=64) % 9, 1 + src.below(6), 1 + src.below(4), 1 + src.below(4))
        if src.chance(1, 16):
            shape = tuple(src.below(3) for _ in range(4))
    else:
        shape = tuple(dim(src) for _ in range(nd))
    if not work_ok(*shape) or (nd == 4 and not work_ok(shape[0], *shape)):
        return
    finite = not src.chance(1, 8)
    W = floats(src, rng, shape, nonfinite=not finite)
    arg, logical = present(src, W)
    valid = True
    if odd == 30:
        arg, valid = src.pick([W.astype(np.complex64), W.astype(str), W.astype(object),
                               None, "W"]), False
    finite = bool(np.isfinite(logical).all())
    fmt = src.pick(["unstructured", "unstructured", "act", "conv2d"] + PATTERNS)
    if odd == 29:
        fmt = src.pick(BAD_PATTERNS + ["ACT", "unstructured ", "", "dense", None])
    opts = {}
    nm, _, _ = classify_pattern(fmt)
    if fmt in ("unstructured", "conv2d"):
        if src.chance(5):
            opts["sparsity"] = src.pick(SPARSITIES)
        if odd == 28:
            opts["sparsity"], valid = src.pick(BAD_SPARSITIES), False
    elif nm is not None and src.chance(4):
        opts["prune"] = src.pick([True, False, np.bool_(False)])
        if odd == 28:
            opts["prune"], valid = src.pick([1, 0, "yes", None]), False
    if odd == 27:
        key = src.pick(["sparsity", "prune", "foo"])
        opts[key] = 0.5
        valid = valid and key == "sparsity"      # prune must be a bool
    # validity, from the documented rules
    known = fmt in ("unstructured", "act", "conv2d") or nm is not None
    allowed = {"unstructured": {"sparsity"}, "conv2d": {"sparsity"}, "act": set()}.get(
        fmt, {"prune"})
    if not known or set(opts) - allowed or nd not in (2, 4):
        valid = False
    if nd == 2 and fmt == "conv2d" or nd == 4 and fmt == "act":
        valid = False
    pruning = opts.get("sparsity") is not None or nm is not None and opts.get("prune", True)
    if (pruning or nd == 4) and not finite:
        valid = False
    prune_false = nm is not None and not opts.get("prune", True)
    if valid and prune_false:
        n, m = nm
        W2 = logical if nd == 2 else cin_last(logical)
        if W2.size and W2.shape[1]:
            pad = -W2.shape[1] % m
            counts = (np.pad(W2, ((0, 0), (0, pad))) != 0).reshape(W2.shape[0], -1, m).sum(2)
            if (counts > n).any():
                valid = False
    if valid and nd == 4 and 0 in shape:
        valid = None                    # an empty conv weight: documented neither way
    what = f"pack(W {shape} {type(arg).__name__}, {fmt!r}, {opts})"
    guard = Unchanged(W=arg)
    try:
        Wp = call(lambda: sk.pack(arg, fmt, **opts), valid, what)
    except Rejected:
        guard.check(what)
        return
    guard.check(what)
    check_pack(src, rng, Wp, logical, fmt, nm, opts, what)
    if nd == 2 and src.chance(1, 8):
        check_nm_mask(src, arg, logical, finite)


def cin_last(W4):
    """The (C_out, kh*kw*C_in) matrix in (ky, kx, ci) column order (N:M conv weights)."""
    co, cg, kh, kw = W4.shape
    return W4.transpose(0, 2, 3, 1).reshape(co, kh * kw * cg)


def check_pack(src, rng, Wp, W, fmt, nm, opts, what) -> None:
    nd = W.ndim
    inner = "unstructured" if fmt == "conv2d" else (f"{nm[0]}:{nm[1]}" if nm else fmt)
    want = "conv2d" if nd == 4 else inner
    if Wp.format != want or tuple(Wp.shape) != W.shape:
        raise Finding(f"{what}: got format {Wp.format!r} shape {Wp.shape}")
    if nd == 4 and Wp.inner_format != inner:
        raise Finding(f"{what}: inner format {Wp.inner_format!r}, expected {inner!r}")
    for name, a in packed_arrays(Wp).items():
        check_frozen(a, f"{what}: stored {name!r}")
    D = Wp.to_dense()
    if nm is not None:
        n, m = nm
        if not opts.get("prune", True):
            expect = W
        elif nd == 2:
            expect = np.where(reference.nm_mask(W, n, m), W, np.float32(0))
        else:                       # groups along C_in: the (ky, kx, ci) column order
            co, cg, kh, kw = W.shape
            W2 = cin_last(W)
            kept = np.where(reference.nm_mask(W2, n, m), W2, np.float32(0))
            expect = kept.reshape(co, kh, kw, cg).transpose(0, 3, 1, 2)
        if not same_array(D, np.ascontiguousarray(expect, np.float32)):
            raise Finding(f"{what}: to_dense() is not W with the N:M mask applied")
    elif opts.get("sparsity") is not None:
        check_magnitude_pruning(D, W, float(opts["sparsity"]), what)
    elif not same_array(D, W):
        raise Finding(f"{what}: to_dense() is not W")
    if fmt == "act":
        calc = reference.act_column_norms(W)
        if not np.allclose(Wp.norms, calc, rtol=1e-6, atol=0, equal_nan=True):
            raise Finding(f"{what}: norms {Wp.norms[:4]} differ from {calc[:4]}")
    if nd == 4:
        check_conv_products(src, rng, Wp, D, what)
    else:
        check_products(src, rng, Wp, D, what)


def check_magnitude_pruning(D, W, s, what) -> None:
    """D keeps entries of W unchanged, exactly min(size - round(s·size), nonzeros) of them,
    and none it dropped is larger in magnitude than one it kept."""
    kept = D != 0
    if not np.array_equal(D[kept], W[kept]):
        raise Finding(f"{what}: kept entries differ from W")
    want = min(W.size - int(round(s * W.size)), int(np.count_nonzero(W)))
    if int(kept.sum()) != want:
        raise Finding(f"{what}: kept {int(kept.sum())} entries, expected {want}")
    dropped = (W != 0) & ~kept
    if kept.any() and dropped.any() and np.abs(W[dropped]).max() > np.abs(W[kept]).min():
        raise Finding(f"{what}: dropped |w| = {np.abs(W[dropped]).max()} but kept "
                      f"{np.abs(W[kept]).min()}")


def check_nm_mask(src, arg, W, finite) -> None:
    n, m = src.pick([(2, 4), (1, 4), (1, 8), (4, 16), (0, 4), (4, 4), (2, 3), (2.0, 4), (True, 4)])
    valid = finite and isinstance(n, int) and not isinstance(n, bool) and m in (4, 8, 16) \
        and 1 <= n < m
    what = f"nm_mask(W {W.shape}, {n!r}, {m!r})"
    try:
        mask = call(lambda: sk.nm_mask(arg, n, m), valid, what)
    except Rejected:
        return
    if not same_array(mask, reference.nm_mask(W, n, m)):
        raise Finding(f"{what}: differs from the documented mask")


def seeds() -> dict:
    return seed_bytes(32, seed=14)


if __name__ == "__main__":
    fuzz_main(sys.modules[__name__])
