"""Unstructured SpMM ``W @ X``: every sparsekern variant (C library per ISA, numba)
against dense numpy ``W @ X`` and scipy ``csr_array @ X`` on the same W.

Groups are per shape; compare implementations case by case with
``--benchmark-group-by=group,param:density,param:n``. Batch-1 cases rotate through
packed/CSR/dense sets larger than twice the last-level cache (cold weights,
``benchmark.pedantic`` with a rotating ``setup``) unless ``--sk-warm`` is given.
extra_info holds the counters: nnz, useful FLOPs 2·nnz·N, dense-equivalent FLOPs
2·M·K·N, and the matching GFLOPS from the median time.
"""
from __future__ import annotations

import pytest

from sparsekern import bench as skb
from conftest import sparsekern_impls, time_matmul

DENSITIES = (0.05, 0.1, 0.3)
BATCHES = (1, 8, 64, 256)


IMPLS = sparsekern_impls() + ["numpy", "scipy"]
_FORM = {"numpy": "dense", "scipy": "csr"}


def _run(benchmark, matrices, threads, impl, m, k, n, density, cold=False):
    ms = matrices(m, k, density)
    form = _FORM.get(impl, "packed")
    ops = ms.ops(form, cold)
    P = ms.ops("packed")[0]
    X = skb.random_x(k, n, 42)
    backend, _, isa = impl.partition("-") if form == "packed" else ("", "", "")
    benchmark.extra_info.update(
        impl=impl, backend=backend or impl, isa=isa or None, shape=f"{m}x{k}", n=n,
        density=density, nnz=P.nnz, cold=cold, operands=len(ops),
        threads=threads if impl != "scipy" else 1,
        flops_useful=2 * P.nnz * n, flops_dense_equiv=2 * m * k * n)
    time_matmul(benchmark, ops, X, cold=cold, nnz=P.nnz, shape=(m, k),
                configure=skb.configured(backend or None, isa or None, threads if form == "packed" else None))


CASES_4096 = [(d, n, i) for d in DENSITIES for n in BATCHES for i in IMPLS]
CASES_CONV = [(d, 784, i) for d in DENSITIES for i in IMPLS]
CASES_TINY = [(0.5, 8, i) for i in IMPLS]


def _ids(cases):
    return [f"d{d}-n{n}-{i}" for d, n, i in cases]


@pytest.mark.benchmark(group="spmm-4096x4096")
@pytest.mark.parametrize("density,n,impl", CASES_4096, ids=_ids(CASES_4096))
def test_spmm_4096x4096(benchmark, matrices, threads, cold_mode, density, n, impl):
    _run(benchmark, matrices, threads, impl, 4096, 4096, n, density, cold=cold_mode and n == 1)


@pytest.mark.benchmark(group="spmm-conv1x1-256x256-n784")
@pytest.mark.parametrize("density,n,impl", CASES_CONV, ids=_ids(CASES_CONV))
def test_spmm_conv1x1(benchmark, matrices, threads, density, n, impl):
    """A 1x1 convolution, 256 -> 256 channels on a 28x28 map: W[256, 256] @ X[256, 784]."""
    _run(benchmark, matrices, threads, impl, 256, 256, n, density)


@pytest.mark.benchmark(group="spmm-tiny-8x8-n8")
@pytest.mark.parametrize("density,n,impl", CASES_TINY, ids=_ids(CASES_TINY))
def test_spmm_tiny(benchmark, matrices, threads, density, n, impl):
    """Call overhead: 8x8 packed @ 8x8, end to end (sparsekern's bar is 5 us)."""
    _run(benchmark, matrices, threads, impl, 8, 8, n, density)
