"""The base of the packed formats: PackedMatrix, the format registry, pack/save/load, and
the storage and validation helpers every format uses.

Every format validates its arrays once, when it is built or loaded; the kernels trust
what they are given. Arrays are stored C-ordered, cache-line aligned and read-only
for good (see ``_frozen_empty``). This layer imports nothing of the backends or the ops.
"""
from __future__ import annotations

import ctypes
import numbers
import os
import threading
import zipfile
import zlib

import numpy as np

from .._errors import F32

__all__ = ["PackedMatrix", "register_format", "pack", "save", "load"]

_FILE_VERSION = 1
_MAX_COLS = 2**31 - 1

# Guards the lazily derived data of the formats (built once, published when complete).
_lazy_lock = threading.Lock()

# The op-layer functions that methods of the formats call (``W @ X``): the op layer
# registers them, so this layer never imports it.
_OPS: dict = {}


def register_op(name: str, fn) -> None:
    _OPS[name] = fn


def _empty_aligned(shape, dtype=F32, align: int = 64) -> np.ndarray:
    """np.empty starting on a cache-line boundary (numpy's large arrays start 16 bytes
    into one): the kernels' 64-byte vector loads and stores then never split a line."""
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    buf = np.empty(nbytes + align, np.uint8)
    off = -buf.__array_interface__["data"][0] % align
    return buf[off:off + nbytes].view(dtype).reshape(shape)


def _frozen_empty(shape, dtype) -> tuple[np.ndarray, np.ndarray]:
    """(stored, fill): a new C-ordered, cache-line-aligned array that is read-only for
    good, and a writable view of the same memory for the caller to fill and then drop.

    The memory belongs to a ``bytes`` object: numpy refuses to make any array over an
    immutable buffer writeable, so no ``.base`` chain from ``stored`` leads to a writable
    array (the C kernels trust these arrays; an edited index would crash them)."""
    dtype = np.dtype(dtype)
    shape = tuple(int(d) for d in shape)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    raw = bytes(nbytes + 64)            # a private, never-shared object: filled once below
    whole = np.frombuffer(raw, np.uint8)
    off = -whole.ctypes.data % 64
    stored = whole[off:off + nbytes].view(dtype).reshape(shape)
    if nbytes == 0:
        return stored, np.empty(shape, dtype)
    cbuf = (ctypes.c_char * nbytes).from_address(whole.ctypes.data + off)
    fill = np.frombuffer(cbuf, dtype).reshape(shape)
    return stored, fill


def _is_frozen(a: np.ndarray) -> bool:
    base = a
    while isinstance(base, np.ndarray):
        base = base.base
    return isinstance(base, bytes) and not a.flags.writeable


def _readonly(a, dtype=None) -> np.ndarray:
    """``a`` as stored by the packed formats: C order, 64-byte aligned, read-only for good
    (see _frozen_empty), converted to ``dtype``. Copies unless ``a`` already is such an
    array; the caller's array is never modified or kept."""
    a = np.asarray(a)
    dtype = np.dtype(dtype or a.dtype)
    if (a.dtype == dtype and a.flags.c_contiguous and _is_frozen(a)
            and a.__array_interface__["data"][0] % 64 == 0):
        return a
    stored, fill = _frozen_empty(a.shape, dtype)
    fill[...] = a
    return stored


_CHUNK = 1 << 20     # entries per step of the validators: bounded temporaries on huge arrays


def _all_finite(a: np.ndarray) -> bool:
    flat = a.reshape(-1)
    return all(np.isfinite(flat[i:i + _CHUNK]).all() for i in range(0, flat.size, _CHUNK))


def _stored_ints(a: np.ndarray, dtype, lo: int, end: int, name: str) -> np.ndarray:
    """Integer array ``a`` stored as ``dtype`` (see _readonly), ValueError naming ``name``
    unless every entry lies in [lo, end). Checked chunk by chunk on the converted copy, so
    neither a narrowing conversion nor a concurrent change of ``a`` can slip past."""
    stored, fill = _frozen_empty(a.shape, dtype)
    src, dst = a.reshape(-1), fill.reshape(-1)
    for i in range(0, src.size, _CHUNK):
        c = src[i:i + _CHUNK]
        if c.dtype.kind == "u" and c.dtype.itemsize == 8 and c.size and c.max() >= end:
            raise ValueError(f"{name} must lie in [{lo}, {end}) (found {int(c.max())})")
        c = c.astype(np.int64)
        if c.size and (c.min() < lo or c.max() >= end):
            bad = int(c.min()) if c.min() < lo else int(c.max())
            raise ValueError(f"{name} must lie in [{lo}, {end}) (found {bad})")
        dst[i:i + _CHUNK] = c
    return stored


