"""Direct calls into libsparsekern's C ABI (explicit ISA, strides, raw pointers), for the
kernel tests. No expected values here: see reference.py."""
from __future__ import annotations

import numpy as np

from sparsekern import _dispatch

ISA_NAMES = _dispatch._ISA_NAMES

SK_OK, SK_ERR_INVALID_ARG, SK_ERR_NOMEM, SK_ERR_UNSUPPORTED = 0, -1, -2, -3


def c_backend():
    """The C backend, or None where libsparsekern is not loadable."""
    try:
        return _dispatch.get("c")
    except ImportError:
        return None


def isa_index(name: str) -> int:
    return ISA_NAMES.index(name)


def unsupported_isas() -> list[int]:
    """ISA numbers the C entry points must refuse with SK_ERR_UNSUPPORTED here: out of range,
    or an ISA this CPU or build lacks."""
    here = c_backend().isas()
    return [-1, *(isa_index(n) for n in ISA_NAMES if n not in here), len(ISA_NAMES), 99]


def status_caller(c, entry: str, make_struct, X: np.ndarray, Y: np.ndarray):
    """call(h=None, x=X, n, ldx, y=Y, ldy, isa=best) -> status of the SpMM entry point `entry`
    (e.g. "sk_f32_spmm_nm_isa") on the struct make_struct() or h; None means a null pointer."""
    ffi, fn = c.ffi, getattr(c.lib, entry)
    best = c.isas()[-1]
    n0 = X.shape[1]

    def call(h=None, x=X, n=n0, ldx=n0, y=Y, ldy=n0, isa=best):
        h = make_struct() if h is None else h
        xp = ffi.NULL if x is None else ffi.cast("float *", x.ctypes.data)
        yp = ffi.NULL if y is None else ffi.cast("float *", y.ctypes.data)
        isa_i = isa if isinstance(isa, int) else isa_index(isa)
        return fn(isa_i, h, xp, n, ldx, ffi.NULL, yp, ldy)

    return call


def with_fields(h, **kw):
    """The cffi struct h with the given fields overwritten (for the bad-argument tests)."""
    for name, v in kw.items():
        setattr(h, name, v)
    return h


def addr(a: np.ndarray) -> int:
    return a.__array_interface__["data"][0]


def csr_struct(ffi, Wp, *, row_ptr=None, col_idx=None, values=None):
    """An ``sk_csr_f32 *`` over Wp's arrays (or over the given replacement arrays, which
    must stay alive as long as the struct is used)."""
    rp = Wp.row_ptr if row_ptr is None else row_ptr
    ci = Wp.col_idx if col_idx is None else col_idx
    v = Wp.values if values is None else values
    h = ffi.new("sk_csr_f32 *")
    h.rows, h.cols = Wp.shape
    h.nnz = Wp.nnz
    h.idx_bits = 16 if ci.dtype == np.uint16 else 32
    h.row_ptr = ffi.cast("int64_t *", addr(rp))
    h.col_idx = ffi.cast("void *", addr(ci))
    h.values = ffi.cast("float *", addr(v))
    return h


def spmm(c, isa: str, h, X: np.ndarray, n: int, ldx: int, bias, Y: np.ndarray, ldy: int) -> int:
    """sk_f32_spmm_unstructured_isa on raw buffers; returns the status code."""
    ffi = c.ffi
    return c.lib.sk_f32_spmm_unstructured_isa(
        isa_index(isa), h, ffi.cast("float *", addr(X)), n, ldx,
        ffi.cast("float *", addr(bias)) if bias is not None else ffi.NULL,
        ffi.cast("float *", addr(Y)), ldy)
