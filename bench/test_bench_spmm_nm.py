"""N:M structured SpMM ``W @ X``: every sparsekern variant (C library per ISA,
numba) on the packed N:M matrix, against dense numpy ``W @ X``, scipy ``csr_array @ X``
and sparsekern's unstructured format on the same matrix (the second baseline: the
structure must pay for itself).

    pytest bench/test_bench_spmm_nm.py --benchmark-only --benchmark-group-by=group,param:pattern,param:n

Batch-1 cases rotate through sets of matrices larger than twice the last-level cache
(cold weights) unless ``--sk-warm`` is given; matrices, rotation and machine facts come
from ``sparsekern.bench`` (``sparsekern bench`` times the same cases)."""
from __future__ import annotations

import pytest

from sparsekern import bench as skb
from conftest import sparsekern_impls, time_matmul

PATTERNS = ("2:4", "1:4", "1:8", "4:16")
BATCHES = (1, 8, 64, 256)


IMPLS = sparsekern_impls() + ["unstructured", "numpy", "scipy"]
_FORM = {"numpy": "dense", "scipy": "csr", "unstructured": "unstructured"}


def _density(pattern: str) -> float:
    n, m = (int(v) for v in pattern.split(":"))
    return n / m


def _run(benchmark, matrices, threads, impl, m, k, n, pattern, cold=False):
    ms = matrices(m, k, _density(pattern), pattern)
    form = _FORM.get(impl, "packed")
    ops = ms.ops(form, cold)
    P = ms.ops("packed")[0]
    X = skb.random_x(k, n, 42)
    backend, _, isa = impl.partition("-") if form == "packed" else ("", "", "")
    sk_form = form in ("packed", "unstructured")
    benchmark.extra_info.update(
        impl=impl, backend=backend or impl, isa=isa or None, pattern=pattern, shape=f"{m}x{k}",
        n=n, nnz=P.nnz, cold=cold, operands=len(ops), threads=threads if impl != "scipy" else 1,
        flops_useful=2 * P.nnz * n, flops_dense_equiv=2 * m * k * n)
    time_matmul(benchmark, ops, X, cold=cold, nnz=P.nnz, shape=(m, k),
                configure=skb.configured(backend or None, isa or None, threads if sk_form else None))


CASES = [(p, n, i) for p in PATTERNS for n in BATCHES for i in IMPLS
         if not (i == "scipy" and n == 256)]          # scipy at N=256 takes seconds per call


@pytest.mark.benchmark(group="spmm-nm-4096x4096")
@pytest.mark.parametrize("pattern,n,impl", CASES, ids=[f"{p}-n{n}-{i}" for p, n, i in CASES])
def test_spmm_nm_4096x4096(benchmark, matrices, threads, cold_mode, pattern, n, impl):
    _run(benchmark, matrices, threads, impl, 4096, 4096, n, pattern, cold=cold_mode and n == 1)


TINY = [(p, i) for p in ("2:4",) for i in IMPLS]


@pytest.mark.benchmark(group="spmm-nm-tiny-8x8-n8")
@pytest.mark.parametrize("pattern,impl", TINY, ids=[f"{p}-{i}" for p, i in TINY])
def test_spmm_nm_tiny(benchmark, matrices, threads, pattern, impl):
    """Call overhead: 8x8 packed 2:4 @ 8x8, end to end."""
    _run(benchmark, matrices, threads, impl, 8, 8, 8, pattern)
