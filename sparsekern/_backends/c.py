"""The "c" backend: cffi (ABI mode, see _ffi) over libsparsekern.

Packed matrices get a C handle (a struct pointing into their read-only arrays) on first
use, and the unstructured format a panel layout for batch >= 64 where it pays; both are
built once under a lock taken only on that slow path and published when complete, so
the hot path is one attribute read. ISA names, ids and status codes come from the
library's header (the cdef).
"""
from __future__ import annotations

import os
import threading

import numpy as np

__all__ = ["CBackend"]

# Taken only on the slow path, when a matrix's C handle or panel layout is built (once per
# matrix): a lazily built object is published by one attribute assignment after it is
# complete, so the hot path reads that attribute without a lock. Reentrant: the panel
# build creates the matrix's handle first.
_build_lock = threading.RLock()


class CBackend:
    name = "c"

    def __init__(self):
        from ._ffi import ffi, lib, library_path   # ImportError when the library is missing

        self.ffi, self.lib, self.library_path = ffi, lib, library_path
        # every ISA the library knows, by id, whether or not it runs here
        self.isa_names = tuple(ffi.string(lib.sk_isa_name(i)).decode()
                               for i in range(lib.SK_ISA_COUNT))
        if lib.sk_isa_env_error():
            raise ValueError(
                f"SPARSEKERN_ISA={os.environ.get('SPARSEKERN_ISA')!r} is not an ISA this CPU and "
                f"build can run; choose one of {self.isas()}")
        self._cast = ffi.cast
        self._buf = ffi.from_buffer   # ~5x cheaper than ndarray.ctypes.data

    # -- configuration -------------------------------------------------------------
    def isas(self) -> list[str]:
        mask = self.lib.sk_cpu_isa_mask()
        return [n for i, n in enumerate(self.isa_names) if mask >> i & 1]

    def isa(self) -> str:
        return self.isa_names[self.lib.sk_get_isa()]

    def set_isa(self, name: str) -> None:
        names = self.isa_names
        if name not in names or self.lib.sk_set_isa(names.index(name)) != 0:
            raise ValueError(f"ISA {name!r} is not available here; choose one of {self.isas()}")

    def get_num_threads(self) -> int:
        return int(self.lib.sk_get_num_threads())

    def set_num_threads(self, n: int) -> None:
        self.lib.sk_set_num_threads(n)

    # kernel families of sk_kernel_tiling, by the header's SK_FAMILY_<NAME> constants
    FAMILIES = ("spmm_unstructured", "spmm_nm", "act_linear", "conv2d_sparse")

    def tiling(self, family: str, isa: str) -> dict:
        """How ``isa``'s kernel of ``family`` blocks its work (sk_kernel_tiling; the fields
        of sk_tiling in sparsekern.h), for ISAs compiled in whether or not this CPU runs
        them. ``n_tiles`` is a tuple without the 0 padding. ValueError for an unknown family
        or ISA name, or an ISA this build does not compile."""
        if family not in self.FAMILIES:
            raise ValueError(f"unknown kernel family {family!r}; choose one of {self.FAMILIES}")
        if isa not in self.isa_names:
            raise ValueError(f"unknown ISA {isa!r}; choose one of {self.isa_names}")
        lib, ffi = self.lib, self.ffi
        out = ffi.new("sk_tiling *")
        st = lib.sk_kernel_tiling(getattr(lib, f"SK_FAMILY_{family.upper()}"),
                                  self.isa_names.index(isa), out)
        if st == lib.SK_ERR_UNSUPPORTED:
            raise ValueError(f"ISA {isa!r} is not compiled into {self.library_path}")
        if st:
            self._raise(st)
        t = {}
        for name, field in ffi.typeof("sk_tiling").fields:
            v = getattr(out, name)
            t[name] = tuple(int(e) for e in v if e) if field.type.kind == "array" else int(v)
        return t

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
                and self.lib.sk_get_isa() == self.lib.SK_ISA_AVX512)

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
            self._raise(st)
        for a in (off, val, col):
            a.setflags(write=False)
        hp = self.ffi.new("sk_csr_f32 *", h[0])   # W._c stays as it is: calls may be using it
        hp.panel_off = self._cast("int64_t *", off.ctypes.data)
        hp.panel_val = self._cast("float *", val.ctypes.data)
        hp.panel_col = self._cast("uint8_t *", col.ctypes.data)
        return (hp, off, val, col)

    def spmm_unstructured(self, W, X: np.ndarray, bias, out: np.ndarray) -> None:
        """out[M, N] = W @ X[K, N] (+ bias); X and out float32, each C-contiguous or the
        transpose of a C-contiguous array (token-major: linear's x.T and y.T)."""
        h = W._c or self._handle(W)
        if X.shape[1] >= 64:   # the kernels use the panel layout only from batch 64 on
            p = W._panels
            if p is None and self._panels_pay(W):
                p = self._build_panels(W)
            if p:
                h = p[0]
        self._spmm(self.lib.sk_f32_spmm_unstructured_strided, h, X, bias, out)

    def _operand(self, A: np.ndarray):
        """(buffer, stride of rows, stride of columns) in floats, for A float32 C-contiguous
        or the transpose of a C-contiguous array; the layout contract of the *_strided entry
        points."""
        if A.flags.c_contiguous:
            return self._buf("float[]", A), A.shape[1], 1
        return self._buf("float[]", A.T), 1, A.shape[0]

    def _spmm(self, fn, h, X, bias, out) -> None:
        """fn(h, X, n, strides, bias, out, strides) (the *_strided entry points)."""
        xb, xsk, xsn = self._operand(X)
        yb, ysm, ysn = self._operand(out)
        st = fn(h, xb, X.shape[1], xsk, xsn,
                self._buf("float[]", bias) if bias is not None else self.ffi.NULL, yb, ysm, ysn)
        if st:
            self._raise(st)

    # -- N:M structured kernels
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
        self._spmm(self.lib.sk_f32_spmm_nm_strided, W._c or self._nm_handle(W), X, bias, out)

    # -- activation-sparse kernels
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
            self._raise(st)

    def act_delta(self, W, x, xref, y, theta) -> int:
        """One DeltaLinear step on x[n, K], updating xref[n, K] and y[n, M] in place."""
        buf = self._buf
        na = self.ffi.new("int64_t *")
        st = self.lib.sk_f32_act_delta(W._c or self._act_handle(W), x.shape[0], buf("float[]", x),
                                       W.shape[1], buf("float[]", xref), buf("float[]", y), theta,
                                       na)
        if st:
            self._raise(st)
        return int(na[0])

    # -- sparse conv2d kernels
    def conv2d_sparse(self, W, x, geom, bias, out) -> None:
        """out = conv2d(x, W) (+ bias) by direct sparse convolution; W the unstructured
        (C_out, C_in/groups*kh*kw) matrix, geom an ops.conv.ConvGeometry (sk_conv2d_geom)."""
        g = self.ffi.new("sk_conv2d_geom *", geom._asdict())
        buf = self._buf
        st = self.lib.sk_f32_conv2d_sparse(
            W._c or self._handle(W), g, buf("float[]", x) if x.size else self.ffi.NULL,
            buf("float[]", bias) if bias is not None else self.ffi.NULL, buf("float[]", out))
        if st:
            self._raise(st)

    def _raise(self, st: int):
        lib = self.lib
        if st == lib.SK_ERR_NOMEM:
            raise MemoryError("libsparsekern: out of memory")
        if st == lib.SK_ERR_UNSUPPORTED:
            raise RuntimeError("libsparsekern: the selected ISA is not supported")
        raise ValueError(f"libsparsekern rejected the arguments (status {st})")
