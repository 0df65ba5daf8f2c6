"""pytest-benchmark suite for sparsekern; not part of the default test run (testpaths = tests).

    pytest bench --benchmark-only --benchmark-group-by=group,param:density,param:n
    pytest bench --benchmark-disable      # smoke test: every benchmark runs once
    pytest bench --benchmark-only --sk-threads 2 --sk-warm

Matrices, cold-weight rotation and machine facts come from ``sparsekern.bench``, the
module behind ``sparsekern bench``, so both time the same things the same way.
"""
from __future__ import annotations

import itertools
import operator

import numpy as np
import pytest

from sparsekern import bench as skb


def sparsekern_impls() -> list[str]:
    """Every sparsekern variant here: "c-<isa>" per ISA the C library runs, and "numba"."""
    import sparsekern as sk

    info = sk.info()
    out = []
    if "c" in info["backends_available"]:
        with skb.configured("c") as c:
            out += [f"c-{isa}" for isa in c["isas_available"]]
    if "numba" in info["backends_available"]:
        out.append("numba")
    return out


def pytest_addoption(parser):
    g = parser.getgroup("sparsekern")
    g.addoption("--sk-threads", type=int, default=1,
                help="threads for sparsekern and numpy's BLAS (default 1; scipy runs one)")
    g.addoption("--sk-warm", action="store_true",
                help="no cold-weights rotation: batch-1 cases reuse one matrix")


def pytest_report_header(config):
    return skb.header_lines(config.getoption("--sk-threads"))


@pytest.fixture(scope="session")
def threads(request):
    """The thread count; numpy's BLAS is limited to it for the whole session."""
    n = request.config.getoption("--sk-threads")
    with skb.blas_threads(n):
        yield n


@pytest.fixture(scope="session")
def cold_mode(request) -> bool:
    return not request.config.getoption("--sk-warm")


@pytest.fixture
def rng():
    return np.random.default_rng(42)


@pytest.fixture(scope="session")
def matrices():
    """``matrices(m, k, density)`` -> sparsekern.bench.MatrixSet; keeps only the last one."""
    return skb.MatrixCache(seed=42, size=1)


def time_matmul(benchmark, ops, X, *, cold: bool, nnz: int, shape, configure) -> None:
    """Time ``W @ X`` with W rotating through ``ops`` when ``cold`` (else ops[0]), inside
    the ``configure`` context (backend/ISA/threads), and record the GFLOPS counters."""
    m, k = shape
    n = X.shape[1]
    with configure:
        for W in ops:  # warm-up outside timing: numba compilation, first touch
            W @ X
        if cold:
            rotation = itertools.cycle(ops)
            benchmark.pedantic(operator.matmul, setup=lambda: ((next(rotation), X), {}),
                               rounds=max(30, 3 * len(ops)), warmup_rounds=len(ops))
        else:
            benchmark(operator.matmul, ops[0], X)
    if benchmark.stats is not None:
        t = benchmark.stats.stats.median
        benchmark.extra_info["GFLOPS"] = 2 * nnz * n / t / 1e9
        benchmark.extra_info["GFLOPS_dense_equiv"] = 2 * m * k * n / t / 1e9
        if n == 1:  # bytes of W this implementation reads (packed, CSR or dense) per second
            benchmark.extra_info["GBps_weights"] = skb.nbytes_of(ops[0]) / t / 1e9
