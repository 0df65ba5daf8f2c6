"""numba's on-disk cache shared by processes that compiled different kernels.

A user's scripts share one cache directory (``__pycache__`` beside the package, or
NUMBA_CACHE_DIR): one script runs act linear, another DeltaLinear, a third a conv. Each
fills part of the cache; a later process loading all of it must give the same numbers and
not crash.
"""
from __future__ import annotations

import json
import textwrap

import pytest

from _subproc import run_python
from sparsekern import _backends

pytestmark = pytest.mark.slow

OPS = textwrap.dedent(r"""
    import json, sys
    import numpy as np
    import sparsekern as sk

    sk.set_backend("numba")
    rng = np.random.default_rng(0)
    W = rng.standard_normal((1100, 64)).astype(np.float32)   # > 1 column chunk in act
    x = rng.standard_normal((64, 3)).astype(np.float32)
    xt = np.ascontiguousarray(x.T)
    x4 = rng.standard_normal((2, 8, 7, 7)).astype(np.float32)
    W4 = rng.standard_normal((16, 8, 3, 3)).astype(np.float32)
    ops = {
        "act_linear": lambda: sk.linear(xt, sk.pack(W, "act")),
        "act_topk": lambda: sk.linear(xt, sk.pack(W, "act"), topk=20),
        "delta": lambda: sk.DeltaLinear(sk.pack(W, "act"), threshold=0.1)(xt),
        "unstructured": lambda: sk.pack(W, sparsity=0.8) @ x,
        "nm": lambda: sk.pack(W, "2:4") @ x,
        "conv": lambda: sk.conv2d(x4, sk.pack(W4, sparsity=0.5), padding=1),
    }
    names = sys.argv[1].split(",")
    print("RESULT " + json.dumps({n: np.asarray(ops[n]()).astype(np.float64).sum() for n in names}))
""")

NAMES = ["act_linear", "act_topk", "delta", "unstructured", "nm", "conv"]


def _run(names, cache) -> dict:
    proc = run_python(OPS, ",".join(names), timeout=600, NUMBA_CACHE_DIR=str(cache))
    assert proc.returncode == 0, (f"{names}: rc={proc.returncode} (negative: killed by a signal)\n"
                                  f"{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1][len("RESULT "):])


def test_cache_filled_by_separate_processes(tmp_path):
    """Each kernel compiled into an empty cache by a process of its own, then each loaded
    from that cache by a process of its own, then all of them in one process: the same
    results as the compiling runs, and no crash."""
    if "numba" not in _backends.available():
        pytest.skip(f"numba backend unavailable: {_backends._load_errors.get('numba')}")
    cache = tmp_path / "numba-cache"
    compiled = {}
    for name in NAMES:
        compiled.update(_run([name], cache))
    for name in NAMES:
        assert _run([name], cache) == {name: compiled[name]}
    assert _run(NAMES, cache) == compiled
