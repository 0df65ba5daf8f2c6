"""Input checking shared by the op layer."""
from __future__ import annotations

import numbers

import numpy as np

F32 = np.dtype(np.float32)


def as_f32(a, name: str) -> np.ndarray:
    """A float32 C-contiguous view of ``a``, or a converted copy; never the caller's array modified."""
    if type(a) is np.ndarray and a.dtype == F32 and a.flags.c_contiguous and a.flags.aligned:
        return a
    arr = np.asarray(a)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a real numeric array (got dtype {arr.dtype})")
    # not np.ascontiguousarray: it turns a 0-d array (a scalar) into shape (1,)
    out = np.asarray(arr, dtype=F32, order="C")
    # a float32 view at an odd address (np.frombuffer with an offset): C needs aligned floats
    return out if out.flags.aligned else out.copy()


def as_bias(bias, m: int, op: str):
    """None, or ``bias`` as float32 of shape (m,); ValueError naming ``op`` otherwise."""
    if bias is None:
        return None
    b = as_f32(bias, "bias")
    if b.shape != (m,):
        raise ValueError(f"{op}: bias must have shape ({m},) (got {b.shape})")
    return b


def check_fraction(value, name: str) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number in [0, 1] (got {value!r})")
    v = float(value)
    if not np.isfinite(v) or not 0.0 <= v <= 1.0:
        raise ValueError(f"{name} must be a finite number in [0, 1] (got {value!r})")
    return v


def check_int(value, name: str, minimum: int = 0) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer (got {value!r})")
    v = int(value)
    if v < minimum:
        raise ValueError(f"{name} must be >= {minimum} (got {v})")
    return v
