"""Shared fixtures: ``backend`` (every C ISA variant + numba), ``rng`` (one seed per test).

The suite refuses to run against numba alone by accident: when the C library
cannot be loaded, collection stops with an error unless SPARSEKERN_BACKEND=numba
or SPARSEKERN_TEST_ALLOW_NO_C=1 says that is intended.
"""
from __future__ import annotations

import os
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

TESTS_DIR = Path(__file__).resolve().parent
if str(TESTS_DIR) not in sys.path:  # `import reference`, `import _cases` from the test modules
    sys.path.insert(0, str(TESTS_DIR))

import sparsekern as sk  # noqa: E402
from sparsekern import _backends  # noqa: E402



def c_backend_or_none():
    try:
        return _backends.get("c")
    except ImportError:
        return None


def _backend_ids() -> tuple[str, ...]:
    """"c-<isa>" for every ISA the library knows (the header's list; the ones this CPU
    cannot run are skipped), then "numba"."""
    c = c_backend_or_none()
    return tuple(f"c-{name}" for name in (c.isa_names if c is not None else ())) + ("numba",)


BACKEND_IDS = _backend_ids()


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: a test that takes more than a second or two")
    try:  # the float64 reference runs on BLAS; keep it off the cores the kernels use
        from threadpoolctl import threadpool_limits

        config._sk_blas_limit = threadpool_limits(1, user_api="blas")
    except ImportError:
        pass
    if c_backend_or_none() is not None:
        return
    want = os.environ.get("SPARSEKERN_BACKEND", "auto").strip().lower()
    if want == "numba" or os.environ.get("SPARSEKERN_TEST_ALLOW_NO_C") == "1":
        return
    why = _backends._load_errors.get("c", "unknown reason")
    pytest.exit(
        "sparsekern's C library could not be loaded, so only the numba backend would be tested "
        f"({why}). Build it (cmake/ninja) and point SPARSEKERN_LIB at it, or set "
        "SPARSEKERN_BACKEND=numba or SPARSEKERN_TEST_ALLOW_NO_C=1 to test numba alone.",
        returncode=4)


def pytest_report_header(config):
    try:
        return [f"sparsekern: {sk.info()}"]
    except Exception as e:  # the header must never hide the real failure
        return [f"sparsekern: info() failed: {e!r}"]


@pytest.fixture
def rng(request):
    """``np.random.default_rng(seed)`` with a seed derived from the test id (stable across
    runs, different per test), printed so that a failure shows it. SPARSEKERN_TEST_SEED
    overrides it."""
    env = os.environ.get("SPARSEKERN_TEST_SEED")
    seed = int(env) if env else zlib.crc32(request.node.nodeid.encode())
    print(f"rng seed = {seed} (SPARSEKERN_TEST_SEED={seed} reproduces it)")
    return np.random.default_rng(seed)


class _State:
    """Backend, ISA and threads of the process, to put back after a test."""

    def __init__(self):
        self.backend = _backends.backend()
        self.c = c_backend_or_none()
        self.isa = self.c.isa() if self.c is not None else None
        self.threads = {name: _backends.get(name).get_num_threads()
                        for name in _backends.available()}

    def restore(self):
        for name, n in self.threads.items():
            _backends.get(name).set_num_threads(n)
        if self.c is not None:
            self.c.set_isa(self.isa)
        _backends.set_backend(self.backend.name)


def select_backend(backend_id: str) -> None:
    """Switch the process to ``backend_id`` ("c-<isa>" or "numba"); pytest.skip if unavailable."""
    if backend_id == "numba":
        if "numba" not in _backends.available():
            pytest.skip(f"numba backend unavailable: {_backends._load_errors.get('numba')}")
        sk.set_backend("numba")
        return
    assert backend_id.startswith("c-"), backend_id
    c = c_backend_or_none()
    if c is None:
        pytest.skip(f"C backend unavailable: {_backends._load_errors.get('c')}")
    isa = backend_id[2:]
    if isa not in c.isas():
        pytest.skip(f"ISA {isa} not supported here (available: {c.isas()})")
    sk.set_backend("c")
    sk.set_isa(isa)
    assert sk.info()["isa"] == isa


@pytest.fixture
def restore_state():
    """Put the backend, ISA and thread counts back after the test."""
    state = _State()
    yield state
    state.restore()


@pytest.fixture(params=BACKEND_IDS)
def backend(request, restore_state):
    """Run the test on one C ISA variant or on numba (skipped where unavailable)."""
    select_backend(request.param)
    return request.param


@pytest.fixture(params=[p for p in BACKEND_IDS if p.startswith("c-")])
def c_isa(request, restore_state):
    """Run the test on one C ISA variant; yields the ISA name."""
    select_backend(request.param)
    return request.param[2:]
