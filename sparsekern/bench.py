"""``sparsekern bench``: sparsekern against dense numpy and scipy.sparse, in one run.

Every case times ``W @ X`` three ways, one after the other, with the same threads:
sparsekern's packed W, the same W dense (numpy, BLAS limited to the same thread
count with threadpoolctl) and the same W as a ``scipy.sparse.csr_array`` (int32
indices; scipy is single-threaded). Times are medians of several samples; each
sample loops enough calls to last at least a few milliseconds, and everything is
warmed up first (numba compilation, first touch of every operand).

Cold weights: a model reads each layer's weights once per token, long after they
left the cache, so batch-1 rows rotate through as many distinct matrices as it
takes for their total bytes to exceed twice the last-level cache. sparsekern,
scipy and numpy each rotate through their own set (one set's bytes per call differ:
6 B per nonzero packed, 8 in CSR, 4·M·K dense), built from the same matrices.

The helpers here (random matrices, cold rotation, configuration, machine facts)
are shared with the pytest-benchmark files in ``bench/``.
"""
from __future__ import annotations

import argparse
import json
import math
import operator
import os
import platform
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import numpy as np

import sparsekern as sk

from .formats import PackedMatrix, UnstructuredMatrix
from .nm import NMMatrix

__all__ = [
    "random_unstructured", "to_csr", "nbytes_of", "cold_count", "MatrixSet", "MatrixCache",
    "configured", "measure", "llc_bytes", "cpu_model", "blas_info", "openblas_env",
    "read_bandwidth", "header_lines", "main",
]

F32 = np.float32
MiB = 2**20
DEFAULT_LLC = 32 * MiB
OPENBLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


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


# --------------------------------------------------------------------------- cases

@dataclass
class Case:
    name: str                     # linear, conv1x1, threads, isa, backend, tiny
    m: int
    k: int
    n: int
    density: float
    cold: bool = False
    threads: int = 1
    backend: str | None = None    # None: the run's backend
    isa: str | None = None        # None: the run's ISA
    ref: int | None = None        # index of the case this one is compared with (note)
    label: str = ""               # what the note calls this case
    ref_label: str = ""
    pattern: str | None = None    # N:M pattern ("2:4"): W is N:M structured, density N/M


@dataclass
class Settings:
    repeat: int = 5
    min_repeat: int = 3
    min_sample_s: float = 0.01
    budget_s: float = 0.8


QUICK = Settings(repeat=15, min_sample_s=0.03, budget_s=2.0)
FULL = Settings(repeat=11, min_sample_s=0.03, budget_s=2.0)


def build_cases(full: bool, threads: int, cold: bool, backend: str, isa: str) -> list[Case]:
    big = (4096, 4096)
    cases: list[Case] = []

    def linear(shape, d, n):
        cases.append(Case("linear", *shape, n, d, cold=cold and n == 1, threads=threads))
        return len(cases) - 1

    if full:
        sweep_d, sweep_n = (0.02, 0.05, 0.1, 0.2, 0.3, 0.5), (1, 8, 16, 64, 256)
    else:
        sweep_d, sweep_n = (0.1,), (1, 8, 64, 256)
    ref = None
    for d in sweep_d:
        for n in sweep_n:
            i = linear(big, d, n)
            if d == 0.1 and n == 64:
                ref = i
        if d == 0.1:
            # the variants, next to the row they are compared with
            alt_threads = 2 if threads == 1 else 1
            if (os.cpu_count() or 1) >= 2:
                cases.append(Case("threads", *big, 64, 0.1, threads=alt_threads, ref=ref,
                                  label=f"{alt_threads} thread{'s' * (alt_threads > 1)}",
                                  ref_label=f"{threads}"))
            if backend == "c":
                isas = sk.info()["isas_available"]
                if "avx2" in isas and isa != "avx2":
                    cases.append(Case("isa", *big, 64, 0.1, threads=threads, isa="avx2",
                                      ref=ref, label="avx2", ref_label=isa))
                if "numba" in sk.info()["backends_available"]:
                    cases.append(Case("backend", *big, 64, 0.1, threads=threads,
                                      backend="numba", ref=ref, label="numba",
                                      ref_label=f"c/{isa}"))
    if not full:
        for d in (0.05, 0.3):
            linear(big, d, 64)
    else:
        for shape in ((1024, 1024), (11008, 4096)):
            for d in sweep_d:
                for n in sweep_n:
                    linear(shape, d, n)
    # N:M structured (issue 3): the same matrix also timed in the unstructured format
    if full:
        nm_ns = {"2:4": (1, 8, 16, 64, 256), "1:4": (1, 8, 64, 256), "1:8": (1, 8, 64, 256),
                 "4:8": (1, 8, 64, 256), "4:16": (1, 8, 64, 256), "2:8": (1, 64)}
    else:
        nm_ns = {"2:4": (1, 8, 64, 256), "1:4": (1, 64), "1:8": (1, 64)}
    for pattern, ns in nm_ns.items():
        pn, pm = (int(v) for v in pattern.split(":"))
        for n in ns:
            cases.append(Case(f"nm {pattern}", *big, n, pn / pm, cold=cold and n == 1,
                              threads=threads, pattern=pattern))
    cases.append(Case("conv1x1", 256, 256, 784, 0.1, threads=threads))
    cases.append(Case("tiny", 8, 8, 8, 0.5, threads=threads))
    return cases


