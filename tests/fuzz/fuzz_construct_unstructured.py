"""sk.UnstructuredMatrix(shape, row_ptr, col_idx, values) (and from_scipy) on valid and
mutated compressed-row arrays: refused with ValueError/TypeError, or a matrix that holds
exactly what the arrays describe and multiplies right on every backend and ISA."""
from __future__ import annotations

import sys

from _harness import Source, fuzz_main, seed_bytes, sk
from _formats import build_and_check, classify_csr, mutate_array, mutate_shape, valid_arrays

NAMES = ("row_ptr", "col_idx", "values")


def test_one_input(data: bytes) -> None:
    src = Source(data)
    rng = src.rng()
    shape, arrays, _ = valid_arrays(src, rng, "unstructured")
    for _ in range(src.below(4)):
        key = src.pick(("shape",) + NAMES)
        if key == "shape":
            shape = mutate_shape(src, shape)
        else:
            arrays[key] = mutate_array(src, arrays[key])
    args = [arrays[n] for n in NAMES]
    v = classify_csr(shape, *args)
    if src.chance(1, 8) and v.valid and v.dense is not None:
        import scipy.sparse as sp

        S = sp.csr_array(v.dense)
        build_and_check(src, rng, lambda: sk.UnstructuredMatrix.from_scipy(S), v,
                        "UnstructuredMatrix.from_scipy")
        return
    build_and_check(src, rng, lambda: sk.UnstructuredMatrix(shape, *args), v,
                    "UnstructuredMatrix(shape, row_ptr, col_idx, values)", caller_arrays=args)


def seeds() -> dict:
    return seed_bytes(24, seed=1)


if __name__ == "__main__":
    fuzz_main(sys.modules[__name__])
