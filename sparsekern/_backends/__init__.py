"""Backend selection: "c" (cffi over libsparsekern) or "numba" (the fallback).

``SPARSEKERN_BACKEND=auto|c|numba`` (read at import; default auto: c when the
compiled library is installed, else numba) and :func:`set_backend` at run time.
Every backend implements :class:`Backend`, the kernel primitives the op layer calls.
"""
from __future__ import annotations

import os
import threading
from typing import Protocol

import numpy as np

__all__ = ["Backend", "get", "available", "backend", "set_backend"]


class Backend(Protocol):
    """What the op layer needs of a backend. Arrays are float32 and C-contiguous; ``out``
    is written in place; bias is None or float32 [M]."""

    name: str

    def isas(self) -> list[str]: ...
    def isa(self) -> str: ...
    def set_isa(self, name: str) -> None: ...
    def get_num_threads(self) -> int: ...
    def set_num_threads(self, n: int) -> None: ...
    def spmm_unstructured(self, W, X: np.ndarray, bias, out: np.ndarray) -> None: ...
    def spmm_nm(self, W, X: np.ndarray, bias, out: np.ndarray) -> None: ...
    def act_linear(self, W, x, bias, out, threshold: float, topk: int, select: int,
                   rows: int) -> None: ...
    def act_delta(self, W, x, xref, y, theta: float) -> int: ...
    def conv2d_sparse(self, W, x, geom, bias, out) -> None: ...


def _c():
    from .c import CBackend

    return CBackend()


def _numba():
    from .numba import NumbaBackend

    return NumbaBackend()


_BACKENDS = {"c": _c, "numba": _numba}
_instances: dict[str, Backend] = {}
_load_errors: dict[str, str] = {}
_lock = threading.Lock()


def get(name: str) -> Backend:
    be = _instances.get(name)
    if be is None:
        with _lock:   # one instance per backend, whatever the threads
            be = _instances.get(name)
            if be is None:
                try:
                    be = _BACKENDS[name]()
                except ImportError as e:
                    _load_errors[name] = str(e)
                    raise
                _instances[name] = be
    return be


def available() -> list[str]:
    out = []
    for name in _BACKENDS:
        try:
            get(name)
            out.append(name)
        except (ImportError, ValueError):   # missing, or refused (a bad SPARSEKERN_ISA)
            pass
    return out


def _initial() -> Backend:
    choice = os.environ.get("SPARSEKERN_BACKEND", "auto").strip().lower() or "auto"
    if choice == "auto":
        try:
            return get("c")
        except ImportError:
            return get("numba")
    if choice not in _BACKENDS:
        raise ValueError(f"SPARSEKERN_BACKEND={choice!r}; expected auto, c or numba")
    return get(choice)


_current: Backend | None = None


def backend() -> Backend:
    """The backend in use (chosen on first call)."""
    return _current or _select_initial()


def _select_initial() -> Backend:
    global _current
    be = _initial()
    _current = be
    return be


def set_backend(name: str) -> None:
    """Use backend ``name`` ("c" or "numba") from now on; ImportError if it is missing."""
    global _current
    if name not in _BACKENDS:
        raise ValueError(f"unknown backend {name!r}; expected one of {sorted(_BACKENDS)}")
    _current = get(name)