class PackedMatrix:
    """Base of the packed formats: shape, nnz, density, nbytes, format, to_dense(), ``@``."""

    format: str = ""
    format_help: str = ""       # how pack()'s error message lists this format
    _kernel: str = ""           # the backend method that multiplies this format
    _conv_order: str | None = None   # column order of a conv weight it holds (formats.conv)

    @classmethod
    def _accepts(cls, name: str) -> bool:
        return name == cls.format

    @classmethod
    def _pack(cls, W, format: str, **options) -> "PackedMatrix":
        raise NotImplementedError

    @classmethod
    def _load(cls, format: str, shape: tuple, arrays: dict) -> "PackedMatrix":
        """Rebuild (validated) from save()/pickle data: the inverse of ``_arrays``."""
        return cls(shape, **arrays)

    @classmethod
    def _check_layout(cls, format: str, shape: tuple, specs: dict, names: dict) -> None:
        """Check the arrays' names, dtypes and shapes (``specs``: {name: (shape, dtype)})
        against the format and the matrix shape, before any of their data is read; the
        constructors and load() both run it. ``names``: the string fields (a conv
        weight's inner format). ValueError/TypeError naming the array."""
        raise NotImplementedError
    __slots__ = ("_shape", "__weakref__")

    @property
    def shape(self) -> tuple[int, int]:
        return self._shape

    @property
    def ndim(self) -> int:
        return 2

    @property
    def dtype(self) -> np.dtype:
        return F32

    @property
    def size(self) -> int:
        return self._shape[0] * self._shape[1]

    @property
    def density(self) -> float:
        return self.nnz / self.size if self.size else 0.0

    # numpy defers to us for `X @ Wp` instead of trying to treat Wp as an array
    __array_ufunc__ = None

    def __matmul__(self, X):
        """``W @ X`` = sparsekern.matmul(W, X)."""
        return _OPS["matmul"](self, X)

    def __rmatmul__(self, other):
        raise TypeError(f"X @ W with a packed W on the right is not supported; compute "
                        f"linear(X, W) for X @ W.T, or W @ X (got {type(other).__name__} @ "
                        f"{type(self).__name__})")

    def __repr__(self) -> str:
        m, k = self._shape
        return (f"<{type(self).__name__} {m}x{k} format={self.format!r} nnz={self.nnz} "
                f"density={self.density:.4g} nbytes={self.nbytes}>")

    def _arrays(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def __reduce__(self):
        return (_rebuild, (self.format, self._shape, self._arrays()))

    def __eq__(self, other):
        if type(other) is not type(self) or other._shape != self._shape:
            return NotImplemented if not isinstance(other, PackedMatrix) else False
        a, b = self._arrays(), other._arrays()
        return a.keys() == b.keys() and all(
            a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k], equal_nan=True) for k in a)

    __hash__ = None


def _as_matrix(W) -> np.ndarray:
    arr = np.asarray(W)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"W must be a real numeric array (got dtype {arr.dtype})")
    if arr.ndim != 2:
        raise ValueError(f"W must be 2-D (M, K), or 4-D (C_out, C_in, kh, kw) for a conv weight; got shape {arr.shape}")
    if arr.shape[1] > _MAX_COLS:
        raise ValueError(f"W has {arr.shape[1]} columns; at most {_MAX_COLS} are supported")
    return np.asarray(arr, dtype=F32)


def _check_shape(shape) -> tuple[int, int]:
    try:
        dims = tuple(shape)
    except TypeError:
        raise TypeError(f"shape must be a pair of non-negative integers (got {shape!r})") from None
    if len(dims) != 2 or not all(isinstance(d, numbers.Integral) and not isinstance(d, bool)
                                 for d in dims):
        raise ValueError(f"shape must be a pair of non-negative integers (got {shape!r})")
    m, k = int(dims[0]), int(dims[1])
    if m < 0 or k < 0:
        raise ValueError(f"shape must be non-negative (got {shape!r})")
    if k > _MAX_COLS or m > 2**62:
        raise ValueError(f"shape {shape!r} is too large")
    return m, k