TINY_BAR_S = 5e-6
NOISY = 0.25        # flag a row when its samples spread over more than this fraction of the median


def run_case(case: Case, sets: MatrixCache, st: Settings, bw: float, baselines: dict,
             seed: int = 0) -> dict:
    ms = sets(case.m, case.k, case.density, case.pattern)
    X = random_x(case.k, case.n, seed)
    kw = dict(repeat=st.repeat, min_repeat=st.min_repeat, min_sample_s=st.min_sample_s,
              budget_s=st.budget_s)
    packed = ms.ops("packed", case.cold)
    with configured(case.backend, case.isa, case.threads) as cfg:
        t_sk, y_sk = measure(packed, X, **kw)
    key = (case.m, case.k, case.density, case.n, case.cold, case.threads, case.pattern)
    if key not in baselines:
        with blas_threads(case.threads):
            t_np, y_np = measure(ms.ops("dense", case.cold), X, **kw)
        t_sp, _ = measure(ms.ops("csr", case.cold), X, **kw)
        baselines[key] = (t_np, t_sp, y_np)
    t_np, t_sp, y_np = baselines[key]
    t_un = None
    if case.pattern:   # the second baseline: the same N:M matrix, unstructured format
        with configured(case.backend, case.isa, case.threads):
            t_un, _ = measure(ms.ops("unstructured", case.cold), X, **kw)
    W = packed[0]
    scale = float(np.abs(y_np).max()) if y_np.size else 1.0
    err = float(np.abs(y_sk - y_np).max()) / max(scale, 1e-30) if y_np.size else 0.0
    nnz = float(np.mean([P.nnz for P in packed]))
    nbytes = float(np.mean([P.nbytes for P in packed]))
    row = dict(
        case=case.name, shape=f"{case.m}x{case.k}", m=case.m, k=case.k, n=case.n,
        density=case.density, density_actual=W.density, nnz=nnz, packed_bytes=nbytes,
        cold=case.cold, threads=case.threads,
        kernel=cfg["backend"] if cfg["backend"] != "c" else f"c/{cfg['isa']}",
        sparsekern_s=t_sk.median, numpy_s=t_np.median, scipy_s=t_sp.median,
        speedup_vs_numpy=t_np.median / t_sk.median, speedup_vs_scipy=t_sp.median / t_sk.median,
        gflops_useful=2 * nnz * case.n / t_sk.median / 1e9,
        gflops_dense_equiv=2 * case.m * case.k * case.n / t_sk.median / 1e9,
        gbps=nbytes / t_sk.median / 1e9,
        frac_read_bw=nbytes / t_sk.median / bw,
        numpy_frac_read_bw=4 * case.m * case.k / t_np.median / bw,
        rel_err_vs_numpy=err,
        timing={"sparsekern": asdict(t_sk), "numpy": asdict(t_np), "scipy": asdict(t_sp)},
    )
    if t_un is not None:
        row.update(pattern=case.pattern, unstructured_s=t_un.median,
                   speedup_vs_unstructured=t_un.median / t_sk.median)
        row["timing"]["unstructured"] = asdict(t_un)
    notes = []
    if t_un is not None:
        notes.append(f"vs unstructured (same W): {t_un.median / t_sk.median:.2f}x "
                     f"({fmt_time(t_un.median)})")
    if err > 1e-3:
        notes.append(f"MISMATCH vs numpy: rel err {err:.1e}")
    if case.cold:
        notes.append(f"cold: {t_sk.operands} packed/{t_sp.operands} csr/{t_np.operands} dense"
                     f", numpy at {row['numpy_frac_read_bw']:.0%} BW")
    for name, t in (("sparsekern", t_sk), ("numpy", t_np), ("scipy", t_sp)):
        lo, hi = min(t.samples), max(t.samples)
        if hi - lo > NOISY * t.median:
            notes.append(f"noisy {name}: {fmt_time(lo)}..{fmt_time(hi)}")
    if case.name == "tiny":
        ok = t_sk.median <= TINY_BAR_S
        notes.append(f"bar <= {TINY_BAR_S * 1e6:.0f} us: {'met' if ok else 'NOT met'}"
                     f" ({t_sk.inner} calls/sample)")
    row["notes"] = notes
    return row


