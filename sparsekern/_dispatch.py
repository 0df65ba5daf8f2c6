"""Backend selection: "c" (cffi over libsparsekern) or "numba" (the fallback).

``SPARSEKERN_BACKEND=auto|c|numba`` (read at import; default auto: c when the
compiled library is installed, else numba) and :func:`set_backend` at run time.
"""
from __future__ import annotations

import os

import numpy as np

_ISA_NAMES = ("scalar", "avx2", "avx512", "neon", "wasmsimd")


class CBackend:
    name = "c"

    def __init__(self):
        from ._ffi import ffi, lib, library_path

        self.ffi, self.lib, self.library_path = ffi, lib, library_path
        if lib.sk_isa_env_error():
            raise ValueError(
                f"SPARSEKERN_ISA={os.environ.get('SPARSEKERN_ISA')!r} is not an ISA this CPU and "
                f"build can run; choose one of {self.isas()}")
        self._fn = lib.sk_f32_spmm_unstructured
        self._cast = ffi.cast
        self._buf = ffi.from_buffer   # ~5x cheaper than ndarray.ctypes.data

    # -- configuration -------------------------------------------------------------
    def isas(self) -> list[str]:
        mask = self.lib.sk_cpu_isa_mask()
        return [n for i, n in enumerate(_ISA_NAMES) if mask >> i & 1]

    def isa(self) -> str:
        return _ISA_NAMES[self.lib.sk_get_isa()]

    def set_isa(self, name: str) -> None:
        if name not in _ISA_NAMES or self.lib.sk_set_isa(_ISA_NAMES.index(name)) != 0:
            raise ValueError(f"ISA {name!r} is not available here; choose one of {self.isas()}")

    def get_num_threads(self) -> int:
        return int(self.lib.sk_get_num_threads())

    def set_num_threads(self, n: int) -> None:
        self.lib.sk_set_num_threads(n)

    # -- kernels -----------------------------------------------------------------
    def _handle(self, W):
        h = W._c
        if h is None:
            h = self.ffi.new("sk_csr_f32 *")
            h.rows, h.cols = W.shape
            h.nnz = W.nnz
            h.idx_bits = 16 if W.col_idx.dtype == np.uint16 else 32
            h.row_ptr = self._cast("int64_t *", W.row_ptr.ctypes.data)
            h.col_idx = self._cast("void *", W.col_idx.ctypes.data)
            h.values = self._cast("float *", W.values.ctypes.data)
            W._c = h
        return h

    def spmm_unstructured(self, W, X: np.ndarray, bias, out: np.ndarray) -> None:
        """out[M, N] = W @ X[K, N] (+ bias); X, bias, out float32 C-contiguous."""
        buf = self._buf
        n = X.shape[1]
        st = self._fn(W._c or self._handle(W), buf("float[]", X), n, n,
                      buf("float[]", bias) if bias is not None else self.ffi.NULL,
                      buf("float[]", out), n)
        if st:
            _raise_status(st)


    # -- N:M structured kernels (issue 3) go here
    # -- activation-sparse kernels (issue 4) go here


def _raise_status(st: int):
    if st == -2:
        raise MemoryError("libsparsekern: out of memory")
    if st == -3:
        raise RuntimeError("libsparsekern: the selected ISA is not supported")
    raise ValueError(f"libsparsekern rejected the arguments (status {st})")


class NumbaBackend:
    name = "numba"

    def __init__(self):
        from . import _numba

        self._mod = _numba

    def isas(self) -> list[str]:
        return []

    def isa(self) -> str:
        return "numba"

    def set_isa(self, name: str) -> None:
        raise ValueError("the numba backend has no ISA variants to choose")

    def get_num_threads(self) -> int:
        return self._mod.get_num_threads()

    def set_num_threads(self, n: int) -> None:
        self._mod.set_num_threads(n)

    def spmm_unstructured(self, W, X, bias, out) -> None:
        self._mod.spmm_unstructured(W.row_ptr, W.col_idx, W.values, X, bias, out)

    # -- N:M structured kernels (issue 3) go here
    # -- activation-sparse kernels (issue 4) go here


_BACKENDS = {"c": CBackend, "numba": NumbaBackend}
_instances: dict[str, object] = {}
_load_errors: dict[str, str] = {}


def get(name: str):
    if name not in _instances:
        try:
            _instances[name] = _BACKENDS[name]()
        except ImportError as e:
            _load_errors[name] = str(e)
            raise
    return _instances[name]


def available() -> list[str]:
    out = []
    for name in _BACKENDS:
        try:
            get(name)
            out.append(name)
        except (ImportError, ValueError):   # missing, or refused (a bad SPARSEKERN_ISA)
            pass
    return out


def _initial() -> object:
    choice = os.environ.get("SPARSEKERN_BACKEND", "auto").strip().lower() or "auto"
    if choice == "auto":
        try:
            return get("c")
        except ImportError:
            return get("numba")
    if choice not in _BACKENDS:
        raise ValueError(f"SPARSEKERN_BACKEND={choice!r}; expected auto, c or numba")
    return get(choice)


current = None  # set by sparsekern/__init__.py


def backend():
    global current
    if current is None:
        current = _initial()
    return current


def set_backend(name: str) -> None:
    """Use backend ``name`` ("c" or "numba") from now on; ImportError if it is missing."""
    global current
    if name not in _BACKENDS:
        raise ValueError(f"unknown backend {name!r}; expected one of {sorted(_BACKENDS)}")
    current = get(name)