def _specs(arrays: dict) -> dict:
    return {name: (a.shape, a.dtype) for name, a in arrays.items()}


def _expect_arrays(specs: dict, required: tuple, optional: tuple, what: str) -> None:
    if any(k not in specs for k in required) or set(specs) - set(required) - set(optional):
        want = ", ".join(map(repr, required)) + "".join(f" [, {k!r}]" for k in optional)
        raise ValueError(f"{what} needs exactly the arrays {want} (got {sorted(specs)})")


def _check_int_spec(spec, name: str) -> None:
    shape, dtype = spec
    if len(shape) != 1:
        raise ValueError(f"{name} must be 1-D (got shape {shape})")
    if dtype.kind not in "iu" and not (dtype.kind == "f" and shape == (0,)):
        raise TypeError(f"{name} must hold integers (got dtype {dtype})")


def _check_real_spec(spec, name: str) -> None:
    dtype = spec[1]
    if dtype.kind not in "biuf" or dtype.fields is not None:
        raise TypeError(f"{name} must be real numbers (got dtype {dtype})")


# The format registry. Each class names its format (``format``, or ``_accepts`` for a
# family of names such as "2:4"), the backend method its kernels run under (``_kernel``),
# how pack() builds it (``_pack``) and how a file or pickle rebuilds it (``_load``).
_FORMATS: list[type] = []
_BY_INPUT_NDIM: dict[int, type] = {}   # a format that packs dense inputs of another rank


def register_format(cls: type, input_ndim: int = 2) -> type:
    """Add ``cls`` to the formats pack()/load() know; ``input_ndim``: the rank of the dense
    weights it packs, when they are not matrices (a conv weight's 4-D array: every 2-D
    format name then packs such an array into ``cls``)."""
    _FORMATS.append(cls)
    if input_ndim != 2:
        _BY_INPUT_NDIM[input_ndim] = cls
    return cls


def _format_class(name: str):
    for cls in _FORMATS:
        if cls._accepts(name):
            return cls
    return None


def _format_names() -> list[str]:
    return [cls.format_help for cls in _FORMATS]


def _rebuild(fmt, shape, arrays):
    """Unpickle a packed matrix (``__reduce__``'s callable): validated like a loaded file."""
    if not isinstance(fmt, str):
        raise TypeError(f"packed format must be a string (got {type(fmt).__name__})")
    if not isinstance(arrays, dict) or not all(isinstance(k, str) for k in arrays):
        raise TypeError("packed arrays must be a dict of named arrays")
    cls = _format_class(fmt)
    if cls is None:
        raise ValueError(f"unknown packed format {fmt!r}")
    try:
        shape = tuple(shape)
    except TypeError:
        raise TypeError(f"shape must be a tuple of integers (got {shape!r})") from None
    return cls._load(fmt, shape, arrays)


def pack(W, format: str = "unstructured", **options) -> PackedMatrix:
    """Pack dense weights W (M, K) into a sparse format.

    ``format="unstructured"`` keeps the nonzeros of W at any positions; with
    ``sparsity`` (a fraction in [0, 1]) W is first magnitude-pruned so that
    round(sparsity·W.size) of its entries are zero. W is converted to float32 and
    never modified. Other formats take their own options (see each format class).
    """
    if not isinstance(format, str):
        raise TypeError(f"format must be a string (got {format!r})")
    cls = _format_class(format)
    if cls is None:
        raise ValueError(f"unknown format {format!r}; available: {', '.join(_format_names())}")
    wrapper = _BY_INPUT_NDIM.get(np.ndim(W))   # e.g. a 4-D conv weight
    if wrapper is not None:
        return wrapper.from_dense(W, format, **options)
    return cls._pack(W, format, **options)


def save(file, W: PackedMatrix) -> None:
    """Save a packed matrix as an ``.npz`` archive to exactly the path given (or a file object)."""
    if not isinstance(W, PackedMatrix):
        raise TypeError(f"expected a packed matrix, got {type(W).__name__}")
    if isinstance(file, (str, os.PathLike)):   # np.savez would append ".npz" to other names
        with open(file, "wb") as f:
            save(f, W)
        return
    np.savez(file, sparsekern_format=np.array(W.format), shape=np.array(W.shape, np.int64),
             version=np.array(_FILE_VERSION, np.int64), **W._arrays())