def add_ref_note(row: dict, ref: dict, case: Case) -> None:
    r = ref["sparsekern_s"] / row["sparsekern_s"]
    text = f"{case.label} vs {case.ref_label}: {r:.2f}x"
    if case.name == "threads":
        text += f" (numpy {ref['numpy_s'] / row['numpy_s']:.2f}x)"
    row["notes"].append(text)


# --------------------------------------------------------------------------- report

def fmt_time(s: float) -> str:
    if s < 1e-3:
        return f"{s * 1e6:.2f} us" if s < 1e-5 else f"{s * 1e6:.1f} us"
    if s < 1:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.2f} s"


COLUMNS = [  # title, width, right-aligned
    ("case", 7, False), ("shape", 10, False), ("dens", 5, True), ("N", 4, True),
    ("mode", 4, False), ("thr", 3, True), ("kernel", 8, False), ("sparsekern", 10, True),
    ("numpy", 10, True), ("scipy", 10, True), ("x np", 6, True), ("x sp", 6, True),
    ("GF/s", 6, True), ("dGF/s", 6, True), ("GB/s", 5, True), ("%BW", 4, True), ("note", 0, False),
]


def _line(cells) -> str:
    out = []
    for (_, w, right), c in zip(COLUMNS, cells):
        out.append(c.rjust(w) if right else c.ljust(w))
    return "  ".join(out).rstrip()


def table_header() -> str:
    return _line([c[0] for c in COLUMNS])


def table_row(r: dict) -> str:
    bw_cells = [f"{r['gbps']:.1f}" if r["n"] == 1 else "-",
                f"{r['frac_read_bw']:.0%}" if r["n"] == 1 and r["cold"] else "-"]
    return _line([
        r["case"], r["shape"], f"{r['density']:.2f}", str(r["n"]),
        "cold" if r["cold"] else "warm", str(r["threads"]), r["kernel"],
        fmt_time(r["sparsekern_s"]), fmt_time(r["numpy_s"]), fmt_time(r["scipy_s"]),
        f"{r['speedup_vs_numpy']:.2f}", f"{r['speedup_vs_scipy']:.2f}",
        f"{r['gflops_useful']:.1f}", f"{r['gflops_dense_equiv']:.1f}", *bw_cells,
        "; ".join(r["notes"]),
    ])


LEGEND = """\
x np, x sp: time of numpy (dense W @ X), of scipy (csr_array @ X), over sparsekern's;
  > 1: sparsekern is faster. numpy's BLAS runs the row's threads; scipy runs one.
GF/s: useful, 2*nnz*N/t. dGF/s: dense-equivalent, 2*M*K*N/t (sparsity paid if above numpy's).
GB/s (N=1 rows): packed bytes read per call / t. %BW (cold rows): that / read bandwidth above.
mode cold: sparsekern, scipy and numpy each rotate through their own set of matrices
  totalling > 2 x LLC (counts in the note); warm: one matrix, called again and again.
Times: median of samples, each looping calls for >= {min_sample_ms:g} ms, after a warm-up;
  "noisy": samples spread (min..max) over {noisy:.0%} of the median; rerun on a quiet machine."""


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


