"""Many Python threads on one packed matrix, thread-count changes during calls, and no
leaks (RSS over many calls, pack/free cycles and short-lived threads).

Every op runs on shared weights from 8-32 threads at once with a 1 us switch interval,
first calls included (fresh weights each trial, so the C handle, the AVX-512 panel
layout and a conv weight's matrix are built while other threads call), and every
result must be bitwise equal to the single-threaded one. The work runs in a subprocess
per backend (a race in the lazily built C handles is a segfault, not an exception),
which prints one JSON line of per-op results; the tests below read it.
"""
from __future__ import annotations

import functools
import json
import os
import textwrap

import pytest

from _subproc import run_python
from conftest import BACKEND_IDS, c_backend_or_none
from sparsekern import _backends

# The ops of OPS_SRC's build_ops; "conv2d_depthwise_churn" (a pool of dense weights larger
# than conv2d's cache, so threads evict entries others are reading) runs in the race only.
OPS = ("matmul", "matmul_panels", "linear", "nm_matmul", "nm_matmul64", "nm_linear",
       "act_linear", "act_threshold", "act_topk", "act_wina", "delta_linear",
       "conv2d", "conv2d_nm", "conv2d_1x1", "conv2d_1x1_nm", "conv2d_depthwise")
RACE_OPS = OPS + ("conv2d_depthwise_churn",)

OPS_SRC = textwrap.dedent(r'''
    import gc, json, os, sys, threading
    import numpy as np
    import sparsekern as sk

    BACKEND = sys.argv[1]
    if BACKEND == "numba":
        sk.set_backend("numba")
    else:
        sk.set_backend("c")
        sk.set_isa(BACKEND[2:])
    sk.set_num_threads(2)   # numba: this thread's; others get NUMBA_NUM_THREADS

    def sparse(rng, shape, density):
        W = rng.standard_normal(shape).astype(np.float32)
        W[rng.random(shape) >= density] = 0
        return W

    def build_ops(rng, m, k, hw):
        """name -> (make, call): make() packs fresh weights from fixed dense arrays (the
        first call on them builds their C handle, panels, conv matrix or cache entry);
        call(w) runs the op and returns its float32 result. W is (m, k) at density 0.2:
        with k >= 256 its batch-64 calls take the AVX-512 panel path. hw: conv image size."""
        f32 = lambda a: np.ascontiguousarray(a, np.float32)
        W = sparse(rng, (m, k), 0.2)
        Wd = f32(rng.standard_normal((m, k)))
        X64, X5 = f32(rng.standard_normal((k, 64))), f32(rng.standard_normal((k, 5)))
        x = f32(rng.standard_normal((7, k)))
        xr = np.maximum(x, 0)
        b = f32(rng.standard_normal(m))
        xs = [f32(np.maximum(rng.standard_normal((3, k)), 0)) for _ in range(4)]
        W3, W1 = sparse(rng, (16, 8, 3, 3), 0.5), sparse(rng, (32, 16, 1, 1), 0.5)
        Wdw = f32(rng.standard_normal((8, 1, 3, 3)))
        pool = [f32(rng.standard_normal((4, 1, 3, 3))) for _ in range(70)]
        xc8, xc16 = f32(rng.standard_normal((2, 8, hw, hw))), f32(rng.standard_normal((2, 16, hw, hw)))
        xc4 = f32(rng.standard_normal((1, 4, 5, 5)))
        b16 = f32(rng.standard_normal(16))

        def delta(w):   # one DeltaLinear per call (they are not thread-safe)
            d = sk.DeltaLinear(w, b, threshold=0.1)
            return np.stack([d(xt) for xt in xs])

        def churn(ws):  # every weight of the pool, starting at a different one per thread
            out = [None] * len(ws)
            start = threading.get_ident() % len(ws)
            for i in range(len(ws)):
                j = (start + i) % len(ws)
                out[j] = sk.conv2d(xc4, ws[j], padding=1, groups=4)
            return np.stack(out)

        unst = lambda: sk.pack(W)
        nm = lambda: sk.pack(W, "2:4")
        act = lambda: sk.pack(Wd, "act")
        return {
            "matmul": (unst, lambda w: sk.matmul(w, X5)),
            "matmul_panels": (unst, lambda w: w @ X64),
            "linear": (unst, lambda w: sk.linear(x, w, b)),
            "nm_matmul": (nm, lambda w: sk.matmul(w, X5)),
            "nm_matmul64": (nm, lambda w: w @ X64),
            "nm_linear": (nm, lambda w: sk.linear(x, w, b)),
            "act_linear": (act, lambda w: sk.linear(xr, w, b)),
            "act_threshold": (act, lambda w: sk.linear(x, w, b, threshold=0.5)),
            "act_topk": (act, lambda w: sk.linear(x, w, b, topk=k // 8)),
            "act_wina": (act, lambda w: sk.linear(x, w, b, topk=k // 8, select="wina")),
            "delta_linear": (act, delta),
            "conv2d": (lambda: sk.pack(W3), lambda w: sk.conv2d(xc8, w, b16, padding=1)),
            "conv2d_nm": (lambda: sk.pack(W3, "2:4"), lambda w: sk.conv2d(xc8, w, b16, padding=1)),
            "conv2d_1x1": (lambda: sk.pack(W1), lambda w: sk.conv2d(xc16, w)),
            "conv2d_1x1_nm": (lambda: sk.pack(W1, "2:4"), lambda w: sk.conv2d(xc16, w)),
            "conv2d_depthwise": (lambda: Wdw.copy(),
                                 lambda w: sk.conv2d(xc8, w, stride=2, padding=1, groups=8)),
            "conv2d_depthwise_churn": (lambda: [a.copy() for a in pool], churn),
        }

    def same(a, b):
        return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()

    def run_threads(n, job):
        """job(i) in n threads started together; the exceptions they raised."""
        barrier, errors = threading.Barrier(n), []

        def run(i):
            try:
                barrier.wait()
                job(i)
            except BaseException as e:
                errors.append(repr(e))

        threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return errors

    def rss_mib():
        gc.collect()
        try:
            import ctypes
            ctypes.CDLL(None).malloc_trim(0)   # glibc: hand free heap pages back first
        except (OSError, AttributeError):
            pass
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    def report(results):
        print("RESULT " + json.dumps(results), flush=True)
''')

