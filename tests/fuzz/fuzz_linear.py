"""sk.linear(x, Wp, bias) for every 2-D format, and for "act" its sparsifying options
(threshold=, topk=, select="magnitude"/"wina"), against the float64 reference on every
backend and ISA (for top-k: any valid choice among tied scores). Bad shapes, biases and
option values must raise ValueError/TypeError; the inputs must never change."""
from __future__ import annotations

import sys

import numpy as np

from _harness import (Finding, Rejected, Source, Unchanged, check_result, dim, floats,
                      fuzz_main, on_each_variant, present, seed_bytes, sk)
from _formats import random_format, random_packed, work_ok
import reference

THRESHOLDS = [0.0, 0, 0.05, 0.1, 0.5, 1, 2.5, 1e-3, 1e30, 1e40, float("inf"), np.float32(0.3),
              np.float64(1.5)]
BAD_THRESHOLDS = [(-0.1, "v"), (-1, "v"), (float("nan"), "v"), (True, "t"), ("0.5", "t"),
                  (1 + 2j, "t"), ([0.5], "t")]
BAD_TOPK = [(-1, "v"), (1.5, "t"), (True, "t"), ("3", "t"), (np.float64(2), "t"), (None, "ok")]
BAD_SELECT = [("WINA", "v"), ("", "v"), ("top", "v"), (1, "t"), (b"wina", "t")]


def options(src: Source, k: int):
    """(kwargs, valid) for an "act" weight."""
    kw, valid = {}, True
    if src.chance(5):
        if src.chance(1, 12):
            kw["threshold"], _ = src.pick(BAD_THRESHOLDS)
            valid = False
        else:
            kw["threshold"] = src.pick(THRESHOLDS)
    if src.chance(4):
        if src.chance(1, 12):
            kw["topk"], how = src.pick(BAD_TOPK)
            valid = valid and how == "ok"
        else:
            kw["topk"] = src.pick([0, 1, 2, 3, max(k - 1, 0), k, k + 1, 2**62, 2**70,
                                   np.int64(2), np.uint8(1)])
    if src.chance(4):
        if src.chance(1, 12):
            kw["select"], _ = src.pick(BAD_SELECT)
            valid = False
        else:
            kw["select"] = src.pick(["wina", "magnitude"])
            if kw["select"] == "wina" and kw.get("threshold") is None and kw.get("topk") is None:
                valid = False
    return kw, valid


def test_one_input(data: bytes) -> None:
    src = Source(data)
    rng = src.rng()
    fmt = "act" if src.chance(1, 2) else random_format(src)
    m, k = dim(src), dim(src)
    Wp, W = random_packed(src, rng, fmt, m, k)
    valid = True
    form = src.below(12)
    if form <= 1:
        shape = (k,)
    elif form <= 8:
        shape = (dim(src), k)
    elif form <= 10:
        shape = (src.below(3), src.below(4), k)
    else:
        shape, valid = src.pick([(k + 1,), (), (3, k + 1), (k, 0) if k else (2,)]), False
    if not work_ok(m, *shape):
        return
    x = floats(src, rng, shape)
    arg, logical = present(src, x)
    bias = None
    if src.chance(4):
        bias = floats(src, rng, (m,))
        if src.chance(1, 12):
            bias, valid = src.pick([np.zeros(m + 1), np.zeros((1, m)), np.float32(1),
                                    np.zeros(m, np.complex64), "b"]), False
    kw = {}
    if fmt == "act":
        kw, ok = options(src, k)
        valid = valid and ok
    elif src.chance(1, 16):
        kw, valid = {src.pick(["threshold", "topk", "select"]): 1}, False
    what = f"linear(x {shape}, {fmt} {m}x{k}, bias {getattr(bias, 'shape', bias)}, {kw})"
    guard = Unchanged(x=arg, bias=bias)
    try:
        results = on_each_variant(src, lambda: sk.linear(arg, Wp, bias, **kw), what, valid)
    except Rejected:
        guard.check(what)
        return
    guard.check(what)
    b = None if bias is None else np.asarray(bias, np.float32)
    for name, Y in results:
        if fmt != "act":
            check_result(name, Y, what, reference.assert_linear, logical, W, b)
            continue
        try:
            check_result(name, Y, what, reference.assert_act_linear, logical, W, b,
                         threshold=kw.get("threshold"), topk=kw.get("topk"),
                         select=kw.get("select"))
        except ValueError as e:       # too many tied top-k choices to enumerate: not checked
            if "tie choices" not in str(e):
                raise Finding(f"{what}: the reference refused the case: {e}") from e


def seeds() -> dict:
    return seed_bytes(32, seed=11)


if __name__ == "__main__":
    fuzz_main(sys.modules[__name__])
