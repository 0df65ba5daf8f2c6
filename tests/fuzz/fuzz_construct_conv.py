"""sk.ConvWeight(shape, matrix) over valid and mutated 4-D shapes and inner matrices
(unstructured, N:M, and formats a conv weight cannot hold): refused with
ValueError/TypeError, or a weight whose conv2d is right on every backend and ISA."""
from __future__ import annotations

import sys

import numpy as np

from _harness import Source, dim, fuzz_main, seed_bytes, sk
from _formats import (PATTERNS, Verdict, build_and_check, classify_conv, invalid, mutate_shape,
                      random_packed)


def test_one_input(data: bytes) -> None:
    src = Source(data)
    rng = src.rng()
    co, cg, kh, kw = dim(src), dim(src, large=64) % 9, 1 + src.below(4), 1 + src.below(4)
    fmt = src.pick(["unstructured", "unstructured", "nm", "act"])
    fmt = src.pick(PATTERNS) if fmt == "nm" else fmt
    shape = (co, cg, kh, kw)
    finite = not src.chance(1, 8)
    Wp, W = random_packed(src, rng, fmt, co, cg * kh * kw, nonfinite=not finite)
    mv = Verdict(True, fmt=Wp.format, shape=Wp.shape, dense=W)
    matrix = Wp
    if src.chance(1, 4):
        shape = mutate_shape(src, shape)
    if src.chance(1, 8):
        matrix = src.pick([W, None, "matrix", sk.ConvWeight((co, cg, kh, kw), Wp)
                           if fmt != "act" and np.isfinite(W).all() else W])
        v = invalid(f"matrix is a {type(matrix).__name__}")
    else:
        v = classify_conv(shape, mv, matrix)
    build_and_check(src, rng, lambda: sk.ConvWeight(shape, matrix), v,
                    f"ConvWeight({shape!r}, <{type(matrix).__name__} {fmt}>)")


def seeds() -> dict:
    return seed_bytes(24, seed=4)


if __name__ == "__main__":
    fuzz_main(sys.modules[__name__])
