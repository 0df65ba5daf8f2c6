"""Arrays placed against PROT_NONE pages, for the guard-page tests (run in subprocesses:
a kernel that reads past an array's end then faults instead of passing silently)."""
from __future__ import annotations

import ctypes
import mmap

import numpy as np

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
PAGE = mmap.PAGESIZE
_keep = []


def guarded(a, at_end):
    """A copy of ``a`` whose last byte (``at_end``) or first byte is next to a PROT_NONE
    page: reading one element beyond it faults. The mapping lives for the process."""
    a = np.ascontiguousarray(a)
    nb = a.nbytes
    pages = (nb + PAGE - 1) // PAGE + 2
    mm = mmap.mmap(-1, pages * PAGE)
    base = ctypes.addressof(ctypes.c_char.from_buffer(mm))
    for off in (0, (pages - 1) * PAGE):
        assert _libc.mprotect(base + off, PAGE, 0) == 0
    start = base + (pages - 1) * PAGE - nb if at_end else base + PAGE
    raw = (ctypes.c_char * max(nb, 1)).from_address(start)
    out = np.frombuffer(raw, dtype=a.dtype, count=a.size).reshape(a.shape) if nb else \
        np.frombuffer(raw, dtype=np.uint8, count=0).view(a.dtype).reshape(a.shape)
    if nb:
        out[...] = a
    _keep.append((mm, raw))
    return out