RACE = textwrap.dedent(r'''
    sys.setswitchinterval(1e-6)
    ops = build_ops(np.random.default_rng(16), 64, 512, 12)
    results = {}
    for name, (make, call) in ops.items():
        print("op", name, flush=True)
        bad = []
        trials = 20 if name == "matmul_panels" else 3   # where first calls race the most
        for trial in range(trials):
            nthreads = (8, 16, 32)[trial % 3]
            calls = 1 if name == "conv2d_depthwise_churn" else 2
            ref = call(make())             # single-threaded, first call on fresh weights
            w = make()
            out = [None] * nthreads

            def job(i):
                out[i] = [call(w) for _ in range(calls)]

            errors = run_threads(nthreads, job)
            if errors:
                bad.append(f"trial {trial}: {len(errors)} threads raised, e.g. {errors[0]}")
                continue
            diff = sum(not same(y, ref) for ys in out for y in ys)
            if diff:
                bad.append(f"trial {trial}: {diff} of {nthreads * calls} results not bitwise "
                           f"equal to the single-threaded one ({nthreads} threads)")
            if name == "matmul_panels" and BACKEND == "c-avx512" and not w._panels:
                bad.append(f"trial {trial}: the panel layout was not built")
        results[name] = bad
    report(results)
''')

THREAD_COUNTS = textwrap.dedent(r'''
    sys.setswitchinterval(1e-6)
    ops = build_ops(np.random.default_rng(17), 64, 512, 12)
    counts = (1, 2, 3)
    results = {}
    for name, (make, call) in ops.items():
        if name == "conv2d_depthwise_churn":
            continue
        print("op", name, flush=True)
        refs = []
        for n in counts:
            sk.set_num_threads(n)
            refs.append(call(make()))
        w = make()
        out = [None] * 8
        done = threading.Event()

        def change():
            i = 0
            while not done.is_set():
                sk.set_num_threads(counts[i % len(counts)])
                i += 1

        changer = threading.Thread(target=change)
        changer.start()

        def job(i):
            out[i] = [call(w) for _ in range(4)]

        errors = run_threads(8, job)
        done.set()
        changer.join()
        bad = [f"{len(errors)} threads raised, e.g. {errors[0]}"] if errors else []
        diff = sum(not any(same(y, r) for r in refs) for ys in out if ys for y in ys)
        if diff:
            bad.append(f"{diff} of {8 * 4} results equal to none of the single-threaded ones "
                       f"for thread counts {counts}")
        if sk.get_num_threads() not in counts:
            bad.append(f"thread count {sk.get_num_threads()} after the changes")
        results[name] = bad
    report(results)
''')

