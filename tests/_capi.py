"""Direct calls into libsparsekern's C ABI (explicit ISA, strides, raw pointers), for the
kernel tests. No expected values here: see reference.py."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from sparsekern import _backends


def c_backend():
    """The C backend, or None where libsparsekern is not loadable."""
    try:
        return _backends.get("c")
    except ImportError:
        return None


_c = c_backend()
ISA_NAMES = _c.isa_names if _c is not None else ()
# the header's status codes (None where the library is missing: those tests are skipped)
SK_OK, SK_ERR_INVALID_ARG, SK_ERR_NOMEM, SK_ERR_UNSUPPORTED = (
    (_c.lib.SK_OK, _c.lib.SK_ERR_INVALID_ARG, _c.lib.SK_ERR_NOMEM, _c.lib.SK_ERR_UNSUPPORTED)
    if _c is not None else (None,) * 4)


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


def csr_struct(c, Wp, *, row_ptr=None, col_idx=None, values=None):
    """The backend's ``sk_csr_f32 *`` over Wp's arrays (or over the given replacement
    arrays, which must stay alive as long as the struct is used)."""
    return c._new_csr_handle(SimpleNamespace(
        shape=Wp.shape, nnz=Wp.nnz, row_ptr=Wp.row_ptr if row_ptr is None else row_ptr,
        col_idx=Wp.col_idx if col_idx is None else col_idx,
        values=Wp.values if values is None else values))


def nm_struct(c, Wp, values=None, meta=None):
    """The backend's ``sk_nm_f32 *`` over Wp's arrays (or replacements, kept alive by the
    caller)."""
    return c._new_nm_handle(SimpleNamespace(
        shape=Wp.shape, pattern=Wp.pattern, pos_bits=Wp.pos_bits,
        values=Wp.values if values is None else values, meta=Wp.meta if meta is None else meta))


def spmm(c, isa: str, h, X: np.ndarray, n: int, ldx: int, bias, Y: np.ndarray, ldy: int) -> int:
    """sk_f32_spmm_unstructured_isa on raw buffers; returns the status code."""
    ffi = c.ffi
    return c.lib.sk_f32_spmm_unstructured_isa(
        isa_index(isa), h, ffi.cast("float *", addr(X)), n, ldx,
        ffi.cast("float *", addr(bias)) if bias is not None else ffi.NULL,
        ffi.cast("float *", addr(Y)), ldy)


def spmm_strided(c, family: str, isa: str, h, X: np.ndarray, n: int, xs: tuple, bias,
                 Y: np.ndarray, ys: tuple) -> int:
    """sk_f32_spmm_<family>_strided_isa (family "unstructured" or "nm") on raw buffers, with
    X's strides xs = (stride_k, stride_n) and Y's ys = (stride_m, stride_n) in floats."""
    ffi = c.ffi
    return getattr(c.lib, f"sk_f32_spmm_{family}_strided_isa")(
        isa_index(isa), h, ffi.cast("float *", addr(X)), n, *xs,
        ffi.cast("float *", addr(bias)) if bias is not None else ffi.NULL,
        ffi.cast("float *", addr(Y)), *ys)
