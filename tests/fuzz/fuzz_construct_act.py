"""sk.ActMatrix(shape, wt, norms) on valid and mutated arrays (norms given or not):
refused with ValueError/TypeError, or a matrix holding W = wt.T that multiplies right
(exact and thresholded) on every backend and ISA."""
from __future__ import annotations

import sys

from _harness import Source, fuzz_main, seed_bytes, sk
from _formats import build_and_check, classify_act, mutate_array, mutate_shape, valid_arrays


def test_one_input(data: bytes) -> None:
    src = Source(data)
    rng = src.rng()
    shape, arrays, _ = valid_arrays(src, rng, "act")
    for _ in range(src.below(4)):
        key = src.pick(("shape", "wt", "norms"))
        if key == "shape":
            shape = mutate_shape(src, shape)
        else:
            arrays[key] = mutate_array(src, arrays[key])
    wt, norms = arrays["wt"], arrays["norms"]
    if src.chance(1, 4):
        v = classify_act(shape, wt, None, norms_given=False)
        build_and_check(src, rng, lambda: sk.ActMatrix(shape, wt), v, "ActMatrix(shape, wt)",
                        caller_arrays=[wt])
    else:
        v = classify_act(shape, wt, norms)
        build_and_check(src, rng, lambda: sk.ActMatrix(shape, wt, norms), v,
                        "ActMatrix(shape, wt, norms)", caller_arrays=[wt, norms])


def seeds() -> dict:
    return seed_bytes(24, seed=3)


if __name__ == "__main__":
    fuzz_main(sys.modules[__name__])
