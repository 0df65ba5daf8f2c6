"""What every section of ``sparsekern bench`` and the pytest-benchmark files in ``bench/``
share: machine facts, random and cold (rotated) operands, configuration, timing."""
from __future__ import annotations

import math
import operator
import os
import platform
import time
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

import sparsekern as sk

from ..formats import NMMatrix, PackedMatrix, UnstructuredMatrix

F32 = np.float32
MiB = 2**20
DEFAULT_LLC = 32 * MiB
OPENBLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
NOISY = 0.25      # samples spread over this fraction of the median: the row says "noisy"


# --------------------------------------------------------------------------- machine facts

def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _parse_size(text: str) -> int:
    text = text.strip().upper()
    scale = {"K": 2**10, "M": 2**20, "G": 2**30}.get(text[-1:], 1)
    return int(text.rstrip("KMG")) * scale


def llc_bytes() -> tuple[int, str]:
    """Size of the level-3 cache of cpu0 from sysfs, and where the number came from."""
    base = "/sys/devices/system/cpu/cpu0/cache"
    try:
        for entry in sorted(os.listdir(base)):
            if not entry.startswith("index"):
                continue
            with open(f"{base}/{entry}/level") as f:
                if f.read().strip() != "3":
                    continue
            with open(f"{base}/{entry}/size") as f:
                return _parse_size(f.read()), "sysfs"
    except (OSError, ValueError):
        pass
    return DEFAULT_LLC, "default"


def blas_info() -> list[dict]:
    """The BLAS libraries numpy has loaded, as threadpoolctl sees them."""
    from threadpoolctl import threadpool_info

    return [d for d in threadpool_info() if d.get("user_api") == "blas"]


def openblas_env() -> dict[str, str]:
    """The OpenBLAS tuning variables set in this environment (they are read at load)."""
    return {k: os.environ[k] for k in OPENBLAS_VARS if k in os.environ}


def openblas_warning() -> str | None:
    env = openblas_env()
    if not env:
        return None
    names = " ".join(f"{k}={v}" for k, v in env.items())
    unset = " ".join(f"-u {k}" for k in env)
    return (f"WARNING: {names} set: OpenBLAS read it when numpy loaded and may run slower "
            f"kernels, so the numpy baseline can be too slow. Rerun as "
            f"`env {unset} sparsekern bench ...`.")


