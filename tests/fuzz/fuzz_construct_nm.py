"""sk.NMMatrix(shape, pattern, values, meta) on valid and mutated N:M arrays and
patterns: refused with ValueError/TypeError, or a matrix that holds exactly what the
arrays describe and multiplies right on every backend and ISA."""
from __future__ import annotations

import sys

from _harness import Source, fuzz_main, seed_bytes, sk
from _formats import (PATTERNS, build_and_check, classify_nm, mutate_array, mutate_shape,
                      valid_arrays)

BAD_PATTERNS = ["0:4", "4:4", "5:4", "2:3", "2:32", "1:2", "2 : 4", " 1:8 ", "\t2:4", "2:4\n",
                "02:04", "2:4:8", "2;4", "", ":", "2:", "\u0662:\u0664", "\uff12:\uff14",
                None, 24, b"2:4", (2, 4)]


def test_one_input(data: bytes) -> None:
    src = Source(data)
    rng = src.rng()
    pattern = src.pick(PATTERNS)
    shape, arrays, _ = valid_arrays(src, rng, pattern)
    for _ in range(src.below(4)):
        key = src.pick(("shape", "pattern", "values", "meta", "meta"))
        if key == "shape":
            shape = mutate_shape(src, shape)
        elif key == "pattern":
            pattern = src.pick(BAD_PATTERNS + PATTERNS)
        else:
            arrays[key] = mutate_array(src, arrays[key])
    values, meta = arrays["values"], arrays["meta"]
    v = classify_nm(shape, pattern, values, meta)
    build_and_check(src, rng, lambda: sk.NMMatrix(shape, pattern, values, meta), v,
                    f"NMMatrix(shape, {pattern!r}, values, meta)", caller_arrays=[values, meta])


def seeds() -> dict:
    return seed_bytes(24, seed=2)


if __name__ == "__main__":
    fuzz_main(sys.modules[__name__])
