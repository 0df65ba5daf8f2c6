"""sk.matmul(Wp, X) and Wp @ X for every 2-D format (unstructured, N:M, act) against the
float64 reference on every backend and ISA: X of shape (K,), (K, N) or (..., K, N), in
any dtype, order, view or container; wrong shapes, dtypes and operands must raise
ValueError/TypeError, and X must never change."""
from __future__ import annotations

import sys

import numpy as np

from _harness import (Rejected, Source, Unchanged, check_result, dim, floats, fuzz_main,
                      on_each_variant, present, seed_bytes, sk)
from _formats import random_format, random_packed, work_ok
import reference


def x_shape(src: Source, k: int):
    """(shape of X, valid)."""
    form = src.below(10)
    if form == 0:
        return (k,), True
    if form <= 5:
        return (k, dim(src)), True
    if form <= 7:
        lead = tuple(src.below(4) for _ in range(1 + src.below(2)))
        return lead + (k, src.pick([0, 1, 2, 3, 5])), True
    return src.pick([(k + 1,), (k + 1, 2), (), (2, k + 2, 3), (k - 1, 3) if k else (1, 3)]), False


def test_one_input(data: bytes) -> None:
    src = Source(data)
    rng = src.rng()
    fmt = random_format(src)
    m, k = dim(src), dim(src)
    Wp, W = random_packed(src, rng, fmt, m, k)
    shape, valid = x_shape(src, k)
    if not work_ok(m, *shape) or not work_ok(*shape):
        return
    X = floats(src, rng, shape)
    arg, logical = present(src, X)
    Wp_left = Wp
    oddity = src.below(24)      # 0 (what exhausted input reads as) is the plain case
    if oddity == 23:
        arg, valid = src.pick([X.astype(np.complex64), np.full(X.shape, "1"),
                               X.astype(object), None, "X"]), False
    elif oddity == 22:
        Wp_left, valid = src.pick([W, None, sk.pack(np.zeros((2, 3, 1, 1), np.float32))]), False
    how = src.pick(["matmul", "@", "@"]) if Wp_left is Wp else "matmul"
    if oddity == 21:
        how, valid = "X @ W", False
    what = f"{how} with {fmt} {m}x{k} and X {shape} ({type(arg).__name__})"
    if how == "matmul":
        fn = lambda: sk.matmul(Wp_left, arg)  # noqa: E731
    elif how == "@":
        fn = lambda: Wp_left @ arg            # noqa: E731
    else:
        fn = lambda: arg @ Wp              # noqa: E731
    guard = Unchanged(X=arg)
    try:
        results = on_each_variant(src, fn, what, valid)
    except Rejected:
        guard.check(what)
        return
    guard.check(what)
    for name, Y in results:
        check_result(name, Y, what, reference.assert_matmul, W, logical)


def seeds() -> dict:
    return seed_bytes(32, seed=10)


if __name__ == "__main__":
    fuzz_main(sys.modules[__name__])
