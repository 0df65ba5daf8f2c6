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
import os
import platform
import sys
import time
from dataclasses import asdict

import numpy as np

import sparsekern as sk

from ._common import (FULL, QUICK, MiB, MatrixCache, MatrixSet, blas_info, blas_threads,
                      cold_count, configured, cpu_model, header_lines, llc_bytes, measure,
                      nbytes_of, openblas_env, openblas_warning, random_unstructured, random_x,
                      read_bandwidth, to_csr)
from ._common import NOISY
from .spmm import LEGEND, add_ref_note, build_cases, run_case, table_header, table_row

__all__ = [
    "random_unstructured", "random_x", "to_csr", "nbytes_of", "cold_count", "MatrixSet",
    "MatrixCache", "configured", "blas_threads", "measure", "llc_bytes", "cpu_model",
    "blas_info", "openblas_env", "read_bandwidth", "header_lines", "run", "add_arguments",
    "main",
]


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
        from . import act

        act_rows = act.run(args, say, bw, llc)
    conv_rows: list[dict] = []
    if not getattr(args, "no_conv", False):   # sparse conv2d and MobileNetV1
        from . import conv

        with blas_threads(args.threads), configured(threads=args.threads):
            conv_rows = conv.run(args, say)
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
                        "with the same matrix in the unstructured format, a 1x1 conv, threads, "
                        "ISA and backend variants, "
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
