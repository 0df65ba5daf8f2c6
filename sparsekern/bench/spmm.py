"""The SpMM section of ``sparsekern bench``: unstructured and N:M W @ X against dense
numpy and scipy.sparse (the rows of the main table)."""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass

import numpy as np

import sparsekern as sk

from ._common import (NOISY, MatrixCache, Settings, blas_threads, configured, fmt_time, measure,
                      random_x)


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
    # N:M structured: the same matrix also timed in the unstructured format
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


