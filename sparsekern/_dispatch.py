"""Backend selection: "c" (cffi over libsparsekern) or "numba" (the fallback).

``SPARSEKERN_BACKEND=auto|c|numba`` (read at import; default auto: c when the
compiled library is installed, else numba) and :func:`set_backend` at run time.
"""
from __future__ import annotations

import os
import threading

import numpy as np

_ISA_NAMES = ("scalar", "avx2", "avx512", "neon", "wasmsimd")

# Taken only on the slow path, when a matrix's C handle or panel layout is built (once per
# matrix): a lazily built object is published by one attribute assignment after it is
# complete, so the hot path reads that attribute without a lock. Reentrant: the panel
# build creates the matrix's handle first.
_build_lock = threading.RLock()


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
    @staticmethod
    def _lazy_handle(W, make):
        """W._c, made by make(W) on the first call (once, whatever the threads). The handle
        points into W's read-only arrays, which live as long as W."""
        with _build_lock:
            h = W._c
            if h is None:
                h = make(W)
                W._c = h
        return h

    def _handle(self, W):
        return W._c or self._lazy_handle(W, self._new_csr_handle)

    def _new_csr_handle(self, W):
        h = self.ffi.new("sk_csr_f32 *")
        h.rows, h.cols = W.shape
        h.nnz = W.nnz
        h.idx_bits = 16 if W.col_idx.dtype == np.uint16 else 32
        h.row_ptr = self._cast("int64_t *", W.row_ptr.ctypes.data)
        h.col_idx = self._cast("void *", W.col_idx.ctypes.data)
        h.values = self._cast("float *", W.values.ctypes.data)
        return h

    def _panels_pay(self, W) -> bool:
        """The AVX-512 kernel's panel layout pays for batch >= 64 when rows are long enough
        (>= 8 nonzeros per 128 columns on average: density >= 1/16); measured on Zen 5,
        4096x4096, N=64, GFLOP/s without / with panels: density 0.05 84 / 76, 0.07 79 / 86,
        0.1 82 / 105, 0.3 93 / 140."""
        m, k = W._shape
        return (m >= 4 and k >= 256 and W.nnz * 128 >= 8 * m * k
                and self.lib.sk_get_isa() == 2)

    def _build_panels(self, W):
        """W._panels, built on the first call: False when the layout does not apply, else
        (handle, off, val, col), a handle with the panel pointers set and the arrays they
        point to (kept alive with it). Concurrent first callers wait for the one building
        it, so every batch >= 64 call runs with the panels."""
        with _build_lock:
            p = W._panels
            if p is None:
                p = self._make_panels(W)
                W._panels = p
        return p

    def _make_panels(self, W):
        h = self._handle(W)
        size = self.lib.sk_f32_unstructured_panels_size(h)
        if size < 0:
            return False
        m, k = W._shape
        off = np.empty((m // 4) * (-(-k // 128)) + 1, np.int64)
        val = np.empty(size, np.float32)
        col = np.empty(size, np.uint8)
        buf = self._buf
        st = self.lib.sk_f32_unstructured_panels_build(h, buf("int64_t[]", off), buf("float[]", val),
                                                       buf("uint8_t[]", col))
        if st:
            _raise_status(st)
        for a in (off, val, col):
            a.setflags(write=False)
        hp = self.ffi.new("sk_csr_f32 *", h[0])   # W._c stays as it is: calls may be using it
        hp.panel_off = self._cast("int64_t *", off.ctypes.data)
        hp.panel_val = self._cast("float *", val.ctypes.data)
        hp.panel_col = self._cast("uint8_t *", col.ctypes.data)
        return (hp, off, val, col)

    def spmm_unstructured(self, W, X: np.ndarray, bias, out: np.ndarray) -> None:
        """out[M, N] = W @ X[K, N] (+ bias); X, bias, out float32 C-contiguous."""
        h = W._c or self._handle(W)
        if X.shape[1] >= 64:   # the kernels use the panel layout only from batch 64 on
            p = W._panels
            if p is None and self._panels_pay(W):
                p = self._build_panels(W)
            if p:
                h = p[0]
        self._spmm(self._fn, h, X, bias, out)

    def _spmm(self, fn, h, X, bias, out) -> None:
        """fn(h, X, n, ldx, bias, out, ldy) over C-contiguous float32 X[K, n], out[M, n]."""
        buf = self._buf
        n = X.shape[1]
        st = fn(h, buf("float[]", X), n, n,
                buf("float[]", bias) if bias is not None else self.ffi.NULL, buf("float[]", out), n)
        if st:
            _raise_status(st)


    # -- N:M structured kernels (issue 3) go here
    def _nm_handle(self, W):
        return W._c or self._lazy_handle(W, self._new_nm_handle)

    def _new_nm_handle(self, W):
        h = self.ffi.new("sk_nm_f32 *")
        h.rows, h.cols = W.shape
        h.n, h.m = W.pattern
        h.pos_bits = W.pos_bits
        h.meta_stride = W.meta.shape[1]
        h.values = self._cast("float *", W.values.ctypes.data)
        h.meta = self._cast("uint8_t *", W.meta.ctypes.data)
        return h

    def spmm_nm(self, W, X: np.ndarray, bias, out: np.ndarray) -> None:
        """out[M, N] = W @ X[K, N] (+ bias) for an NMMatrix W."""
        self._spmm(self.lib.sk_f32_spmm_nm, W._c or self._nm_handle(W), X, bias, out)

    # -- activation-sparse kernels (issue 4) go here
    def _act_handle(self, W):
        return W._c or self._lazy_handle(W, self._new_act_handle)

    def _new_act_handle(self, W):
        h = self.ffi.new("sk_act_f32 *")
        h.rows, h.cols = W.shape
        h.finite = 1 if W.finite else 0
        h.wt = self._cast("float *", W.wt.ctypes.data)
        h.norms = self._cast("float *", W.norms.ctypes.data)
        return h

    def act_linear(self, W, x, bias, out, threshold, topk, select, rows) -> None:
        """out[rows, M] = the selected channels of x[rows, K] times W.T (+ bias), x and out
        C-contiguous (1-D when rows == 1); see sparsekern.act."""
        buf = self._buf
        st = self.lib.sk_f32_act_linear(W._c or self._act_handle(W), rows, buf("float[]", x),
                                        W._shape[1], buf("float[]", bias) if bias is not None
                                        else self.ffi.NULL, buf("float[]", out), W._shape[0],
                                        threshold, topk, select, self.ffi.NULL)
        if st:
            _raise_status(st)

    def act_delta(self, W, x, xref, y, theta) -> int:
        """One DeltaLinear step on x[n, K], updating xref[n, K] and y[n, M] in place."""
        buf = self._buf
        na = self.ffi.new("int64_t *")
        st = self.lib.sk_f32_act_delta(W._c or self._act_handle(W), x.shape[0], buf("float[]", x),
                                       W.shape[1], buf("float[]", xref), buf("float[]", y), theta,
                                       na)
        if st:
            _raise_status(st)
        return int(na[0])

    def act_matmul(self, W, X, bias, out) -> None:
        from .act import matmul_via_linear

        matmul_via_linear(self, W, X, bias, out)

    # -- sparse conv2d kernels (issue 5) go here
    def conv2d_sparse(self, W, x, geom, bias, out) -> None:
        """out = conv2d(x, W) (+ bias) by direct sparse convolution; W the unstructured
        (C_out, C_in/groups*kh*kw) matrix, geom the sk_conv2d_geom fields in order."""
        g = self.ffi.new("sk_conv2d_geom *", geom)
        buf = self._buf
        st = self.lib.sk_f32_conv2d_sparse(
            W._c or self._handle(W), g, buf("float[]", x) if x.size else self.ffi.NULL,
            buf("float[]", bias) if bias is not None else self.ffi.NULL, buf("float[]", out))
        if st:
            _raise_status(st)


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
    def spmm_nm(self, W, X, bias, out) -> None:
        n, m = W.pattern
        self._mod.spmm_nm(W.values, W.meta, W.shape[1], n, m, W.pos_bits, X, bias, out)

    # -- activation-sparse kernels (issue 4) go here
    def act_linear(self, W, x, bias, out, threshold, topk, select, rows) -> None:
        self._mod.act_linear(W.wt, W.norms, W.finite, x.reshape(rows, W.shape[1]), bias,
                             out.reshape(rows, W.shape[0]), threshold, topk, select)

    def act_delta(self, W, x, xref, y, theta) -> int:
        return self._mod.act_delta(W.wt, x, xref, y, theta)

    def act_matmul(self, W, X, bias, out) -> None:
        from .act import matmul_via_linear

        matmul_via_linear(self, W, X, bias, out)

    # -- sparse conv2d kernels (issue 5) go here
    def conv2d_sparse(self, W, x, geom, bias, out) -> None:
        self._mod.conv2d_sparse(W.row_ptr, W.col_idx, W.values, x, geom, bias, out)


_BACKENDS = {"c": CBackend, "numba": NumbaBackend}
_instances: dict[str, object] = {}
_load_errors: dict[str, str] = {}


def get(name: str):
    be = _instances.get(name)
    if be is None:
        with _build_lock:   # one instance per backend, whatever the threads
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
