"""What every fuzz target shares: input decoding, generators, the oracle, the engines.

A target (``fuzz_<name>.py``) defines

* ``test_one_input(data: bytes)``: run one case; raise :class:`Finding` on a defect
  (any other exception escaping is a defect too);
* ``seeds() -> dict[str, bytes]``: the committed corpus (``make_corpus.py`` writes it);
* optionally ``mutate(data, rng) -> bytes``: a structure-aware mutation (the .npz
  targets edit the archive's arrays and rewrite a well-formed zip);

and ends with ``if __name__ == "__main__": fuzz_main(sys.modules[__name__])``.

The oracle, for every call a target makes: a call that is valid by construction must
return the right answer; one that is invalid by construction must raise ValueError or
TypeError; a few cases in between (documented where they are made) may do either. An
answer is right when it matches ``tests/reference.py`` (float64, dense) on every backend
and ISA variant, and no input array may change. MemoryError is a finding unless the
output asked for is truly huge.
"""
from __future__ import annotations

import collections
import io
import os
import pickle
import random
import sys
import traceback
import warnings
import zipfile
from pathlib import Path

import numpy as np

FUZZ_DIR = Path(__file__).resolve().parent
TESTS_DIR = FUZZ_DIR.parent
if str(TESTS_DIR) not in sys.path:      # the targets import reference.py
    sys.path.insert(0, str(TESTS_DIR))

try:
    import atheris
except ImportError:
    atheris = None


def _coverage_hooks():
    """Coverage instrumentation of sparsekern's Python code, which guides libFuzzer (the C
    library is not instrumented; its crashes are still caught, as signals). Without
    comparison tracing: atheris keeps a reference to the result of every traced
    comparison of other objects than numbers, strings and bytes (a numpy `W != 0` leaks
    its whole bool array), so a long run would grow by gigabytes."""
    try:
        from atheris.import_hook import HookManager

        return HookManager({"sparsekern"}, set(), True, trace_dataflow=False)
    except (ImportError, TypeError):
        return atheris.instrument_imports(include=["sparsekern"])


if atheris is not None and os.environ.get("SK_FUZZ_INSTRUMENT", "1") == "1" \
        and "sparsekern" not in sys.modules:
    with _coverage_hooks():
        import sparsekern as sk
else:
    import sparsekern as sk

warnings.simplefilter("ignore")         # overflow in float64 sums, casts of huge values

F32 = np.float32


class Finding(AssertionError):
    """A defect: a crash-worthy wrong answer, wrong exception or modified input."""


class Rejected(Exception):
    """Raised by the oracle helpers when the call under test refused its input as allowed."""


# -- reading the fuzzer's bytes ------------------------------------------------------------

class Source:
    """The fuzzer's bytes read as a stream of choices; zeros once they run out, so every
    input, however short, is a valid case."""

    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def byte(self) -> int:
        if self.pos >= len(self.data):
            return 0
        self.pos += 1
        return self.data[self.pos - 1]

    def below(self, n: int) -> int:
        """An int in [0, n)."""
        if n <= 1:
            return 0
        v = self.byte()
        if n > 256:
            v = v | self.byte() << 8 | self.byte() << 16 | self.byte() << 24
        return v % n

    def chance(self, num: int, den: int = 8) -> bool:
        """True with probability num/den; False on exhausted input (the plain case)."""
        return self.below(den) >= den - num

    def pick(self, seq):
        return seq[self.below(len(seq))]

    def rng(self) -> np.random.Generator:
        """A generator for the bulk values, seeded by the next 4 bytes."""
        return np.random.default_rng(self.below(2**32))


class Chooser(Source):
    """The same choices drawn from a random.Random (the structure-aware mutators)."""

    def __init__(self, rng: random.Random):
        super().__init__(b"")
        self.random = rng

    def byte(self) -> int:
        return self.random.randrange(256)


def seed_bytes(n: int, seed: int = 0) -> dict:
    """``n`` random inputs of assorted lengths (the seeds of the targets that read their
    input as choices), plus the empty input."""
    rng = random.Random(seed)
    out = {"seed-empty": b""}
    for i in range(n):
        length = rng.choice([8, 16, 32, 64, 128, 256, 512])
        out[f"seed-{i:02d}"] = bytes(rng.randrange(256) for _ in range(length))
    return out


SMALL_DIMS = [0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 6, 7, 8, 8, 9, 12, 15, 16, 17, 24, 31, 32, 33]
LARGE_DIMS = [63, 64, 65, 100, 127, 128, 129, 256, 257, 300]