LEAKS = textwrap.dedent(r'''
    CALLS, CYCLES, THREADS = (int(a) for a in sys.argv[2:5])

    def leak_ops(m, k, hw):
        ops = build_ops(np.random.default_rng(18), m, k, hw)
        del ops["conv2d_depthwise_churn"]
        return ops, {name: make() for name, (make, call) in ops.items()}

    # small shapes for the many calls and cycles; one library thread throughout (numba's
    # per thread: NUMBA_NUM_THREADS=1), as a team per short-lived thread would only add
    # start-up time: what a kernel keeps per thread shows as well in the calling thread
    sk.set_num_threads(1)
    ops, weights = leak_ops(8, 256, 6)
    names = list(ops)
    results = {"calls": {}, "pack": None, "threads": {}}

    def loop_calls(name, n):
        call, w = ops[name][1], weights[name]
        for _ in range(n):
            call(w)

    for name in names:                  # warm up: handles, panels, caches, numba dispatch
        loop_calls(name, 50)
    # CALLS calls in all: a block of each op, growth measured per block
    for name in names:
        print("calls", name, flush=True)
        r0 = rss_mib()
        loop_calls(name, CALLS // len(names))
        results["calls"][name] = rss_mib() - r0

    def cycle():                        # pack every format, call its op once, drop it
        for make, call in ops.values():
            call(make())

    print("pack", flush=True)
    for _ in range(30):
        cycle()
    r0 = rss_mib()
    for _ in range(CYCLES):
        cycle()
    results["pack"] = rss_mib() - r0

    # threads: shapes whose per-thread scratch, if one were kept, would show (K = 2048,
    # 7 rows: hundreds of kB per thread)
    ops, weights = leak_ops(16, 2048, 8)

    def short_lived(name, n):           # n threads in turn, each calling the op once
        call, w = ops[name][1], weights[name]
        for _ in range(n):
            t = threading.Thread(target=call, args=(w,))
            t.start()
            t.join()

    for name in names:
        print("threads", name, flush=True)
        short_lived(name, 20)
        r0 = rss_mib()
        short_lived(name, THREADS)
        results["threads"][name] = rss_mib() - r0
    report(results)
''')

RSS_LIMIT_MIB = 16


def _require(backend_id: str) -> None:
    if backend_id == "numba":
        if "numba" not in _backends.available():
            pytest.skip(f"numba backend unavailable: {_backends._load_errors.get('numba')}")
        return
    c = c_backend_or_none()
    if c is None:
        pytest.skip(f"C backend unavailable: {_backends._load_errors.get('c')}")
    if backend_id[2:] not in c.isas():
        pytest.skip(f"ISA {backend_id[2:]} not supported here (available: {c.isas()})")


