"""pickle.loads of packed matrices whose reduce tuples were tampered with.

A pickle runs whatever callable it names, so pickles are as trusted as code (numpy's
np.load(allow_pickle=True) says the same); fuzzing arbitrary pickle bytes would only
fuzz pickle. What sparsekern must defend is its own reduce path: a pickle that names
sparsekern's rebuild function with hostile arguments (format name, shape, the arrays
dict and every array in it). The target builds such pickles from mutated reduce tuples
of valid matrices of every format: each must be refused with ValueError/TypeError, or
load as exactly what its arrays describe and multiply right on every backend and ISA."""
from __future__ import annotations

import pickle
import sys

import numpy as np

from _harness import Rejected, Source, call, dim, fuzz_main, pickle_of, seed_bytes, sk
from _formats import (PATTERNS, check_packed, classify, invalid, mutate_array, mutate_shape,
                      random_format, random_packed)

FORMATS = ["unstructured", "act", "conv2d", "2:4", "1:8", "4:16", "3:4", "0:4", "2:3",
           "\u0662:\u0664", "UNSTRUCTURED", "", None, 3, b"act"]
KEYS = ["row_ptr", "col_idx", "values", "meta", "wt", "norms", "inner_format", "extra"]


def test_one_input(data: bytes) -> None:
    src = Source(data)
    rng = src.rng()
    fmt = random_format(src)
    if src.chance(1, 4) and fmt != "act":                 # a conv weight
        co, cg, kh, kw = dim(src) % 9, 1 + src.below(4), 1 + src.below(3), 1 + src.below(3)
        W4 = np.random.default_rng(src.below(2**16)).standard_normal((co, cg, kh, kw))
        W4[np.abs(W4) < 0.5] = 0
        Wp = sk.pack(W4.astype(np.float32), fmt)
    else:
        Wp, _ = random_packed(src, rng, fmt, dim(src), dim(src))
    fn, (name, shape, arrays) = Wp.__reduce__()
    arrays = {k: np.array(a) for k, a in arrays.items()}
    args = [name, shape, arrays]
    for _ in range(src.below(4)):
        what = src.below(10)
        if what == 0:
            args[0] = src.pick(FORMATS + PATTERNS)
        elif what <= 2:
            args[1] = mutate_shape(src, args[1])
        elif what <= 6 and len(args) == 3 and isinstance(args[2], dict) and args[2]:
            key = src.pick(sorted(args[2]))
            if key == "inner_format":
                args[2][key] = src.pick([np.array(s) for s in ("unstructured", "act", "conv2d",
                                                              "2:4", "5:4", "x")]
                                        + ["2:4", "unstructured", None, np.array(["2:4"]), 4])
            else:
                args[2][key] = mutate_array(src, args[2][key])
        elif what == 7 and len(args) == 3 and isinstance(args[2], dict) and args[2]:
            del args[2][src.pick(sorted(args[2]))]
        elif what == 8 and len(args) == 3 and isinstance(args[2], dict):
            args[2][src.pick(KEYS)] = np.zeros(src.below(4), src.pick([np.int64, np.float32]))
        else:
            args = src.pick([args[:2], args + [None], [args[0], args[1], list(arrays.items())],
                             [args[0], args[1], None], args])
    blob = pickle_of(fn, tuple(args))
    v = classify(*args) if len(args) == 3 else invalid("wrong number of arguments")
    try:
        back = call(lambda: pickle.loads(blob), v.valid, f"pickle.loads ({v.why or 'valid'})")
    except Rejected:
        return
    check_packed(src, rng, back, v, f"pickle.loads of {args[0]!r} {args[1]!r}")


def seeds() -> dict:
    return seed_bytes(32, seed=15)


if __name__ == "__main__":
    fuzz_main(sys.modules[__name__])
