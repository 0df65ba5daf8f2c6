"""cffi binding (ABI mode) over libsparsekern.

ABI mode with a plain shared library, not an API-mode extension module: the same
library serves every Python version (one ``py3-none-<platform>`` wheel), C and
WebAssembly users get the same file, and cross-builds (aarch64, wasm32) need no
target Python headers. cffi releases the GIL around every call in both modes.

The cdef is the region of ``sparsekern.h`` between the SK_CDEF markers, read at
import, so the binding cannot drift from the header the library was built from.
"""
from __future__ import annotations

import os
import sys
from importlib import resources
from pathlib import Path

import cffi

if sys.platform == "darwin":
    _LIBNAME = "libsparsekern.dylib"
elif sys.platform == "win32":
    _LIBNAME = "sparsekern.dll"
else:
    _LIBNAME = "libsparsekern.so"

_HERE = Path(__file__).resolve().parent


def _library_path() -> Path:
    env = os.environ.get("SPARSEKERN_LIB")
    if env:
        return Path(env)
    return Path(str(resources.files("sparsekern") / _LIBNAME))


def _header_path(lib_path: Path) -> Path:
    candidates = [
        lib_path.parent / "sparsekern.h",
        Path(str(resources.files("sparsekern") / "sparsekern.h")),
        _HERE.parent.parent / "csrc" / "include" / "sparsekern.h",
    ]
    for c in candidates:
        if c.is_file():
            return c
    raise ImportError(f"sparsekern.h not found next to {lib_path}")


def _cdef(header: Path) -> str:
    text = header.read_text()
    try:
        body = text.split("/* SK_CDEF_BEGIN */", 1)[1].split("/* SK_CDEF_END */", 1)[0]
    except IndexError:
        raise ImportError(f"{header} has no SK_CDEF_BEGIN/SK_CDEF_END region") from None
    return body


def _load():
    path = _library_path()
    if not path.is_file():
        raise ImportError(f"libsparsekern not found at {path}")
    ffi = cffi.FFI()
    ffi.cdef(_cdef(_header_path(path)))
    # RTLD_NODELETE: OpenMP worker threads may still be running library code when
    # the interpreter tears the module down; unmapping it then would crash at exit.
    try:
        lib = ffi.dlopen(str(path), ffi.RTLD_NOW | ffi.RTLD_NODELETE)
    except OSError as e:
        where = "SPARSEKERN_LIB" if os.environ.get("SPARSEKERN_LIB") else "the installed library"
        raise ImportError(f"libsparsekern at {path} ({where}) is not a loadable shared library "
                          f"for this platform: {e}") from e
    try:
        lib.sk_get_isa
    except AttributeError as e:
        raise ImportError(f"{path} is not libsparsekern (it lacks sk_get_isa)") from e
    return ffi, lib, path


ffi, lib, library_path = _load()