def dim(src: Source, lo: int = 0, large: int = 16) -> int:
    """A dimension >= lo: mostly small, one time in ``large`` from LARGE_DIMS."""
    d = src.pick(LARGE_DIMS) if src.below(large) == large - 1 else src.pick(SMALL_DIMS)
    return max(lo, d)


# values that keep float32 sums far from overflow and products far from underflow, so
# the float64 reference and the float32 kernels must agree within reference.tolerance
PALETTE = np.array([0.0, -0.0, 1.0, -1.0, 0.5, -2.0, 3.0, 0.1, -7.25, 1e-3, 1e3, 1e6,
                    -1e6, 1e-6], F32)
SPECIALS = np.array([np.inf, -np.inf, np.nan], F32)


def floats(src: Source, rng: np.random.Generator, shape, nonfinite: bool = True,
           zeros: bool = True) -> np.ndarray:
    """float32 values of ``shape``: normal, small integers or palette picks, with zeros at
    a random density and (when ``nonfinite``) now and then inf/NaN."""
    shape = tuple(shape)
    size = int(np.prod(shape, dtype=np.int64))
    kind = src.below(4)
    if kind == 0:
        a = rng.standard_normal(size).astype(F32)
    elif kind == 1:
        a = rng.integers(-3, 4, size).astype(F32)
    elif kind == 2:
        a = rng.choice(PALETTE, size)
    else:
        a = (rng.standard_normal(size) * 10.0 ** rng.integers(-3, 4, size)).astype(F32)
    if zeros and src.chance(5):
        a[rng.random(size) < src.pick([0.1, 0.5, 0.9, 0.99, 1.0])] = 0
    if nonfinite and size and src.chance(1, 8):
        idx = rng.integers(0, size, 1 + src.below(3))
        a[idx] = rng.choice(SPECIALS, idx.size)
    return a.reshape(shape)


# -- how an input array is handed to the call under test ----------------------------------

LAYOUTS = ["plain", "plain", "plain", "float64", "float16", "int32", "bool", "fortran",
           "strided", "reversed", "readonly", "misaligned", "list", "bigendian"]


def present(src: Source, a: np.ndarray, layouts=LAYOUTS):
    """``a`` (float32) as the user might pass it: other dtypes, orders, views, read-only,
    misaligned, a nested list. Returns (arg, logical): ``logical`` is what the reference
    sees (the same values numpy would convert ``arg`` to)."""
    how = src.pick(layouts)
    if how == "float64":
        arg = a.astype(np.float64)
    elif how == "float16":
        arg = a.astype(np.float16)
    elif how == "int32":
        arg = np.nan_to_num(a, nan=0, posinf=0, neginf=0).clip(-1e6, 1e6).astype(np.int32)
    elif how == "bool":
        arg = a != 0
    elif how == "fortran":
        arg = np.asfortranarray(a)
    elif how == "strided" and a.ndim:
        big = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), F32)
        big[..., ::2] = a
        arg = big[..., ::2]
    elif how == "reversed" and a.ndim:
        arg = np.ascontiguousarray(a[..., ::-1])[..., ::-1]
    elif how == "readonly":
        arg = a.copy()
        arg.setflags(write=False)
    elif how == "misaligned":
        raw = np.zeros(a.size * 4 + 1, np.uint8)
        arg = raw[1:].view(F32).reshape(a.shape)
        arg[...] = a
    elif how == "list" and a.size:     # (an empty nested list loses its inner dimensions)
        arg = a.tolist()
    elif how == "bigendian":
        arg = a.astype(">f4")
    else:
        arg = a
    if np.shape(arg) != a.shape:      # np.asfortranarray and friends make a 0-d array 1-d
        arg = a
    return arg, np.asarray(arg, dtype=F32)


class Unchanged:
    """Snapshots of the arrays handed to a call (their whole memory, views included), to
    check afterwards that the call left them as they were."""

    def __init__(self, **args):
        self.snaps = {name: _snapshot(v) for name, v in args.items()}
        self.args = args

    def check(self, what: str) -> None:
        for name, v in self.args.items():
            if _snapshot(v) != self.snaps[name]:
                raise Finding(f"{what}: modified its input {name!r}")


def _snapshot(v):
    if isinstance(v, np.ndarray):
        root = v
        while isinstance(root.base, np.ndarray):
            root = root.base
        return (v.shape, v.dtype.str, root.tobytes() if root.base is None else v.tobytes())
    if isinstance(v, (list, tuple)):
        return repr(v)
    return None


# -- the oracle ----------------------------------------------------------------------------

STATS = collections.Counter()      # accepted / refused calls: how deep the inputs get


