"""Activation sparsity (format "act"): ``sk.linear(x, pack(W, "act"))`` against dense numpy
``x @ W.T`` and the numpy gather baseline ``x[nz] @ Wt[nz]``, batch 1 (and batch 8 with
shared zeros), plus a DeltaLinear stream step. Same matrices, inputs and cold rotation as
the act rows of ``sparsekern bench`` (sparsekern/bench/act.py).

    pytest bench/test_bench_act.py --benchmark-only --benchmark-columns=median,rounds

Weights are cold (rotation > 2 x LLC) unless ``--sk-warm``; every call takes the next
input of a pool of 97 with zeros at their own random positions.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest

import sparsekern as sk
from sparsekern.bench import act as ba
from sparsekern import bench as skb

SHAPES = [(4096, 4096), (11008, 4096), (4096, 11008)]
SPARSITIES = (0.0, 0.5, 0.9, 0.97)
IMPLS = ("sparsekern", "numpy", "gather")


@pytest.fixture(scope="module")
def act_sets(cold_mode):
    """``act_sets(m, k)`` -> ba.ActSet; keeps only the last shape (they are large)."""
    cache = {}

    def get(m, k):
        if (m, k) not in cache:
            cache.clear()
            cache[(m, k)] = ba.ActSet(m, k, seed=42, cold=cold_mode)
        return cache[(m, k)]
    yield get
    cache.clear()


def _pedantic(benchmark, ops, pool, fn):
    rot = itertools.cycle(ops)
    xs = itertools.cycle(pool)
    benchmark.pedantic(fn, setup=lambda: ((next(rot), next(xs)), {}),
                       rounds=max(30, 3 * len(ops)), warmup_rounds=len(ops))


def _run_impl(benchmark, sets, pool, case, threads, impl):
    """Times impl ("sparsekern", "numpy" or the numpy gather) on the rotating weight sets."""
    with skb.configured(threads=threads):
        if impl == "sparsekern":
            _pedantic(benchmark, sets.ops("act", sets.cold), pool, lambda W, x: sk.linear(x, W))
        elif impl == "numpy":
            _pedantic(benchmark, sets.ops("dense", sets.cold), pool, lambda W, x: x @ W.T)
        else:
            _pedantic(benchmark, sets.ops("act", sets.cold), pool, ba.gather_fn(case, {}))


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("sparsity", SPARSITIES)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_act_linear(benchmark, act_sets, threads, impl, sparsity, shape):
    m, k = shape
    sets = act_sets(m, k)
    case = ba.ActCase("exact", m, k, sparsity)
    pool = ba.input_pool(k, 1, sparsity, np.random.default_rng([42, m, k]))
    benchmark.group = f"act {m}x{k} {sparsity:.0%} zeros"
    benchmark.extra_info.update(impl=impl, shape=f"{m}x{k}", sparsity=sparsity, cold=sets.cold,
                                operands=sets.count, threads=threads,
                                bytes_read=4 * m * k * (1 - sparsity) if impl != "numpy"
                                else 4 * m * k)
    _run_impl(benchmark, sets, pool, case, threads, impl)


@pytest.mark.parametrize("impl", IMPLS)
def test_act_batch8_shared_zeros(benchmark, act_sets, threads, impl):
    m, k = SHAPES[0]
    sets = act_sets(m, k)
    case = ba.ActCase("batch8", m, k, 0.9, n=8)
    pool = ba.input_pool(k, 8, 0.9, np.random.default_rng(7), shared=True)
    benchmark.group = f"act batch8 {m}x{k}"
    benchmark.extra_info.update(impl=impl, shape=f"{m}x{k}", n=8, shared_zeros=0.9)
    _run_impl(benchmark, sets, pool, case, threads, impl)


@pytest.mark.parametrize("impl", ("sparsekern", "numpy"))
def test_act_delta_stream(benchmark, act_sets, threads, impl):
    """One step of a stream where 90% of the inputs move by much less than theta."""
    m, k = SHAPES[0]
    sets = act_sets(m, k)
    rng = np.random.default_rng(3)
    theta = 0.1
    x = [np.abs(rng.standard_normal(k, dtype=np.float32))]
    for _ in range(ba.POOL):
        step = np.where(rng.random(k) < 0.1, rng.standard_normal(k, dtype=np.float32),
                        rng.standard_normal(k, dtype=np.float32) * np.float32(theta * 0.02))
        x.append((x[-1] + step).astype(np.float32))
    benchmark.group = f"act delta {m}x{k}"
    benchmark.extra_info.update(impl=impl, shape=f"{m}x{k}", theta=theta)
    n_layers = sets.count if sets.cold else 1
    x = [xt for xt in x for _ in range(n_layers)]     # every layer sees the stream in order
    with skb.configured(threads=threads):
        if impl == "sparsekern":
            layers = [sk.DeltaLinear(W, threshold=theta) for W in sets.ops("act", sets.cold)]
            _pedantic(benchmark, layers, x, lambda d, xt: d(xt))
            benchmark.extra_info["skipped"] = float(np.mean([d.stats for d in layers]))
        else:
            _pedantic(benchmark, sets.ops("dense", sets.cold), x, lambda W, xt: xt @ W.T)
