"""sparsekern: sparse neural-network layers that run faster than dense BLAS on CPUs.

    import sparsekern as sk
    Wp = sk.pack(W, "unstructured", sparsity=0.9)
    Y = Wp @ X            # == sk.matmul(Wp, X)
    y = sk.linear(x, Wp, b)
"""
from __future__ import annotations

from . import _backends
from .formats import (ActMatrix, ConvWeight, NMMatrix, PackedMatrix, UnstructuredMatrix, load,
                      nm_mask, pack, save)
from .ops import DeltaLinear, conv2d, linear, matmul

__version__ = "0.1.0"

__all__ = [
    "PackedMatrix", "UnstructuredMatrix", "ActMatrix", "DeltaLinear", "NMMatrix", "ConvWeight",
    "nm_mask", "pack", "save", "load", "matmul", "linear", "conv2d",
    "info", "set_num_threads", "get_num_threads", "set_backend", "set_isa", "__version__",
]


def info() -> dict:
    """Version, backend in use, ISA chosen and available, threads."""
    be = _backends.backend()
    d = {
        "version": __version__,
        "backend": be.name,
        "backends_available": _backends.available(),
        "isa": be.isa(),
        "isas_available": be.isas(),
        "threads": be.get_num_threads(),
    }
    if be.name == "c":
        d["library"] = str(be.library_path)
    return d


def set_num_threads(n: int) -> None:
    """Threads used by the kernels of the current backend (n >= 1)."""
    from ._errors import check_int

    n = min(check_int(n, "n", 1), 1024)   # the C library caps at 1024 as well
    _backends.backend().set_num_threads(n)


def get_num_threads() -> int:
    return _backends.backend().get_num_threads()


def set_backend(name: str) -> None:
    """Switch to backend "c" or "numba" (SPARSEKERN_BACKEND sets the initial one)."""
    _backends.set_backend(name)


def set_isa(name: str) -> None:
    """Select the C library's ISA variant ("scalar", "avx2", "avx512", ...), as SPARSEKERN_ISA
    does at import; ValueError if this CPU or build cannot run it."""
    _backends.backend().set_isa(name)


_backends.backend()