def call(fn, valid, what: str, huge_output: bool = False, allowed=(ValueError, TypeError)):
    """fn(); ``valid`` True: must return; False: must raise one of ``allowed``; None: either.
    Returns the result, or raises :class:`Rejected` when the call refused as allowed."""
    try:
        out = fn()
    except allowed as e:
        if valid:
            raise Finding(f"{what}: rejected a valid call with {type(e).__name__}: {e}") from e
        STATS["refused"] += 1
        raise Rejected(str(e)) from None
    except MemoryError as e:
        if huge_output:
            raise Rejected(str(e)) from None
        raise Finding(f"{what}: MemoryError for a call whose output is small") from e
    except (Finding, Rejected):
        raise
    except Exception as e:
        names = ", ".join(a.__name__ for a in allowed)
        raise Finding(f"{what}: raised {type(e).__name__} (only {names} allowed): {e}") from e
    if valid is False:
        raise Finding(f"{what}: accepted an invalid call (returned {type(out).__name__})")
    STATS["accepted"] += 1
    return out


def variants():
    """Every (backend, ISA) to check: the C library's ISA variants, then numba
    (SK_FUZZ_BACKENDS=c or =numba narrows it)."""
    global _VARIANTS
    if _VARIANTS is None:
        want = os.environ.get("SK_FUZZ_BACKENDS", "c,numba").split(",")
        info = sk.info()
        found = []
        if "c" in want and "c" in info["backends_available"]:
            sk.set_backend("c")
            found += [("c", isa) for isa in sk.info()["isas_available"]]
        if "numba" in want and "numba" in info["backends_available"]:
            found.append(("numba", None))
        sk.set_backend(info["backend"])
        if not found:
            raise RuntimeError("no sparsekern backend is available")
        _VARIANTS = found
    return _VARIANTS


_VARIANTS = None


def on_each_variant(src: Source, fn, what: str, valid=True, huge_output=False):
    """[(variant name, fn())] over every variant, with 1 or 2 threads picked by ``src``.
    ``valid`` as for :func:`call`; Rejected if the call was (allowedly) refused; a call
    that some variants accept and others refuse is a finding."""
    threads = min(1 + src.below(2), os.cpu_count() or 1)
    results, refused = [], []
    for be, isa in variants():
        sk.set_backend(be)
        if isa is not None:
            sk.set_isa(isa)
        sk.set_num_threads(threads)
        name = f"{be}-{isa}" if isa else be
        try:
            results.append((name, call(fn, valid, f"{what} [{name}, {threads} threads]",
                                       huge_output)))
        except Rejected as e:
            refused.append((name, e))
    if results and refused:
        raise Finding(f"{what}: accepted on {[r[0] for r in results]} but refused on "
                      f"{[r[0] for r in refused]} ({refused[0][1]})")
    if refused:
        raise Rejected(str(refused[0][1]))
    return results


def same_array(a, b) -> bool:
    """Equal values, NaN equal to NaN (dtype and shape must match)."""
    return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.shape == b.shape
            and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True))


def check_result(name: str, Y, what: str, expect, *args, **kwargs) -> None:
    """``expect`` (a reference.assert_* function) on Y, as a Finding that names the variant."""
    try:
        expect(Y, *args, **kwargs)
    except AssertionError as e:
        raise Finding(f"{what} [{name}]: wrong answer: {e}") from None


# -- the engines ---------------------------------------------------------------------------

def fuzz_main(target) -> None:
    """``python fuzz_X.py [libFuzzer flags] [corpus dirs]`` runs atheris; with
    ``--engine=random`` (or without atheris) a plain mutation loop; ``--replay FILE...``
    runs files once each and reports."""
    argv = sys.argv[:]
    if "--replay" in argv:
        sys.exit(_replay(target, argv[argv.index("--replay") + 1:]))
    engine = "atheris" if atheris is not None else "random"
    for a in list(argv):
        if a.startswith("--engine="):
            engine = a.split("=", 1)[1]
            argv.remove(a)
    if engine == "atheris":
        if atheris is None:
            sys.exit("atheris is not installed (tools/fuzz.sh installs it)")
        kwargs = {}
        if hasattr(target, "mutate"):
            def custom_mutator(data, max_size, seed):
                out = target.mutate(data, random.Random(seed))
                if out is None or len(out) > max_size:
                    return atheris.Mutate(data, max_size)
                return out
            kwargs["custom_mutator"] = custom_mutator
        atheris.Setup(argv, target.test_one_input, **kwargs)
        atheris.Fuzz()
    else:
        sys.exit(_random_engine(target, argv[1:]))


def _replay(target, files) -> int:
    bad = 0
    for f in files:
        try:
            target.test_one_input(Path(f).read_bytes())
            print(f"ok       {f}")
        except Exception:
            bad += 1
            print(f"FINDING  {f}")
            traceback.print_exc()
    return 1 if bad else 0


