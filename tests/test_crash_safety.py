"""Nothing a user can hand to the public API may crash the process.

The C kernels trust the packed arrays, so a validation gap would be a segfault, not
an exception. These tests run in a subprocess: random corruptions of valid arrays go
through the constructor, through hand-edited .npz files and through tampered pickles;
every matrix that is accepted must then multiply correctly on every backend and ISA.
A crash shows up as a negative return code, and the last printed line names the trial.
"""
from __future__ import annotations

import textwrap

import pytest

from _subproc import run_python

FUZZ = textwrap.dedent(r"""
    import io, pickle, sys
    import numpy as np
    import sparsekern as sk
    from sparsekern import _dispatch
    from _cases import make_weights, make_x
    from reference import assert_matmul

    SEED, TRIALS = int(sys.argv[1]), int(sys.argv[2])
    rng = np.random.default_rng(SEED)
    backends = []
    if "c" in _dispatch.available():
        backends += [("c", isa) for isa in _dispatch.get("c").isas()]
    if "numba" in _dispatch.available():
        backends.append(("numba", None))

    INTS = [0, 1, -1, 2, 7, 2**15, 2**16 - 1, 2**16, 2**31 - 1, 2**31, -2**31, 2**32, 2**62,
            2**63 - 1, -2**63]

    def mutate(shape, d):
        d = {k: v.copy() for k, v in d.items()}
        key = rng.choice(["row_ptr", "col_idx", "values", "shape", "dtype", "swap", "resize"])
        if key in ("row_ptr", "col_idx") and d[key].size:
            a = d[key].astype(np.int64)
            a[rng.integers(a.size)] = rng.choice(INTS) if rng.random() < 0.5 else \
                a[rng.integers(a.size)] + rng.integers(-3, 4)
            d[key] = a
        elif key == "values" and d["values"].size:
            d["values"][rng.integers(d["values"].size)] = rng.choice([np.nan, np.inf, -np.inf, 0])
        elif key == "shape":
            shape = (int(shape[0] + rng.integers(-2, 3)), int(shape[1] + rng.integers(-2, 3)))
        elif key == "dtype":
            k2 = rng.choice(["row_ptr", "col_idx"])
            d[k2] = d[k2].astype(rng.choice([np.int8, np.uint8, np.int16, np.uint16, np.int32,
                                             np.uint32, np.uint64]))
        elif key == "swap" and d["col_idx"].size > 1:
            i = rng.integers(d["col_idx"].size - 1)
            d["col_idx"][[i, i + 1]] = d["col_idx"][[i + 1, i]]
        elif key == "resize":
            k2 = rng.choice(["row_ptr", "col_idx", "values"])
            d[k2] = d[k2][:-1] if rng.random() < 0.5 or not d[k2].size else \
                np.append(d[k2], d[k2][-1:])
        return shape, d

    def exercise(Wp, label):
        m, k = Wp.shape
        D = Wp.to_dense()
        for n in ((1, 5, 70) if k < 100 else (1, 5)):
            X = make_x(rng, k, n)
            for be, isa in backends:
                sk.set_backend(be)
                if isa:
                    sk.set_isa(isa)
                assert_matmul(sk.matmul(Wp, X), D, X, what=f"{label} {be} {isa} n={n}")

    class Tampered:  # pickles as a packed matrix with arbitrary arrays
        def __init__(self, shape, arrays):
            self.args = ("unstructured", shape, arrays)

        def __reduce__(self):
            return sk.formats._rebuild, self.args

    accepted = rejected = 0
    for trial in range(TRIALS):
        m = int(rng.integers(0, 12))
        k = int(rng.integers(0, 40)) if rng.random() < 0.9 else int(rng.choice([65536, 70000]))
        W = make_weights(rng, m, k, rng.random() if k < 100 else 0.0005)
        good = sk.pack(W)
        shape, d = good.shape, {"row_ptr": good.row_ptr, "col_idx": good.col_idx,
                                "values": good.values}
        for _ in range(int(rng.integers(1, 3))):
            shape, d = mutate(shape, d)
        route = ["ctor", "npz", "pickle"][trial % 3]
        print(trial, route, shape, {k: (v.dtype.str, v.shape) for k, v in d.items()}, flush=True)
        try:
            if route == "ctor":
                Wp = sk.UnstructuredMatrix(shape, **d)
            elif route == "npz":
                f = io.BytesIO()
                np.savez(f, sparsekern_format=np.array("unstructured"), version=np.array(1),
                         shape=np.array(shape), **d)
                f.seek(0)
                Wp = sk.load(f)
            else:
                Wp = pickle.loads(pickle.dumps(Tampered(shape, d)))
        except (ValueError, TypeError) as e:
            rejected += 1
            continue
        accepted += 1
        exercise(Wp, f"trial {trial}")
    print("FUZZ-OK", accepted, rejected, flush=True)
""")


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1])
def test_fuzzed_arrays_never_crash(seed):
    proc = run_python(FUZZ, str(seed), "300", timeout=240)
    lines = proc.stdout.strip().splitlines()
    assert proc.returncode == 0, (
        f"fuzz subprocess failed (rc={proc.returncode}; negative = killed by a signal) after "
        f"{lines[-1:]}\n{proc.stderr[-3000:]}")
    assert lines[-1].startswith("FUZZ-OK")
    _, accepted, rejected = lines[-1].split()
    assert int(rejected) > 100 and int(accepted) > 10, lines[-1]


NASTY = textwrap.dedent(r"""
    import io
    import numpy as np
    import sparsekern as sk
    from sparsekern import _dispatch

    Wp = sk.pack(np.eye(4, dtype=np.float32))
    nasty_x = [np.empty((4, 0), np.float32), np.empty((0, 4, 3), np.float32),
               np.full((4, 3), np.nan, np.float32), np.full((4, 1), np.inf, np.float32),
               np.zeros((4, 2**16 + 1), np.float32)[:, ::7],
               np.lib.stride_tricks.as_strided(np.zeros(4, np.float32), (4, 5), (4, 0))]
    backends = [("numba", None)] if "numba" in _dispatch.available() else []
    if "c" in _dispatch.available():
        backends += [("c", isa) for isa in _dispatch.get("c").isas()]
    for be, isa in backends:
        sk.set_backend(be)
        if isa:
            sk.set_isa(isa)
        for X in nasty_x:
            Y = sk.matmul(Wp, X)
            assert Y.dtype == np.float32
        for bad in (np.zeros((5, 3)), np.zeros(()), "x", None, object(), np.zeros((4, 2), complex)):
            try:
                sk.matmul(Wp, bad)
            except (ValueError, TypeError):
                pass
            else:
                raise AssertionError(f"accepted {bad!r}")
    # huge claimed sizes in a file must be rejected before anything is allocated
    for shape in ([2**62, 2**31 - 1], [2**40, 1], [1, 2**31]):
        f = io.BytesIO()
        np.savez(f, sparsekern_format=np.array("unstructured"), version=np.array(1),
                 shape=np.array(shape, np.int64), row_ptr=np.zeros(2, np.int64),
                 col_idx=np.zeros(0, np.uint16), values=np.zeros(0, np.float32))
        f.seek(0)
        try:
            sk.load(f)
        except ValueError:
            pass
        else:
            raise AssertionError(shape)
    print("NASTY-OK")
""")


def test_nasty_inputs_in_subprocess():
    proc = run_python(NASTY, timeout=120)
    assert proc.returncode == 0, f"rc={proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    assert "NASTY-OK" in proc.stdout
