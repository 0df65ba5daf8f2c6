"""Run Python snippets in a fresh interpreter (env overrides, crash isolation)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TESTS_DIR = Path(__file__).resolve().parent
REPO = TESTS_DIR.parent


def python_env(**overrides) -> dict:
    """This process's environment with the tests dir and this process's sparsekern
    importable, single-threaded BLAS for the reference (the kernels' own threads are
    untouched), and ``overrides`` applied (a value of None removes the variable)."""
    import sparsekern

    env = dict(os.environ)
    # the same sparsekern as this process (the source tree with SPARSEKERN_LIB, or installed)
    here = str(Path(sparsekern.__file__).resolve().parent.parent)
    paths = [str(TESTS_DIR), here] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    for k, v in overrides.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    return env


def run_python(code: str, *args: str, timeout: float = 120, **env) -> subprocess.CompletedProcess:
    """``python -c code *args`` in the tests dir; ``env`` as for :func:`python_env`."""
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          env=python_env(**env), timeout=timeout, cwd=str(TESTS_DIR))
