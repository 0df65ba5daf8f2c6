"""pytest-benchmark suite for sparsekern; not part of the default test run (testpaths = tests).

    pytest bench --benchmark-only --benchmark-group-by=group,param:density,param:n
    pytest bench --benchmark-disable      # smoke test: every benchmark runs once
    pytest bench --benchmark-only --sk-threads 2 --sk-warm

Matrices, cold-weight rotation and machine facts come from ``sparsekern.bench``, the
module behind ``sparsekern bench``, so both time the same things the same way.
"""
from __future__ import annotations

import numpy as np
import pytest

from sparsekern import bench as skb


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