def byte_mutate(data: bytes, rng: random.Random, max_size: int = 4096) -> bytes:
    """A few libFuzzer-like edits: flip, set, insert, erase, copy bytes."""
    b = bytearray(data)
    for _ in range(1 + rng.randrange(4)):
        op = rng.randrange(5)
        if op == 0 and b:
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
        elif op == 1 and b:
            b[rng.randrange(len(b))] = rng.choice([0, 1, 0x7F, 0x80, 0xFF, rng.randrange(256)])
        elif op == 2 and len(b) < max_size:
            i = rng.randrange(len(b) + 1)
            b[i:i] = bytes(rng.randrange(256) for _ in range(1 + rng.randrange(8)))
        elif op == 3 and b:
            i = rng.randrange(len(b))
            del b[i:i + 1 + rng.randrange(8)]
        elif b:
            i, j = rng.randrange(len(b)), rng.randrange(len(b))
            b[j:j] = b[i:i + 1 + rng.randrange(16)]
    return bytes(b[:max_size])


def _random_engine(target, args) -> int:
    """The fallback engine (no coverage guidance): mutate corpus inputs for
    -max_total_time=S seconds or -runs=N executions; a Python exception is saved as
    <artifact_prefix>crash-<n>, and the input in progress is always in
    <artifact_prefix>current, which is the reproducer when the process dies of a signal."""
    import time

    opts = {a.split("=", 1)[0][1:]: a.split("=", 1)[1] for a in args if a.startswith("-")}
    dirs = [Path(a) for a in args if not a.startswith("-")]
    prefix = opts.get("artifact_prefix", "./")
    max_time, runs = float(opts.get("max_total_time", 0)), int(opts.get("runs", -1))
    max_len = int(opts.get("max_len", 4096))
    pool = [p.read_bytes() for d in dirs if d.is_dir() for p in sorted(d.iterdir()) if p.is_file()]
    pool = pool or [b""]
    rng = random.Random(int(opts.get("seed", 0)) or None)
    mutate = getattr(target, "mutate", None)
    start, n = time.time(), 0
    todo = list(pool)
    while True:
        if runs >= 0 and n >= runs or max_time and time.time() - start > max_time:
            break
        if todo:
            data = todo.pop(0)
        else:
            base = rng.choice(pool)
            data = (mutate(base, rng) if mutate is not None and rng.random() < 0.8 else None) \
                or byte_mutate(base, rng, max_len)
        Path(prefix + "current").write_bytes(data)
        try:
            target.test_one_input(data)
        except Exception:
            path = Path(f"{prefix}crash-{n}")
            path.write_bytes(data)
            traceback.print_exc()
            print(f"==random engine: finding; input saved to {path}", file=sys.stderr)
            print(f"stat::number_of_executed_units: {n + 1}", file=sys.stderr)
            return 1
        n += 1
        if n % 2000 == 0:
            pool.append(data)
    Path(prefix + "current").unlink(missing_ok=True)
    print(f"Done {n} runs in {time.time() - start:.0f} second(s)", file=sys.stderr)
    print(f"stat::number_of_executed_units: {n}", file=sys.stderr)
    return 0


# -- .npz archives ---------------------------------------------------------------------------

FIXED_TIME = (1980, 1, 1, 0, 0, 0)


def zip_members(data: bytes) -> list[tuple[str, bytes]]:
    """The members of a zip archive, in order (zipfile's errors propagate)."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return [(i.filename, zf.read(i)) for i in zf.infolist()]


def make_zip(members, deflate: bool = False) -> bytes:
    """A zip of (name, bytes) with fixed timestamps (so make_corpus is reproducible)."""
    buf = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in members:
            zf.writestr(zipfile.ZipInfo(name, FIXED_TIME), data, compress_type=method)
    return buf.getvalue()


def npy_bytes(a: np.ndarray, version=None) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.asanyarray(a), version=version,
                              allow_pickle=a.dtype.hasobject)
    return buf.getvalue()


def saved_bytes(Wp) -> bytes:
    """sk.save(Wp) with the archive's timestamps fixed."""
    buf = io.BytesIO()
    sk.save(buf, Wp)
    return make_zip(zip_members(buf.getvalue()))


def pickle_of(fn, args) -> bytes:
    """The pickle a reduce tuple (fn, args) produces: loading it calls fn(*args)."""
    class Reduce:
        def __reduce__(self):
            return fn, args
    return pickle.dumps(Reduce(), protocol=pickle.HIGHEST_PROTOCOL)
