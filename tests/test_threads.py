"""Python threads: concurrent calls give correct results, and a long kernel call does
not hold the GIL (cffi releases it around C calls; the numba kernels are nogil)."""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import sparsekern as sk
from conftest import c_backend_or_none, select_backend
from _cases import make_weights, make_x
from reference import assert_linear, assert_matmul


@pytest.mark.parametrize("lib_threads", [1, 2], ids=lambda t: f"libthreads{t}")
def test_concurrent_calls_are_correct(backend, rng, lib_threads):
    """Four Python threads, two per packed matrix (one matrix shared), mixing matmul and
    linear; each call big enough for the library to go parallel itself."""
    sk.set_num_threads(lib_threads)
    Ws = [make_weights(rng, 300, 200, 0.3), make_weights(rng, 150, 200, 0.5, "empty_rows")]
    Wps = [sk.pack(W) for W in Ws]
    Xs = [make_x(rng, 200, 70), make_x(rng, 200, 33)]
    bias = make_x(rng, 150)

    def job(i):
        out = []
        for _ in range(3):
            if i % 2:
                out.append(sk.linear(Xs[1].T, Wps[1], bias))
            else:
                out.append(sk.matmul(Wps[0], Xs[0]))
        return out

    with ThreadPoolExecutor(4) as ex:
        results = list(ex.map(job, range(4)))
    for i, res in enumerate(results):
        for Y in res:
            if i % 2:
                assert_linear(Y, Xs[1].T, Ws[1], bias, what=f"thread {i}")
            else:
                assert_matmul(Y, Ws[0], Xs[0], what=f"thread {i}")


def _long_kernel_problem(rng):
    """A packed 4096x4096 matrix with every third column stored (5.6M nonzeros) and X of
    512 columns: ~3e9 multiply-adds, hundreds of milliseconds on one thread."""
    m = k = 4096
    cols = np.arange(0, k, 3)
    row_ptr = np.arange(m + 1, dtype=np.int64) * cols.size
    col_idx = np.tile(cols, m)
    values = rng.standard_normal(m * cols.size).astype(np.float32)
    Wp = sk.UnstructuredMatrix((m, k), row_ptr, col_idx, values)
    return Wp, make_x(rng, k, 512)


@pytest.mark.slow
@pytest.mark.parametrize("which", ["c", "numba"])
def test_gil_released_during_long_kernel(restore_state, rng, which):
    """While a worker thread is inside one long matmul call, the main thread repeatedly
    sleeps 2 ms and counts wake-ups. Each wake-up needs the GIL back, so with the GIL held
    for the whole call at most ~2 wake-ups could land inside it; we require 10. (No
    wall-clock ratio is asserted; the call just has to last more than ~10 sleeps.)"""
    if which == "c":
        c = c_backend_or_none()
        if c is None:
            pytest.skip("C library not loadable")
        select_backend("c-" + c.isas()[-1])
    else:
        import numba

        if numba.config.DISABLE_JIT:
            pytest.skip("NUMBA_DISABLE_JIT=1: the kernel is a Python loop (holds the GIL)")
        select_backend("numba")
    sk.set_num_threads(1)  # leave the other core to the main thread
    Wp, X = _long_kernel_problem(rng)
    sk.matmul(Wp, X[:, :2])  # warm up (numba compile, C handle)
    state = {"in_call": False, "done": False}
    result = {}

    def worker():
        state["in_call"] = True
        result["Y"] = sk.matmul(Wp, X)
        state["in_call"] = False
        state["done"] = True

    t = threading.Thread(target=worker)
    t.start()
    while not state["in_call"] and not state["done"]:
        time.sleep(0.0005)
    wakeups_inside = 0
    while not state["done"]:
        time.sleep(0.002)
        if state["in_call"]:
            wakeups_inside += 1
    t.join()
    assert wakeups_inside >= 10, (
        f"the main thread woke only {wakeups_inside} times during the kernel call: "
        "the GIL seems to be held while the kernel runs")
    Y = result["Y"]
    cols = [0, 1, 255, 511]
    assert_matmul(np.ascontiguousarray(Y[:, cols]), Wp.to_dense(), X[:, cols])