def load(file) -> PackedMatrix:
    """Load and validate a packed matrix written by :func:`save` (a path or a file object).

    The archive's member names, dtypes and shapes are checked against the format before
    any array is read, so a hostile file is refused without decompressing it; the arrays
    are then read straight into their final storage and validated as the constructors do."""
    if isinstance(file, (str, os.PathLike)) and not os.path.exists(file):
        raise FileNotFoundError(file)
    try:
        with zipfile.ZipFile(file) as zf:
            return _load_zip(zf)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, OSError, EOFError,
            NotImplementedError, RuntimeError) as e:  # also: unsupported compression, encrypted
        raise ValueError(f"not a readable sparsekern .npz file (a zip archive of .npy arrays, "
                         f"as sparsekern.save writes): {e}") from e


_FILE_FIELDS = ("sparsekern_format", "version", "shape")
_MAX_NAME = 256      # characters in a string field


def _npy_header(zf: zipfile.ZipFile, info: zipfile.ZipInfo, f=None):
    """(shape, fortran_order, dtype) from a member's .npy header, reading nothing else."""
    own = f is None
    f = zf.open(info) if own else f
    try:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            return np.lib.format.read_array_header_1_0(f)
        if version == (2, 0):
            return np.lib.format.read_array_header_2_0(f)
        raise ValueError(f"member {info.filename!r}: unsupported .npy version {version}")
    finally:
        if own:
            f.close()


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, key: str) -> np.ndarray:
    """The member's array, read in pieces straight into its final (read-only) storage."""
    with zf.open(info) as f:
        shape, fortran, dtype = _npy_header(zf, info, f)
        stored, fill = _frozen_empty(shape[::-1] if fortran else shape, dtype)
        view = memoryview(fill.reshape(-1).view(np.uint8))
        pos = 0
        while pos < len(view):
            got = f.readinto(view[pos:pos + (4 << 20)])
            if not got:
                raise ValueError(f"{key!r} is truncated")
            pos += got
    return stored.T if fortran else stored


def _is_name(header) -> bool:
    shape, _, dtype = header
    return shape == () and dtype.kind == "U" and dtype.itemsize <= 4 * _MAX_NAME


def _load_zip(zf: zipfile.ZipFile) -> PackedMatrix:
    members = {}
    for info in zf.infolist():
        key = info.filename[:-4]
        if not info.filename.endswith(".npy") or key in members:
            raise ValueError(f"not a sparsekern file: unexpected member {info.filename!r}")
        members[key] = info
    for key in _FILE_FIELDS:
        if key not in members:
            raise ValueError(f"not a sparsekern file: missing {key!r}")
    headers = {key: _npy_header(zf, info) for key, info in members.items()}
    for key, (_, _, dtype) in headers.items():
        if dtype.hasobject:
            raise ValueError(f"not a readable sparsekern .npz file: {key!r} holds pickled Python "
                             f"objects, which sparsekern never writes")
    def field(key, kinds, ndim, what):
        shape, _, dtype = headers[key]
        if (dtype.kind not in kinds or len(shape) != ndim or (ndim and shape[0] > 4)
                or (dtype.kind == "U" and not _is_name(headers[key]))):
            raise ValueError(f"{what} (dtype {dtype}, shape {shape})")
        return _read_member(zf, members[key], key)

    fmt = str(field("sparsekern_format", "U", 0, "corrupt sparsekern file: bad format field"))
    version = int(field("version", "iu", 0, "unsupported sparsekern file version"))
    shape = tuple(int(d) for d in field("shape", "iu", 1, "corrupt sparsekern file: bad shape"))
    if version != _FILE_VERSION:
        raise ValueError(f"unsupported sparsekern file version {version}")
    cls = _format_class(fmt)
    if cls is None:
        raise ValueError(f"unknown packed format {fmt!r} in file")
    arrays = {key: h for key, h in headers.items() if key not in _FILE_FIELDS}
    names = {key: str(_read_member(zf, members[key], key)) for key, h in arrays.items()
             if _is_name(h)}
    try:
        cls._check_layout(fmt, shape, {k: (h[0], h[2]) for k, h in arrays.items()}, names)
        data = {key: (np.array(names[key]) if key in names
                      else _read_member(zf, members[key], key)) for key in arrays}
        return cls._load(fmt, shape, data)
    except (ValueError, TypeError) as e:
        raise ValueError(f"corrupt sparsekern file: {e}") from e