def run(args) -> int:
    t_start = time.perf_counter()
    backend = args.backend or sk.info()["backend"]
    if args.threads < 1:
        print("sparsekern bench: --threads must be >= 1", file=sys.stderr)
        return 2
    try:
        sk.set_backend(backend)
        if args.isa:
            sk.set_isa(args.isa)
        sk.set_num_threads(args.threads)
    except (ValueError, ImportError) as e:
        print(f"sparsekern bench: {e}", file=sys.stderr)
        return 2
    isa = sk.info()["isa"]
    st = FULL if args.full else QUICK
    mode = "full" if args.full else "quick"
    out = sys.stdout

    def say(s=""):
        print(s, file=out, flush=True)

    say(f"sparsekern bench ({mode}): W @ X, float32, zeros at random positions; "
        f"{time.strftime('%Y-%m-%d %H:%M:%S')}")
    for line in header_lines(args.threads):
        say(line)
    if args.threads > (os.cpu_count() or 1):
        say(f"WARNING: --threads {args.threads} exceeds the {os.cpu_count()} logical CPUs")
    bw = read_bandwidth()
    llc = llc_bytes()[0]
    say(f"read bandwidth: {bw / 1e9:.1f} GB/s (512 MiB float32, 1 thread: best of numpy max, "
        f"dot and matrix-vector, median of 5 each)")
    say(f"cold mode: {'off (--warm)' if args.warm else 'batch-1 rows'}; rotation sets exceed "
        f"2 x LLC = {2 * llc / MiB:g} MiB")
    say()
    cases = build_cases(args.full, args.threads, not args.warm, backend, isa)
    sets = MatrixCache(seed=args.seed, size=1)
    baselines: dict = {}
    rows: list[dict] = []
    say(table_header())
    with blas_threads(args.threads), configured(threads=args.threads):
        for i, case in enumerate(cases):
            row = run_case(case, sets, st, bw, baselines, args.seed)
            if case.ref is not None:
                add_ref_note(row, rows[case.ref], case)
            rows.append(row)
            say(table_row(row))
            if case.cold:
                sets(case.m, case.k, case.density, case.pattern).drop_cold()
            nxt = cases[i + 1] if i + 1 < len(cases) else None
            if nxt is None or ((nxt.m, nxt.k, nxt.density, nxt.pattern)
                               != (case.m, case.k, case.density, case.pattern)):
                baselines.clear()
    say()
    say(LEGEND.format(min_sample_ms=st.min_sample_s * 1e3, noisy=NOISY))
    act_rows: list[dict] = []
    if not args.no_act:   # activation sparsity (format "act"): its own table and legend
        from . import _bench_act

        act_rows = _bench_act.run(args, say, bw, llc)
    conv_rows: list[dict] = []
    if not getattr(args, "no_conv", False):   # sparse conv2d and MobileNetV1 (issue 5)
        from . import _bench_conv

        with blas_threads(args.threads), configured(threads=args.threads):
            conv_rows = _bench_conv.run(args, say)
    warn = openblas_warning()
    if warn:
        say(warn)
    wall = time.perf_counter() - t_start
    say(f"total {wall:.1f} s")
    if args.json:
        meta = dict(mode=mode, cpu=cpu_model(), cpus=os.cpu_count(), llc_bytes=llc,
                    read_bandwidth_Bps=bw, sparsekern=sk.info(), numpy=np.__version__,
                    python=platform.python_version(), blas=blas_info(),
                    openblas_env=openblas_env(), threads=args.threads, cold=not args.warm,
                    settings=asdict(st), seed=args.seed, wall_s=wall,
                    time=time.strftime("%Y-%m-%dT%H:%M:%S"))
        import scipy

        meta["scipy"] = scipy.__version__
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "rows": rows, "act_rows": act_rows,
                       "conv_rows": conv_rows}, f, indent=1,
                      default=str)
        say(f"wrote {args.json}")
    return 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true",
                   help="the default set: 4096x4096 at density 0.1 x N in {1,8,64,256}, density "
                        "0.05 and 0.3 at N=64, N:M 2:4 (N 1..256), 1:4 and 1:8 (N 1, 64) "
                        "with the same matrix in the unstructured format, a 1x1 conv, threads, ISA and backend variants, "
                        "a tiny call (well under a minute)")
    g.add_argument("--full", action="store_true",
                   help="density {0.02,0.05,0.1,0.2,0.3,0.5} x N {1,8,16,64,256} on 4096x4096, "
                        "1024x1024 and 11008x4096, plus the quick extras (many minutes)")
    p.add_argument("--threads", type=int, default=1,
                   help="threads for sparsekern and numpy's BLAS (default 1)")
    p.add_argument("--warm", action="store_true",
                   help="no cold-weights rotation: batch-1 rows reuse one matrix")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    p.add_argument("--backend", choices=("c", "numba"),
                   help="sparsekern backend (default: the current one)")
    p.add_argument("--isa", help="cap the C library's ISA (scalar, avx2, avx512, ...)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the matrices (default 0)")
    p.add_argument("--no-act", action="store_true",
                   help="skip the activation-sparsity rows (format 'act')")
    p.add_argument("--no-conv", action="store_true",
                   help="skip the sparse conv2d rows (MobileNetV1 1x1 layers, 3x3, whole network)")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="sparsekern bench",
                                description=__doc__.split("\n\n")[0].replace("``", ""))
    add_arguments(p)
    return run(p.parse_args(argv))