@functools.cache
def _run(script: str, backend_id: str, *args: str, **env) -> dict:
    """The per-op results the script printed, or {"crash": why} when it did not finish."""
    proc = run_python(OPS_SRC + script, backend_id, *args, timeout=300, **env)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines or not lines[-1].startswith("RESULT "):
        return {"crash": f"the subprocess failed (rc={proc.returncode}; negative = killed by a "
                         f"signal) after {lines[-1:]}\n{proc.stderr[-3000:]}"}
    return json.loads(lines[-1][len("RESULT "):])


def _results(script: str, backend_id: str, *args: str, **env) -> dict:
    _require(backend_id)
    res = _run(script, backend_id, *args, **env)
    if "crash" in res:
        pytest.fail(res["crash"])
    return res


@pytest.mark.parametrize("op", RACE_OPS)
@pytest.mark.parametrize("backend_id", BACKEND_IDS)
def test_threads_on_one_matrix_match_single_thread(backend_id, op):
    """8, 16 and 32 threads make the first calls on fresh shared weights; every result is
    bitwise equal to the single-threaded call's, and no call raises."""
    res = _results(RACE, backend_id, NUMBA_NUM_THREADS="2")
    assert res[op] == [], "\n".join(res[op])


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("backend_id", BACKEND_IDS)
def test_thread_count_changes_during_calls(backend_id, op):
    """One thread keeps changing sk.set_num_threads while 8 others call the op: every
    result is bitwise one of the single-threaded results for those thread counts. (numba's
    thread count is per thread; its workers run with the NUMBA_NUM_THREADS=2 default.)"""
    res = _results(THREAD_COUNTS, backend_id, NUMBA_NUM_THREADS="2")
    assert res[op] == [], "\n".join(res[op])


def _leaks(backend_id: str) -> dict:
    """The leak checks run on numba and on the best C ISA: the C library allocates only in
    its ISA-independent operator layer, and the best ISA on x86-64 also builds and frees
    the AVX-512 panel layout."""
    _require(backend_id)
    c = c_backend_or_none()
    if backend_id != "numba" and backend_id != "c-" + c.isas()[-1]:
        pytest.skip("leak checks run on the best C ISA and numba")
    if not os.path.exists("/proc/self/statm"):
        pytest.skip("needs /proc/self/statm (Linux) to read the resident set size")
    return _results(LEAKS, backend_id, "100000", "1000", "300",  # calls, cycles, threads
                    NUMBA_NUM_THREADS="1")


@pytest.mark.parametrize("backend_id", BACKEND_IDS)
def test_rss_stable_over_many_calls(backend_id):
    """10**5 small calls (a block per op, after a warm-up) leave the RSS where it was."""
    calls = _leaks(backend_id)["calls"]
    assert sum(max(g, 0) for g in calls.values()) <= RSS_LIMIT_MIB, (
        "RSS growth per op: " + ", ".join(f"{k} {g:+.1f} MiB" for k, g in calls.items()))


@pytest.mark.parametrize("backend_id", BACKEND_IDS)
def test_rss_stable_over_pack_free_cycles(backend_id):
    """1000 cycles of packing every format, calling its op once (C handle, panels, conv
    matrix, depthwise cache entry) and dropping it."""
    growth = _leaks(backend_id)["pack"]
    assert growth <= RSS_LIMIT_MIB, f"RSS grew {growth:+.1f} MiB over 1000 pack/free cycles"


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("backend_id", BACKEND_IDS)
def test_rss_stable_over_short_lived_threads(backend_id, op):
    """300 threads, one after another, each calling the op once and exiting (a thread
    pool that replaces its workers): whatever a thread allocates is freed when it exits."""
    growth = _leaks(backend_id)["threads"][op]
    assert growth <= RSS_LIMIT_MIB, f"{op}: RSS grew {growth:+.1f} MiB over 300 threads"
