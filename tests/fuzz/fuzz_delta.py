"""sk.DeltaLinear(Wa, bias, threshold) over streams of inputs: every step within the
documented bound (reference.DeltaCheck) on every backend and ISA, resets and batch-shape
changes included; bad weights, biases, thresholds and shapes raise ValueError/TypeError.
After a non-finite input the state holds inf/NaN until reset (documented), so such a
stream is only required not to crash."""
from __future__ import annotations

import sys

import numpy as np

from _harness import (Finding, Rejected, Source, Unchanged, call, dim, floats, fuzz_main,
                      present, seed_bytes, sk, variants)
from _formats import random_packed, work_ok
import reference

THRESHOLDS = [0.0, 0.01, 0.1, 0.5, 1.0, 3.0, 1e30, float("inf"), np.float32(0.2), 2]
BAD = [-0.5, float("nan"), True, "0.1", None, [0.1]]


def test_one_input(data: bytes) -> None:
    src = Source(data)
    rng = src.rng()
    m, k = dim(src), dim(src)
    finite = not src.chance(1, 16)
    Wa, W = random_packed(src, rng, "act", m, k, nonfinite=not finite)
    bias = floats(src, rng, (m,), nonfinite=False) if src.chance(4) else None
    theta = src.pick(THRESHOLDS)
    weight, valid = Wa, True
    if src.chance(1, 16):
        theta, valid = src.pick(BAD), False
    if src.chance(1, 16):
        weight, valid = src.pick([W, sk.pack(W, "unstructured"), None]), False
    if src.chance(1, 16) and bias is not None:
        bias, valid = np.zeros(m + 1, np.float32), False
    lead = src.pick([(), (), (1,), (2,), (3,), (2, 2), (0,)])
    if not work_ok(m, k, *lead):
        return
    steps = [(src.below(16), floats(src, rng, lead + (k,), nonfinite=src.chance(1, 8)))
             for _ in range(1 + src.below(6))]
    what = f"DeltaLinear({m}x{k}, threshold={theta!r}) over x {lead + (k,)}"
    b32 = None if bias is None else np.asarray(bias, np.float32)
    # reference.DeltaCheck's bound is inf * 0 = NaN on a zero row for an infinite threshold:
    # such a stream is only run, not checked
    real = isinstance(theta, (int, float, np.floating))
    checked = finite and bool(np.isfinite(np.float32(theta if real else 0)))
    for be, isa in variants():
        sk.set_backend(be)
        if isa is not None:
            sk.set_isa(isa)
        name = f"{be}-{isa}" if isa else be
        try:
            d = call(lambda: sk.DeltaLinear(weight, bias, threshold=theta),
                     valid, f"{what} [{name}]")
        except Rejected:
            return
        check = reference.DeltaCheck(W, b32, theta) if checked else None
        for i, (kind, x) in enumerate(steps):
            if kind == 15:          # a reset: the next step starts over, any batch shape
                d.reset()
                check = reference.DeltaCheck(W, b32, theta) if checked else None
            if kind == 14 and d.steps:   # another batch shape without a reset: refused
                bad = np.zeros((5,) + x.shape, np.float32)
                try:
                    call(lambda: d(bad), False, f"{what} [{name}] step {i} with x {bad.shape}")
                except Rejected:
                    pass
            arg, logical = present(src, x)
            guard = Unchanged(x=arg)
            y = call(lambda: d(arg), True, f"{what} [{name}] step {i}")
            guard.check(f"{what} [{name}] step {i}")
            if y.shape != lead + (m,) or y.dtype != np.float32:
                raise Finding(f"{what} [{name}] step {i}: result {y.shape} {y.dtype}")
            if not 0.0 <= d.stats <= 1.0:
                raise Finding(f"{what} [{name}]: stats = {d.stats}")
            if check is not None and not np.isfinite(logical).all():
                check = None        # inf/NaN now lives in the state until reset
            if check is not None:
                try:
                    check.check(y, logical, f"{what} [{name}] step")
                except AssertionError as e:
                    raise Finding(f"wrong answer: {e}") from None


def seeds() -> dict:
    return seed_bytes(24, seed=12)


if __name__ == "__main__":
    fuzz_main(sys.modules[__name__])