def read_bandwidth(nbytes: int = 512 * MiB, repeat: int = 5) -> float:
    """Single-thread read bandwidth in bytes/s over an ``nbytes`` float32 array: the
    best of three memory-bound numpy reads (max-reduction, dot, and the array as a
    4096-column matrix times a vector, BLAS limited to one thread), each the median
    of ``repeat`` runs."""
    a = np.ones(nbytes // 4, F32)
    v = np.ones(4096, F32)
    probes = (np.maximum.reduce, lambda a: np.dot(a, a), lambda a: a.reshape(-1, 4096) @ v)
    best = 0.0
    with blas_threads(1):
        for f in probes:
            f(a)
            times = []
            for _ in range(repeat):
                t = time.perf_counter()
                f(a)
                times.append(time.perf_counter() - t)
            best = max(best, a.nbytes / float(np.median(times)))
    return best


# --------------------------------------------------------------------------- matrices

def random_unstructured(m: int, k: int, density: float, rng: np.random.Generator,
                        chunk_rows: int = 1024) -> UnstructuredMatrix:
    """W[m, k] whose entries are nonzero independently with probability ``density``
    (to 2^-16), values standard normal: zeros at random positions, built directly
    in compressed rows rather than by pruning a dense matrix."""
    thresh = int(round(density * 65536))
    counts, cols = [], []
    for r0 in range(0, m, chunk_rows):
        rows = min(chunk_rows, m - r0)
        u = np.frombuffer(rng.bytes(rows * k * 2), np.uint16).reshape(rows, k)
        mask = u < thresh
        counts.append(np.count_nonzero(mask, axis=1))
        cols.append(np.flatnonzero(mask) % k if k else np.zeros(0, np.int64))
    row_ptr = np.zeros(m + 1, np.int64)
    if m:
        np.cumsum(np.concatenate(counts), out=row_ptr[1:])
    col_idx = np.concatenate(cols) if cols else np.zeros(0, np.int64)
    values = rng.standard_normal(col_idx.shape[0], dtype=F32)
    return UnstructuredMatrix((m, k), row_ptr, col_idx, values)


def to_csr(W: UnstructuredMatrix):
    """The same matrix as scipy's usual ``csr_array`` (the scipy baseline)."""
    return W.to_scipy()


def nbytes_of(A) -> int:
    """Bytes one ``A @ X`` reads from A (packed, scipy CSR or dense)."""
    if isinstance(A, np.ndarray):
        return A.nbytes
    if isinstance(A, PackedMatrix):
        return A.nbytes
    return A.data.nbytes + A.indices.nbytes + A.indptr.nbytes


def cold_count(nbytes_each: int, llc: int | None = None) -> int:
    """How many matrices of ``nbytes_each`` to rotate through so that together they
    exceed twice the last-level cache (at least 2)."""
    llc = llc_bytes()[0] if llc is None else llc
    return max(2, 2 * llc // max(1, nbytes_each) + 1)


class MatrixSet:
    """Random matrices of one shape and density, in the three forms the benchmarks use.

    ``ops(kind, cold)`` returns the operands to rotate through: one matrix when warm,
    :func:`cold_count` of them when cold. Every form is built from the same packed
    matrices (``packed``, ``csr`` and ``dense`` index i are the same W), on demand.
    """

    def __init__(self, m: int, k: int, density: float, seed: int = 0, llc: int | None = None,
                 pattern: str | None = None):
        self.m, self.k, self.density, self.pattern = m, k, density, pattern
        self.llc = llc_bytes()[0] if llc is None else llc
        extra = [int(x) for x in pattern.split(":")] if pattern else []
        self._rng = np.random.default_rng([seed, m, k, int(round(density * 1e6))] + extra)
        # with an N:M pattern, "packed" is the NMMatrix and "unstructured" the same matrix
        # in the unstructured format (the second baseline)
        self._forms: dict[str, list] = {"packed": [], "csr": [], "dense": [], "unstructured": []}

    def get(self, kind: str, count: int = 1) -> list:
        have = self._forms[kind]
        while len(have) < count:
            i = len(have)
            if kind == "packed" and self.pattern:
                have.append(NMMatrix.random(self.m, self.k, self.pattern, self._rng))
            elif kind == "packed":
                have.append(random_unstructured(self.m, self.k, self.density, self._rng))
            elif kind == "unstructured":
                have.append(UnstructuredMatrix.from_dense(self.get("dense", i + 1)[i]))
            elif kind == "csr":
                src = "unstructured" if self.pattern else "packed"
                have.append(to_csr(self.get(src, i + 1)[i]))
            else:
                have.append(self.get("packed", i + 1)[i].to_dense())
        return have[:count]

    def ops(self, kind: str, cold: bool = False) -> list:
        first = self.get(kind, 1)
        if not cold:
            return first
        return self.get(kind, cold_count(nbytes_of(first[0]), self.llc))

    def drop_cold(self) -> None:
        """Free the extra matrices of the cold sets (keep one of each form)."""
        for have in self._forms.values():
            del have[1:]


class MatrixCache:
    """The MatrixSets of the last ``size`` (shape, density) keys used; older ones are freed."""

    def __init__(self, seed: int = 0, size: int = 1, llc: int | None = None):
        self.seed, self.size, self.llc = seed, size, llc
        self._sets: dict[tuple, MatrixSet] = {}

    def __call__(self, m: int, k: int, density: float, pattern: str | None = None) -> MatrixSet:
        key = (m, k, density, pattern)
        ms = self._sets.pop(key, None)
        if ms is None:
            ms = MatrixSet(m, k, density, self.seed, self.llc, pattern)
        self._sets[key] = ms
        while len(self._sets) > self.size:
            del self._sets[next(iter(self._sets))]
        return ms


def random_x(k: int, n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng([seed, k, n, 7]).standard_normal((k, n), dtype=F32)


# --------------------------------------------------------------------------- configuration

@contextmanager
def configured(backend: str | None = None, isa: str | None = None, threads: int | None = None):
    """Run the block on sparsekern ``backend`` / ``isa`` / ``threads``; restore after."""
    prev = sk.info()
    if backend:
        sk.set_backend(backend)
    cur = sk.info()
    try:
        if isa:
            sk.set_isa(isa)
        if threads:
            sk.set_num_threads(threads)
        yield sk.info()
    finally:
        if isa:
            sk.set_isa(cur["isa"])
        if threads:
            sk.set_num_threads(cur["threads"])
        sk.set_backend(prev["backend"])


def blas_threads(n: int):
    """Limit numpy's BLAS (only: not the OpenMP runtime sparsekern may share) to n threads."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=n, user_api="blas")


# --------------------------------------------------------------------------- timing

@dataclass
class Timing:
    median: float                 # seconds per call
    samples: list[float]          # seconds per call, one per sample
    inner: int                    # calls per sample
    operands: int                 # matrices rotated through


def _loop(fn, ops, X, n: int, start: int) -> int:
    if len(ops) == 1:
        W = ops[0]
        for _ in range(n):
            fn(W, X)
        return start
    k = len(ops)
    for i in range(start, start + n):
        fn(ops[i % k], X)
    return (start + n) % k


def measure(ops: list, X: np.ndarray, *, fn=operator.matmul, repeat: int = 5,
            min_repeat: int = 3, min_sample_s: float = 0.01, budget_s: float = 1.0):
    """Median seconds per ``fn(W, X)``, W rotating through ``ops``; and the first result.

    Warm-up (untimed): one call on every operand. Then the calls per sample are
    calibrated so a sample lasts ``min_sample_s``, and ``repeat`` samples are taken,
    fewer (not below ``min_repeat``) when they would exceed ``budget_s``.
    """
    first = fn(ops[0], X)
    for W in ops[1:]:
        fn(W, X)
    pos, n = 0, 1  # ops[0] is now the least recently used
    while True:
        t = time.perf_counter()
        pos = _loop(fn, ops, X, n, pos)
        dt = time.perf_counter() - t
        if dt >= 1e-3 or n >= 10**6:
            break
        n *= 10
    est = dt / n
    inner = max(1, math.ceil(min_sample_s / max(est, 1e-9)))
    reps = int(min(repeat, max(min_repeat, budget_s // (inner * max(est, 1e-9)))))
    samples = []
    for _ in range(reps):
        t = time.perf_counter()
        pos = _loop(fn, ops, X, inner, pos)
        samples.append((time.perf_counter() - t) / inner)
    return Timing(float(np.median(samples)), samples, inner, len(ops)), first



@dataclass
class Settings:
    repeat: int = 5
    min_repeat: int = 3
    min_sample_s: float = 0.01
    budget_s: float = 0.8


QUICK = Settings(repeat=15, min_sample_s=0.03, budget_s=2.0)
FULL = Settings(repeat=11, min_sample_s=0.03, budget_s=2.0)


def fmt_time(s: float) -> str:
    if s < 1e-3:
        return f"{s * 1e6:.2f} us" if s < 1e-5 else f"{s * 1e6:.1f} us"
    if s < 1:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.2f} s"


def header_lines(threads: int | None = None) -> list[str]:
    import scipy

    info = sk.info()
    llc, src = llc_bytes()
    lines = [
        f"cpu: {cpu_model()} ({os.cpu_count()} logical CPUs), LLC {llc / MiB:g} MiB ({src})",
        "sparsekern: " + ", ".join(f"{k}={v}" for k, v in info.items()),
        f"python {platform.python_version()}, numpy {np.__version__}, scipy {scipy.__version__}"
        + _numba_version(),
    ]
    for b in blas_info() or [{}]:
        if not b:
            lines.append("numpy BLAS: none found by threadpoolctl")
            continue
        lim = f" (limited to {threads} while timing)" if threads else ""
        lines.append(f"numpy BLAS: {b.get('internal_api')} {b.get('version')}, architecture="
                     f"{b.get('architecture')}, num_threads={b.get('num_threads')}{lim}, "
                     f"{os.path.basename(b.get('filepath', ''))}")
    warn = openblas_warning()
    if warn:
        lines.append(warn)
    return lines


def _numba_version() -> str:
    try:
        import numba
    except ImportError:
        return ", numba not installed"
    return f", numba {numba.__version__}"


